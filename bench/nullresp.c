/* nullresp.c - the null policy server: the physical bound for a benchmark.
 *
 * Answers "action=DUNNO\n\n" to every complete request (a block ending in an
 * empty line) on every connection, from one thread with epoll. It parses
 * nothing else, so its rate is what the kernel, loopback TCP and the load
 * generator allow: a policy server cannot go faster on the same machine.
 *
 * With -R REDIS_PORT it is the bound of a greylisting server that keeps its
 * state in Redis: each request costs one EVALSHA of a script making the
 * Redis calls of a first-seen triplet (HMGET, HSET, PEXPIRE on a new key,
 * and the same one-integer reply as policyd-dmarc's script),
 * and is answered DEFER_IF_PERMIT when the script's reply arrives. Commands
 * of one epoll round leave in one write, as hiredis does per loop turn.
 *
 *   pd-nullresp -p PORT [-a ADDR] [-P PIDFILE] [-R REDIS_PORT]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define NR_BUF 16384

struct nr_conn {
    int fd;
    char last;   /* last byte seen, so "\n" + "\n" split over reads counts */
    int waiting; /* -R: requests whose Redis reply is still due */
    int closed;  /* -R: gone while waiting; freed by the last reply */
};

/* -R: the Redis side. Requests wait in a FIFO (Redis answers in order). */
#define NR_FIFO 65536
static struct {
    int fd;
    char sha[41];
    char out[1 << 20];
    size_t outlen;
    char in[1 << 16];
    size_t inlen;
    struct nr_conn *fifo[NR_FIFO];
    size_t head, tail;
    unsigned long long seq;
} R = {.fd = -1};

static const char nr_script[] = "redis.call('HMGET',KEYS[1],'f','l','p') "
                                "redis.call('HSET',KEYS[1],'f',ARGV[1],'l',ARGV[1],'p','0') "
                                "redis.call('PEXPIRE',KEYS[1],ARGV[2]) return 1200000";

static volatile sig_atomic_t nr_stop;

static void nr_on_signal(int sig)
{
    (void)sig;
    nr_stop = 1;
}

static void nr_close(int ep, struct nr_conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    if (c->waiting > 0)
        c->closed = 1; /* its replies are still due: freed by the last one */
    else
        free(c);
}

/* nr_recv: bytes read (> 0), 0 when nothing is there now, -1 at EOF or on
 * an error. */
static ssize_t nr_recv(int fd, char *buf, size_t len)
{
    for (;;) {
        ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        return n > 0 ? n : -1;
    }
}

/* nr_resp_len: length of the complete RESP value at p (n bytes), 0 if it is
 * not all there yet, -1 if malformed. Arrays of simple values only. */
static long nr_resp_len(const char *p, size_t n)
{
    const char *e = memchr(p, '\n', n);
    long len, k;

    if (e == NULL)
        return 0;
    len = e - p + 1;
    switch (p[0]) {
    case '+':
    case '-':
    case ':':
        return len;
    case '$':
        k = atol(p + 1);
        if (k < 0)
            return len;
        return (size_t)(len + k + 2) <= n ? len + k + 2 : 0;
    case '*':
        k = atol(p + 1);
        for (long i = 0; i < k; i++) {
            long l = nr_resp_len(p + len, n - (size_t)len);
            if (l <= 0)
                return l;
            len += l;
        }
        return len;
    default:
        return -1;
    }
}

/* nr_redis_cmd: append EVALSHA <sha> 1 nr:grey:{<seq>} <now> <ttl>. */
static void nr_redis_cmd(void)
{
    char key[48], seq[24];
    int kl = snprintf(key, sizeof key, "nr:grey:{%llu}", ++R.seq);
    int sl = snprintf(seq, sizeof seq, "%llu", R.seq);

    if (R.outlen + 256 > sizeof R.out)
        return; /* cannot happen with one request per connection */
    R.outlen += (size_t)snprintf(R.out + R.outlen, sizeof R.out - R.outlen,
                                 "*6\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n$1\r\n1\r\n"
                                 "$%d\r\n%s\r\n$%d\r\n%s\r\n$9\r\n172800000\r\n",
                                 R.sha, kl, key, sl, seq);
}

/* nr_redis_read: answer one waiting request per complete reply. */
static int nr_redis_read(int ep)
{
    static const char reply[] = "action=DEFER_IF_PERMIT 4.7.1 Greylisted\n\n";

    for (;;) {
        ssize_t n = nr_recv(R.fd, R.in + R.inlen, sizeof R.in - R.inlen);
        if (n <= 0)
            return (int)n;
        R.inlen += (size_t)n;
        size_t off = 0;
        long l;
        while (off < R.inlen && (l = nr_resp_len(R.in + off, R.inlen - off)) > 0) {
            struct nr_conn *c;
            if (R.head == R.tail || R.in[off] == '-')
                return -1; /* a reply nobody asked for, or an error */
            c = R.fifo[R.head++ % NR_FIFO];
            off += (size_t)l;
            c->waiting--;
            if (c->closed) {
                if (c->waiting == 0)
                    free(c);
                continue;
            }
            if (send(c->fd, reply, sizeof reply - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof reply - 1))
                nr_close(ep, c);
        }
        if (l < 0)
            return -1;
        memmove(R.in, R.in + off, R.inlen - off);
        R.inlen -= off;
    }
}

