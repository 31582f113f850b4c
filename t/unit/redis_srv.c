/* redis_srv.c - see redis_srv.h. */
#include "redis_srv.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char rsrv_dir_path[128] = "/tmp";

static double rsrv_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void rsrv_set_dir(const char *dir)
{
    snprintf(rsrv_dir_path, sizeof(rsrv_dir_path), "%s", dir);
}

int rsrv_free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t l = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

redisContext *rsrv_conn(const struct rsrv *s)
{
    struct timeval tv = {1, 0};
    redisContext *c = s->sock[0] ? redisConnectUnixWithTimeout(s->sock, tv)
                                 : redisConnectWithTimeout("127.0.0.1", s->port, tv);
    redisReply *r;

    if (c == NULL || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    if (s->password) {
        r = redisCommand(c, "AUTH %s", s->password);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            if (r)
                freeReplyObject(r);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(r);
    }
    return c;
}

int rsrv_ping(const struct rsrv *s)
{
    redisContext *c = rsrv_conn(s);
    redisReply *r;
    int up = 0;

    if (c == NULL)
        return 0;
    r = redisCommand(c, "PING");
    up = r != NULL && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return up;
}

int rsrv_start(struct rsrv *s)
{
    const char *d = rsrv_dir_path;
    char cmd[1024];
    double t0 = rsrv_now();

    snprintf(s->pidfile, sizeof(s->pidfile), "%s/redis-%d-%s.pid", d, s->port,
             s->sock[0] ? "u" : "t");
    snprintf(cmd, sizeof(cmd),
             "redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no --daemonize yes "
             "--pidfile %s --dir %s --logfile %s/redis-%d.log %s%s%s%s%s%s",
             s->port, s->pidfile, d, d, s->port, s->sock[0] ? "--unixsocket " : "", s->sock,
             s->password ? " --requirepass '" : "", s->password ? s->password : "",
             s->password ? "'" : "", s->extra[0] ? " " : "");
    /* extra settings last: they override the defaults above */
    strncat(cmd, s->extra, sizeof(cmd) - strlen(cmd) - 1);
    if (system(cmd) != 0)
        return -1;
    while (rsrv_now() - t0 < 5) {
        if (rsrv_ping(s)) {
            s->up = 1;
            return 0;
        }
        usleep(20000);
    }
    return -1;
}

long rsrv_pid(const struct rsrv *s)
{
    FILE *f = fopen(s->pidfile, "r");
    long pid = 0;

    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    return pid;
}

/* rsrv_gone: the process has exited (or is a zombie nobody reaps). */
static int rsrv_gone(long pid)
{
    char path[64], buf[256];
    FILE *f;
    char *p;

    if (kill((pid_t)pid, 0) != 0)
        return 1;
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if ((f = fopen(path, "r")) == NULL)
        return 1;
    p = fgets(buf, sizeof(buf), f);
    fclose(f);
    return p != NULL && (p = strrchr(buf, ')')) != NULL && p[1] == ' ' && p[2] == 'Z';
}

void rsrv_stop(struct rsrv *s, int sig)
{
    long pid = rsrv_pid(s);
    double t0 = rsrv_now();

    if (pid <= 0)
        return;
    kill((pid_t)pid, SIGCONT);
    kill((pid_t)pid, sig);
    while (!rsrv_gone(pid) && rsrv_now() - t0 < 5)
        usleep(10000);
    /* the listening socket is closed with the process */
    unlink(s->pidfile);
    s->up = 0;
}
