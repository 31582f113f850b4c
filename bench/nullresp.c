/* nullresp.c - the null policy server: the physical bound for a benchmark.
 *
 * Answers "action=DUNNO\n\n" to every complete request (a block ending in an
 * empty line) on every connection, from one thread with epoll. It parses
 * nothing else, so its rate is what the kernel, loopback TCP and the load
 * generator allow: a policy server cannot go faster on the same machine.
 *
 *   pd-nullresp -p PORT [-a ADDR] [-P PIDFILE]
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
    char last; /* last byte seen, so "\n" + "\n" split over reads counts */
};

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
    free(c);
}

/* Read what is there; answer once per "\n\n". 0 to keep, -1 to close. */
static int nr_serve(struct nr_conn *c)
{
    static const char reply[] = "action=DUNNO\n\n";
    char buf[NR_BUF];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0)
            return -1;
        unsigned replies = 0;
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n' && c->last == '\n') {
                replies++;
                c->last = 0;
            } else {
                c->last = buf[i];
            }
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
    int port = 0, ch;
    while ((ch = getopt(argc, argv, "a:p:P:")) != -1) {
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
        default:
            fprintf(stderr, "usage: pd-nullresp -p PORT [-a ADDR] [-P PIDFILE]\n");
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
            if (nr_serve(c) < 0)
                nr_close(ep, c);
        }
    }
    if (pidfile)
        unlink(pidfile);
    return 0;
}
