/* test_srv.c - unit tests for the server core (src/srv.c) with real sockets.
 *
 * One thread: the test is the client, with nonblocking sockets, and it pumps
 * the server's event loop (EVLOOP_NONBLOCK) while it waits for bytes. The
 * handler answers on a timer, so requests are asynchronous as in the daemon.
 * A request's attributes steer the handler: act= the action to reply (default
 * DUNNO), delay= milliseconds before replying (default 5), hold=1 keeps the
 * connection for the test to answer itself. */
#include "srv.h"
#include "log.h"
#include "tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static struct event_base *base;
static struct srv_conn *held; /* the last hold=1 connection */
static char last_peer[80];    /* peer of the last request */
static uint64_t last_id;
static int nhandled;
static int done_calls;

struct pending {
    struct srv_conn *c;
    char action[256];
};

static void reply_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pending *p = arg;
    srv_reply(p->c, p->action);
    free(p);
}

static void handler(struct srv_conn *c, struct pp_request *req, void *arg)
{
    nhandled++;
    snprintf(last_peer, sizeof(last_peer), "%s", srv_conn_peer(c));
    last_id = srv_conn_id(c);
    if (strcmp(pp_get(req, "hold"), "1") == 0) {
        held = c;
        pp_request_free(&req);
        return;
    }
    if (strcmp(pp_get(req, "sync"), "1") == 0) { /* reply from inside the callback */
        srv_reply(c, pp_has(req, "act") ? pp_get(req, "act") : "DUNNO");
        pp_request_free(&req);
        return;
    }
    struct pending *p = calloc(1, sizeof(*p));
    p->c = c;
    snprintf(p->action, sizeof(p->action), "%s", pp_has(req, "act") ? pp_get(req, "act") : "DUNNO");
    int ms = pp_has(req, "delay") ? atoi(pp_get(req, "delay")) : 5;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    pp_request_free(&req);
    event_base_once(base, -1, EV_TIMEOUT, reply_cb, p, &tv);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* pump: run the loop for about ms milliseconds. */
static void pump(int ms)
{
    long long end = now_ms() + ms;
    do {
        event_base_loop(base, EVLOOP_NONBLOCK);
        poll(NULL, 0, 1);
    } while (now_ms() < end);
}

/* free_port: a port the kernel just handed out (closed again, SO_REUSEADDR). */
static int free_port(int family)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    int fd = socket(family, SOCK_STREAM, 0), port = -1;
    if (fd < 0)
        return -1;
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    }
    if (bind(fd, (struct sockaddr *)&ss, len) == 0 &&
        getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                        : ((struct sockaddr_in *)&ss)->sin_port);
    close(fd);
    return port;
}

static int cl_connect(int family, int port, const char *path)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    int fd = socket(family, SOCK_STREAM, 0);
    if (family == AF_UNIX) {
        struct sockaddr_un *a = (struct sockaddr_un *)&ss;
        a->sun_family = AF_UNIX;
        snprintf(a->sun_path, sizeof(a->sun_path), "%.100s", path);
        len = sizeof(*a);
    } else if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        a->sin6_port = htons((uint16_t)port);
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a->sin_port = htons((uint16_t)port);
        len = sizeof(*a);
    }
    /* the kernel completes the handshake from the listen backlog: no loop needed */
    if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void cl_send(int fd, const char *s, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, s + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
            off += (size_t)n;
        else if (n < 0 && errno != EAGAIN)
            return;
        else
            pump(1);
    }
}

static void cl_puts(int fd, const char *s)
{
    cl_send(fd, s, strlen(s));
}

struct got {
    char buf[16384];
    size_t len;
    int closed; /* EOF or reset seen */
};

/* cl_read: collect bytes until want bytes, close, or timeout_ms. */
static struct got cl_read(int fd, size_t want, int timeout_ms)
{
    struct got g = {{0}, 0, 0};
    long long end = now_ms() + timeout_ms;
    while (now_ms() < end && g.len < want && g.len < sizeof(g.buf) - 1) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        ssize_t n = recv(fd, g.buf + g.len, sizeof(g.buf) - 1 - g.len, MSG_DONTWAIT);
        if (n > 0) {
            g.len += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            g.closed = 1;
            break;
        }
        poll(NULL, 0, 1);
    }
    g.buf[g.len] = '\0';
    return g;
}