/* nr_redis_connect: blocking connect and SCRIPT LOAD, then non-blocking. */
static int nr_redis_connect(int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char cmd[512], rep[128];
    int one = 1, len;
    ssize_t n;

    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    if ((R.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(R.fd, (struct sockaddr *)&sin, sizeof sin) < 0)
        return -1;
    setsockopt(R.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    len = snprintf(cmd, sizeof cmd, "*3\r\n$6\r\nSCRIPT\r\n$4\r\nLOAD\r\n$%zu\r\n%s\r\n",
                   strlen(nr_script), nr_script);
    if (send(R.fd, cmd, (size_t)len, 0) != len || (n = recv(R.fd, rep, sizeof rep - 1, 0)) < 47 ||
        rep[0] != '$')
        return -1;
    memcpy(R.sha, rep + 5, 40); /* "$40\r\n" + sha + "\r\n" */
    R.sha[40] = '\0';
    return 0;
}

/* Read what is there; answer once per "\n\n". 0 to keep, -1 to close. */
static int nr_serve(struct nr_conn *c)
{
    static const char reply[] = "action=DUNNO\n\n";
    char buf[NR_BUF];
    for (;;) {
        ssize_t n = nr_recv(c->fd, buf, sizeof buf);
        if (n <= 0)
            return (int)n;
        unsigned replies = 0;
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n' && c->last == '\n') {
                replies++;
                c->last = 0;
            } else {
                c->last = buf[i];
            }
        }
        if (R.fd >= 0) {
            while (replies--) {
                nr_redis_cmd();
                c->waiting++;
                R.fifo[R.tail++ % NR_FIFO] = c;
            }
            if ((size_t)n < sizeof buf)
                return 0;
            continue;
        }
        /* Policy clients keep one request outstanding, so this is one reply;
         * pipelined requests get theirs in one write. */
        while (replies--) {
            if (send(c->fd, reply, sizeof reply - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof reply - 1))
                return -1;
        }
        if ((size_t)n < sizeof buf)
            return 0; /* drained: skip the recv that would say EAGAIN */
    }
}

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1", *pidfile = NULL;
    int port = 0, rport = 0, ch;
    while ((ch = getopt(argc, argv, "a:p:P:R:")) != -1) {
        switch (ch) {
        case 'a':
            addr = optarg;
            break;
        case 'p':
            port = atoi(optarg);
            break;
        case 'P':
            pidfile = optarg;
            break;
        case 'R':
            rport = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: pd-nullresp -p PORT [-a ADDR] [-P PIDFILE] [-R REDIS_PORT]\n");
            return 2;
        }
    }
    if (port <= 0) {
        fprintf(stderr, "usage: pd-nullresp -p PORT [-a ADDR] [-P PIDFILE]\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = nr_on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
        fprintf(stderr, "nullresp: bad address %s\n", addr);
        return 2;
    }
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ls < 0 || bind(ls, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(ls, 4096) < 0) {
        perror("nullresp: listen");
        return 1;
    }
    if (pidfile) {
        FILE *f = fopen(pidfile, "w");
        if (f) {
            fprintf(f, "%ld\n", (long)getpid());
            fclose(f);
        }
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev);
    static struct nr_conn redis_mark; /* epoll tag of the Redis socket */
    if (rport > 0) {
        if (nr_redis_connect(rport) < 0) {
            fprintf(stderr, "nullresp: cannot use redis on port %d\n", rport);
            return 1;
        }
        struct epoll_event rev = {.events = EPOLLIN, .data.ptr = &redis_mark};
        epoll_ctl(ep, EPOLL_CTL_ADD, R.fd, &rev);
    }
    struct epoll_event evs[256];
    while (!nr_stop) {
        int n = epoll_wait(ep, evs, 256, 500);
        for (int i = 0; i < n; i++) {
            struct nr_conn *c = evs[i].data.ptr;
            if (c == NULL) { /* the listener: accept everything pending */
                int fd;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct nr_conn *nc = calloc(1, sizeof *nc);
                    if (nc == NULL) {
                        close(fd);
                        continue;
                    }
                    nc->fd = fd;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            if (c == &redis_mark) {
                if (nr_redis_read(ep) < 0) {
                    fprintf(stderr, "nullresp: redis connection failed\n");
                    return 1;
                }
                continue;
            }
            if (nr_serve(c) < 0)
                nr_close(ep, c);
        }
        /* -R: this round's commands in one write (blocking: Redis reads
         * fast, and a bound measurement need not be clever here). */
        for (size_t off = 0; off < R.outlen;) {
            ssize_t w = send(R.fd, R.out + off, R.outlen - off, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                fprintf(stderr, "nullresp: redis write failed\n");
                return 1;
            }
            off += (size_t)w;
        }
        R.outlen = 0;
    }
    if (pidfile)
        unlink(pidfile);
    return 0;
}