/* cl_closed: 1 when the server closed fd within timeout_ms; *bytes gets what
 * arrived before. */
static int cl_closed(int fd, int timeout_ms, size_t *bytes)
{
    struct got g = cl_read(fd, (size_t)-1, timeout_ms);
    if (bytes)
        *bytes = g.len;
    return g.closed;
}

static struct srv_stats stats(struct srv *s)
{
    struct srv_stats st;
    srv_get_stats(s, &st);
    return st;
}

static void done_cb(void *arg)
{
    done_calls++;
    *(int *)arg = 1;
}

static void done_free_cb(void *arg)
{
    srv_free((struct srv **)arg);
}

/* one request/reply round trip on fd */
static int roundtrip(int fd, const char *req, const char *want)
{
    cl_puts(fd, req);
    struct got g = cl_read(fd, strlen(want), 2000);
    return g.len == strlen(want) && memcmp(g.buf, want, g.len) == 0;
}

static void test_listen_errors(struct srv *s)
{
    static const char *const bad[] = {
        "tcp:127.0.0.1:10040", "inet:127.0.0.1",  "inet:127.0.0.1:0",     "inet:127.0.0.1:70000",
        "inet:127.0.0.1:12a",  "inet:[::1:10040", "inet:::1:10040",       "inet:[nonsense]:10040",
        "inet::10040",         "unix:",           "inet:256.1.1.1:10040",
    };
    char err[256] = "";
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        int rc = srv_listen(s, bad[i], err, sizeof(err));
        ok(rc == -1 && err[0] != '\0', "listen spec refused: %s (%s)", bad[i], err);
    }
}

static void test_tcp(struct srv *s, int port)
{
    int a = cl_connect(AF_INET, port, NULL);
    ok(a >= 0, "connect to 127.0.0.1:%d", port);
    ok(roundtrip(a, "request=smtpd_access_policy\nsender=a@b\n\n", "action=DUNNO\n\n"),
       "first reply is byte-exact action=DUNNO\\n\\n");
    ok(strncmp(last_peer, "127.0.0.1:", 10) == 0, "peer is 127.0.0.1:port (%s)", last_peer);
    uint64_t id1 = last_id;
    ok(roundtrip(a, "act=OK two\r\n\r\n", "action=OK two\n\n"), "second request, same connection");
    ok(roundtrip(a, "act=REJECT 3\ndelay=20\n\n", "action=REJECT 3\n\n"),
       "third request, same connection");
    is_int((long long)last_id, (long long)id1, "same connection id across requests");

    /* two requests in one write: answered in order although the first is slower */
    cl_puts(a, "act=FIRST\ndelay=40\n\nact=SECOND\ndelay=1\n\n");
    struct got g = cl_read(a, 29, 2000);
    is_str(g.buf, "action=FIRST\n\naction=SECOND\n\n", "pipelined requests answered in order");
    /* a request split across writes */
    cl_puts(a, "act=SPL");
    pump(20);
    cl_puts(a, "IT\n");
    pump(20);
    ok(roundtrip(a, "\n", "action=SPLIT\n\n"), "request split across writes");

    /* many pipelined requests behind a held one: more than the server's input
     * buffer, so it must stop reading and resume after each reply; answered
     * in order, asynchronously and synchronously */
    for (int sync = 0; sync <= 1; sync++) {
        char *pipe = malloc(600 * 32), *want = malloc(600 * 32);
        size_t pl = 0, wl = 0;
        held = NULL;
        cl_puts(a, "hold=1\n\n");
        pump(20);
        for (int i = 0; i < 600; i++) {
            pl += (size_t)sprintf(pipe + pl, "act=P%d\n%s\n", i, sync ? "sync=1\n" : "delay=0\n");
            wl += (size_t)sprintf(want + wl, "action=P%d\n\n", i);
        }
        cl_send(a, pipe, pl);
        pump(30);
        ok(held != NULL, "pipeline %d: first request held", sync);
        if (held) {
            srv_reply(held, "HELD");
            held = NULL;
        }
        struct got pg = cl_read(a, wl + 13, 3000);
        ok(pg.len == wl + 13 && memcmp(pg.buf, "action=HELD\n\n", 13) == 0 &&
               memcmp(pg.buf + 13, want, wl) == 0,
           "pipeline %d: %d requests (%zu bytes) answered in order", sync, 601, pl);
        if (pg.len != wl + 13)
            diag("got %zu bytes, want %zu, closed=%d", pg.len, wl + 13, pg.closed);
        free(pipe);
        free(want);
    }

    /* malformed on one connection, another keeps being served */
    int b = cl_connect(AF_INET, port, NULL);
    uint64_t malformed = stats(s).malformed;
    cl_puts(b, "request=smtpd_access_policy\nbogus line\n\n");
    size_t nb = 99;
    ok(cl_closed(b, 2000, &nb), "malformed request: connection closed");
    is_int((long long)nb, 0, "malformed request: no reply bytes");
    is_int((long long)(stats(s).malformed - malformed), 1, "malformed counted");
    ok(roundtrip(a, "act=STILL\n\n", "action=STILL\n\n"), "other connection still served");
    close(b);

    /* oversized line */
    b = cl_connect(AF_INET, port, NULL);
    char *big = malloc(PP_MAX_LINE + 16);
    memset(big, 'x', PP_MAX_LINE + 15);
    memcpy(big, "a=", 2);
    big[PP_MAX_LINE + 15] = '\0';
    cl_puts(b, big);
    free(big);
    ok(cl_closed(b, 2000, &nb), "oversized line: connection closed");
    is_int((long long)nb, 0, "oversized line: no reply bytes");
    close(b);

    /* an action pp_format_reply refuses: closed instead of a broken reply */
    b = cl_connect(AF_INET, port, NULL);
    cl_puts(b, "hold=1\n\n");
    pump(20);
    ok(held != NULL, "hold request reached the handler");
    if (held) {
        srv_reply(held, "DUNNO\nextra");
        held = NULL;
    }
    ok(cl_closed(b, 2000, &nb) && nb == 0, "refused action: closed without bytes");
    close(b);

    /* srv_conn_release closes without a reply */
    b = cl_connect(AF_INET, port, NULL);
    cl_puts(b, "hold=1\n\n");
    pump(20);
    if (held) {
        srv_conn_release(held);
        held = NULL;
    }
    ok(cl_closed(b, 2000, &nb) && nb == 0, "srv_conn_release: closed without bytes");
    close(b);

    /* the peer half-closes (shutdown SHUT_WR, as nc does) while its request
     * is evaluated: it still gets the reply, then the connection is closed */
    b = cl_connect(AF_INET, port, NULL);
    cl_puts(b, "hold=1\n\n");
    pump(20);
    ok(held != NULL, "held request for the half-close test");
    shutdown(b, SHUT_WR);
    pump(30);
    if (held) {
        srv_reply(held, "DUNNO");
        held = NULL;
    }
    pump(20);
    ok(cl_closed(b, 2000, &nb) && nb == strlen("action=DUNNO\n\n"),
       "half-closed peer: gets its reply, then EOF (%zu bytes)", nb);
    close(b);

    /* the peer goes away (reset) while the request is evaluated */
    b = cl_connect(AF_INET, port, NULL);
    cl_puts(b, "hold=1\n\n");
    pump(20);
    ok(held != NULL, "held request for the peer-close test");
    {
        struct linger lg = {1, 0}; /* close() sends RST: the peer is gone */

        setsockopt(b, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(b);
    pump(30);
    struct srv_stats before = stats(s);
    if (held) {
        srv_reply(held, "DUNNO"); /* must be a harmless no-op */
        held = NULL;
    }
    pump(20);
    struct srv_stats after = stats(s);
    is_int((long long)(before.open - after.open), 1, "gone connection freed after srv_reply");
    is_int((long long)(after.replies - before.replies), 0, "no reply sent to a gone peer");
    ok(roundtrip(a, "\x61=1\n\n", "action=DUNNO\n\n"), "server still fine afterwards");

    /* the peer goes away with the reply pending and the handler releases */
    b = cl_connect(AF_INET, port, NULL);
    cl_puts(b, "hold=1\n\n");
    pump(20);
    close(b);
    pump(20);
    if (held) {
        srv_conn_release(held);
        held = NULL;
    }
    pump(20);
    is_int(stats(s).open, 1, "only the persistent connection is left open");

    close(a);
    pump(30);
    is_int(stats(s).open, 0, "closed connection freed");
}

static void test_localhost_v6(struct srv *s)
{
    char spec[64], err[256] = "";
    int port = free_port(AF_INET);
    snprintf(spec, sizeof(spec), "inet:localhost:%d", port);
    ok(srv_listen(s, spec, err, sizeof(err)) == 0, "listen %s %s", spec, err);
    int fd = cl_connect(AF_INET, port, NULL);
    ok(fd >= 0 && roundtrip(fd, "a=1\n\n", "action=DUNNO\n\n"), "request via localhost listener");
    close(fd);

    port = free_port(AF_INET6);
    if (port < 0) {
        diag("no IPv6 loopback: skipping the [::1] listener");
        return;
    }
    snprintf(spec, sizeof(spec), "inet:[::1]:%d", port);
    ok(srv_listen(s, spec, err, sizeof(err)) == 0, "listen %s %s", spec, err);
    fd = cl_connect(AF_INET6, port, NULL);
    ok(fd >= 0 && roundtrip(fd, "act=V6\n\n", "action=V6\n\n"), "request via [::1]");
    ok(strncmp(last_peer, "[::1]:", 6) == 0, "v6 peer is [::1]:port (%s)", last_peer);
    close(fd);
}

static void test_unix(struct srv *s, const char *dir)
{
    char path[100], spec[256], err[256] = "";
    struct stat st;
    snprintf(path, sizeof(path), "%.80s/policy.sock", dir);
    snprintf(spec, sizeof(spec), "unix:%s", path);

    /* a stale socket file left by a crashed run */
    int stale = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un un = {0};
    un.sun_family = AF_UNIX;
    snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
    ok(bind(stale, (struct sockaddr *)&un, sizeof(un)) == 0, "stale socket file created");
    close(stale);

    ok(srv_listen(s, spec, err, sizeof(err)) == 0, "listen %s over a stale socket %s", spec, err);
    ok(stat(path, &st) == 0 && S_ISSOCK(st.st_mode), "socket file exists");
    is_int(st.st_mode & 0777, 0660, "socket mode is socket_mode");
    int fd = cl_connect(AF_UNIX, 0, path);
    ok(fd >= 0 && roundtrip(fd, "act=UNIX\n\n", "action=UNIX\n\n"), "request via unix socket");
    is_str(last_peer, "unix", "unix peer name");
    close(fd);

    /* socket_owner: a user[:group] is applied (root only), an unknown one refused */
    struct srv_limits lo = {.socket_mode = 0600, .socket_owner = "nobody:nogroup"};
    struct srv *so = srv_new(base, &lo, handler, NULL);
    snprintf(spec, sizeof(spec), "unix:%s.owned", path);
    if (geteuid() == 0) {
        ok(srv_listen(so, spec, err, sizeof(err)) == 0, "listen with socket_owner %s", err);
        struct passwd *pw = getpwnam("nobody");
        ok(stat(spec + 5, &st) == 0 && pw && st.st_uid == pw->pw_uid,
           "socket owned by socket_owner");
        is_int(st.st_mode & 0777, 0600, "socket mode 0600");
    } else {
        diag("not root: socket_owner chown not tested");
    }
    struct srv *s2 = srv_new(base, &lo, handler, NULL);
    if (geteuid() == 0) {
        ok(srv_listen(s2, spec, err, sizeof(err)) == -1 && strstr(err, "in use"),
           "a live server's socket is not replaced (%s)", err);
        ok(stat(spec + 5, &st) == 0 && S_ISSOCK(st.st_mode), "live socket file kept");
    }
    srv_free(&s2);
    ok(geteuid() != 0 || access(spec + 5, F_OK) == 0, "srv_free of another srv left it alone");
    lo.socket_owner = "no-such-user-xyz";
    srv_set_limits(so, &lo);
    snprintf(spec, sizeof(spec), "unix:%s.bad", path);
    ok(srv_listen(so, spec, err, sizeof(err)) == -1 && strstr(err, "unknown user"),
       "unknown socket owner refused (%s)", err);
    ok(access(spec + 5, F_OK) != 0, "no socket file left behind by a failed listen");
    srv_free(&so);
    snprintf(spec, sizeof(spec), "unix:%s.owned", path);
    ok(access(spec + 5, F_OK) != 0, "srv_free unlinks its unix socket");

    /* a regular file in the way is not removed */
    char fpath[220];
    snprintf(fpath, sizeof(fpath), "%s/regular", dir);
    FILE *f = fopen(fpath, "w");
    fclose(f);
    snprintf(spec, sizeof(spec), "unix:%s", fpath);
    ok(srv_listen(s, spec, err, sizeof(err)) == -1, "refuses to replace a regular file (%s)", err);
    ok(stat(fpath, &st) == 0 && S_ISREG(st.st_mode), "regular file kept");
    unlink(fpath);
}

static void test_timeouts_and_limit(int port)
{
    struct srv_limits lim = {.max_connections = 2,
                             .idle_timeout_ms = 300,
                             .request_timeout_ms = 500,
                             .socket_mode = 0600};
    struct srv *s = srv_new(base, &lim, handler, NULL);
    char spec[64], err[256] = "";
    snprintf(spec, sizeof(spec), "inet:127.0.0.1:%d", port);
    ok(srv_listen(s, spec, err, sizeof(err)) == 0, "listen %s %s", spec, err);

    /* idle timeout */
    int a = cl_connect(AF_INET, port, NULL);
    long long t0 = now_ms();
    size_t nb;
    ok(cl_closed(a, 2000, &nb), "idle connection closed");
    long long dt = now_ms() - t0;
    ok(dt >= 250 && dt < 1500, "idle timeout after ~300 ms (%lld ms)", dt);
    is_int((long long)stats(s).closed_idle, 1, "closed_idle counted");
    close(a);

    /* idle timer restarts after each reply */
    a = cl_connect(AF_INET, port, NULL);
    ok(roundtrip(a, "a=1\n\n", "action=DUNNO\n\n"), "request before idling");
    pump(200);
    ok(roundtrip(a, "a=2\n\n", "action=DUNNO\n\n"), "second request within the idle time");
    pump(200);
    ok(roundtrip(a, "a=3\n\n", "action=DUNNO\n\n"), "third request: idle timer was re-armed");
    close(a);

    /* slowloris: a byte every 100 ms keeps idle away but not the request timeout */
    a = cl_connect(AF_INET, port, NULL);
    t0 = now_ms();
    cl_puts(a, "a=1\n");
    int closed = 0;
    for (int i = 0; i < 30 && !closed; i++) {
        cl_puts(a, "b");
        closed = cl_closed(a, 100, &nb);
    }
    dt = now_ms() - t0;
    ok(closed, "slow request closed");
    ok(dt >= 450 && dt < 1500, "request timeout after ~500 ms (%lld ms)", dt);
    is_int((long long)stats(s).closed_timeout, 1, "closed_timeout counted");
    close(a);
    pump(20);

    /* max_connections */
    a = cl_connect(AF_INET, port, NULL);
    int b = cl_connect(AF_INET, port, NULL);
    ok(roundtrip(a, "a=1\n\n", "action=DUNNO\n\n") && roundtrip(b, "a=1\n\n", "action=DUNNO\n\n"),
       "two connections served");
    int c = cl_connect(AF_INET, port, NULL);
    cl_puts(c, "a=1\n\n");
    ok(cl_closed(c, 1000, &nb) && nb == 0, "third connection closed at once without a reply");
    is_int((long long)stats(s).refused_limit, 1, "refused_limit counted");
    is_int(stats(s).open, 2, "two connections open");
    close(c);
    close(b);
    pump(30);
    c = cl_connect(AF_INET, port, NULL);
    ok(roundtrip(c, "a=1\n\n", "action=DUNNO\n\n"), "a slot freed by a close is usable again");
    close(a);
    close(c);
    pump(20);
    srv_free(&s);
    ok(s == NULL, "srv_free NULLs the pointer");
}

static void test_shutdown(const char *dir)
{
    struct srv_limits lim = {0};
    struct srv *s = srv_new(base, &lim, handler, NULL);
    char spec[256], path[100], err[256] = "";
    int port = free_port(AF_INET), finished = 0;
    size_t nb;

    snprintf(spec, sizeof(spec), "inet:127.0.0.1:%d", port);
    ok(srv_listen(s, spec, err, sizeof(err)) == 0, "shutdown: listen %s", spec);
    snprintf(path, sizeof(path), "%.80s/shut.sock", dir);
    snprintf(spec, sizeof(spec), "unix:%s", path);
    ok(srv_listen(s, spec, err, sizeof(err)) == 0, "shutdown: listen %s", spec);

    int idle = cl_connect(AF_INET, port, NULL);
    int busy = cl_connect(AF_UNIX, 0, path);
    held = NULL;
    cl_puts(busy, "hold=1\n\n");
    pump(30);
    ok(held != NULL, "shutdown: a request is in flight");
    int calls = done_calls;
    srv_shutdown(s, done_cb, &finished);
    is_int(done_calls - calls, 0, "done not called from inside srv_shutdown");
    ok(cl_closed(idle, 1000, &nb) && nb == 0, "shutdown: idle connection closed");
    ok(access(path, F_OK) != 0, "shutdown: unix socket unlinked");
    ok(cl_connect(AF_INET, port, NULL) < 0, "shutdown: no longer accepting");
    pump(50);
    ok(!finished, "shutdown: done waits for the in-flight request");
    if (held) {
        srv_reply(held, "DEFER_IF_PERMIT bye");
        held = NULL;
    }
    struct got g = cl_read(busy, 40, 1000);
    is_str(g.buf, "action=DEFER_IF_PERMIT bye\n\n", "shutdown: in-flight request answered");
    ok(cl_closed(busy, 1000, &nb), "shutdown: answered connection then closed");
    pump(20);
    ok(finished, "shutdown: done called once nothing is left");
    is_int(done_calls - calls, 1, "done called exactly once");
    close(idle);
    close(busy);
    srv_free(&s);

    /* shutdown with nothing open still calls done, asynchronously; done may
     * free the server (as the daemon does) */
    s = srv_new(base, &lim, handler, NULL);
    srv_shutdown(s, done_free_cb, &s);
    ok(s != NULL, "empty shutdown: not synchronous");
    pump(10);
    ok(s == NULL, "empty shutdown: done called and freed the server from inside it");
}

int main(void)
{
    char dir[] = "/tmp/test_srv.XXXXXX";
    char spec[64], err[256] = "";
    long long t0 = now_ms();

    /* debug level: the transition and connection logs run too (stderr) */
    log_open("test_srv", LOG_T_STDERR, LOG_L_DEBUG);
    ok(mkdtemp(dir) != NULL, "temp dir %s", dir);
    base = event_base_new();
    struct srv_limits lim = {.max_connections = 50,
                             .idle_timeout_ms = 5000,
                             .request_timeout_ms = 5000,
                             .socket_mode = 0660,
                             .socket_owner = NULL};
    struct srv *s = srv_new(base, &lim, handler, NULL);
    ok(s != NULL, "srv_new");
    test_listen_errors(s);
    int port = free_port(AF_INET);
    snprintf(spec, sizeof(spec), "inet:127.0.0.1:%d", port);
    ok(srv_listen(s, spec, err, sizeof(err)) == 0, "listen %s %s", spec, err);
    test_tcp(s, port);
    test_localhost_v6(s);
    test_unix(s, dir);
    struct srv_stats st = stats(s);
    ok(st.requests >= st.replies && st.replies >= 10, "requests %llu, replies %llu",
       (unsigned long long)st.requests, (unsigned long long)st.replies);
    ok(st.accepted >= 10, "accepted %llu", (unsigned long long)st.accepted);
    srv_free(&s);

    test_timeouts_and_limit(free_port(AF_INET));
    test_shutdown(dir);

    event_base_free(base);
    rmdir(dir);
    diag("test_srv took %lld ms", now_ms() - t0);
    return tap_done();
}
