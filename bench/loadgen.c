/* loadgen.c - load generator for Postfix policy servers (bench/README.md).
 *
 * Behaves like a set of smtpd processes: C persistent connections, each with
 * exactly one outstanding request, every request carrying all attributes that
 * Postfix 3.7 sends at RCPT. A message (one `instance`) has --rcpts RCPT
 * requests sent one after the other on the same connection, as smtpd does.
 *
 * Every reply must be exactly "action=<non-empty text>\n\n": anything else
 * (extra bytes, an empty action, bytes arriving with no request outstanding,
 * the server closing a connection mid-request) is counted as an error and the
 * connection is replaced. Latency is measured per request from the moment it
 * was due (the send time when unpaced; the scheduled time under --rate, so a
 * stalled server cannot hide its queueing) to the end of the reply, and kept
 * as exact samples (uint32 nanoseconds) which are sorted at the end.
 *
 * Threads (-t) split the connections; each runs its own epoll loop. The only
 * shared state is two atomic counters (message and request numbers) so that
 * sequential keys stay distinct across threads and -n is exact. */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define LG_RBUF 4096
#define LG_MAX_ACTIONS 32
#define LG_TIMER_TAG UINT64_MAX

struct lg_opts {
    const char *host;
    int port;
    unsigned conns, threads, idle, rcpts, per_conn, fail_pct, seq, spin;
    int idle_port;             /* where the idle connections go (0: the server under test) */
    unsigned long long total;  /* requests, 0 = use duration */
    unsigned long long offset; /* first message number */
    double duration, rate;     /* seconds; requests/s (0 = as fast as possible) */
    unsigned clients, senders, rcpt_card, locals;
    unsigned timeout_ms;
    unsigned seed;
    const char *suffix; /* sender domains: d<N>.<suffix> */
    const char *label;
};

struct lg_action {
    char word[32];
    unsigned long long n;
};

struct lg_thread;

enum lg_state { LG_FREE, LG_WAITING, LG_DEAD };

struct lg_conn {
    struct lg_thread *t;
    int fd;
    enum lg_state state;
    char rbuf[LG_RBUF];
    size_t rlen;
    uint64_t due_ns; /* when the outstanding request was due */
    uint64_t msg;    /* message number of the current instance */
    unsigned rcpt;   /* RCPTs already sent for msg */
    unsigned nreq;   /* requests sent on this connection */
    unsigned long long msgs_on_conn;
};

struct lg_thread {
    const struct lg_opts *o;
    unsigned id;
    int ep, tfd;
    struct lg_conn *conns;
    unsigned nconns;
    uint32_t *lat; /* ns, one per completed request */
    size_t nlat, cap;
    unsigned long long ok, framing, closed, timeouts, connect_fail, reconnects;
    struct lg_action actions[LG_MAX_ACTIONS];
    unsigned nactions;
    uint64_t next_due, interval; /* --rate pacing, per thread */
    uint64_t rng;
    uint64_t end_ns;
    int stop;
};

static struct sockaddr_in lg_addr;
static unsigned long long lg_msg_counter; /* atomic: next message number */
/* Part of every instance id: consecutive runs against one daemon must not
 * reuse instances (the daemon remembers a message's decision; a reused
 * instance would get that message's later-request answer, DUNNO). */
static unsigned lg_run_id;
static unsigned long long lg_req_counter; /* atomic: requests claimed (-n) */
static uint64_t lg_start_ns;

static uint64_t lg_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t lg_rand(uint64_t *s)
{
    /* xorshift64*: fast, per thread, reproducible with --seed */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 2685821657736338717ull;
}

/* lg_connect_to: a blocking loopback connection to addr. */
static int lg_connect_to(const struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* Blocking connect on loopback: completes from the accept queue in
     * microseconds; a refused or stalled server is an error worth seeing. */
    if (connect(fd, (const struct sockaddr *)addr, sizeof *addr) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int lg_connect(void)
{
    return lg_connect_to(&lg_addr);
}

static void lg_count_action(struct lg_thread *t, const char *a, size_t len)
{
    size_t w = 0;
    while (w < len && a[w] != ' ' && a[w] != '\t')
        w++;
    if (w >= sizeof t->actions[0].word)
        w = sizeof t->actions[0].word - 1;
    for (unsigned i = 0; i < t->nactions; i++)
        if (strlen(t->actions[i].word) == w && memcmp(t->actions[i].word, a, w) == 0) {
            t->actions[i].n++;
            return;
        }
    if (t->nactions == LG_MAX_ACTIONS)
        return;
    memcpy(t->actions[t->nactions].word, a, w);
    t->actions[t->nactions].word[w] = 0;
    t->actions[t->nactions].n = 1;
    t->nactions++;
}

static void lg_record(struct lg_thread *t, uint64_t ns)
{
    if (t->nlat == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 65536;
        uint32_t *n = realloc(t->lat, ncap * sizeof *n);
        if (n == NULL) {
            perror("loadgen: realloc");
            exit(2);
        }
        t->lat = n;
        t->cap = ncap;
    }
    t->lat[t->nlat++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

/* Build the request for the current (msg, rcpt) of c into buf. */
static int lg_format(struct lg_conn *c, char *buf, size_t sz)
{
    const struct lg_opts *o = c->t->o;
    uint64_t m = c->msg, d, cl, r;
    int fail;
    if (o->seq) {
        d = m % o->senders;
        cl = m % o->clients;
        r = (m * o->rcpts + c->rcpt) % o->rcpt_card;
        fail = (int)((m * 2654435761u >> 7) % 100) < (int)o->fail_pct;
    } else {
        uint64_t *s = &c->t->rng;
        /* keys drawn once per message, the recipient per RCPT */
        uint64_t h = m * 0x9e3779b97f4a7c15ull ^ o->seed;
        h ^= h >> 31;
        h *= 0xbf58476d1ce4e5b9ull;
        h ^= h >> 29;
        d = h % o->senders;
        cl = (h >> 20) % o->clients;
        fail = (int)((h >> 40) % 100) < (int)o->fail_pct;
        r = lg_rand(s) % o->rcpt_card;
    }
    /* Client networks: 198.18.0.0/15 (RFC 2544 benchmarking). Domain dN
     * authorises 198.18.(N%256).0/24 (bench/gen-zone.py); 198.19.x.y is
     * listed nowhere, so those messages fail SPF. */
    unsigned net = (unsigned)(d % 256), host = (unsigned)(cl % 250) + 1 + (unsigned)(cl / 250 % 4);
    if (host > 254)
        host = 254;
    unsigned cport = 1024 + (unsigned)((m * 7919) % 60000);
    return snprintf(buf, sz,
                    "request=smtpd_access_policy\n"
                    "protocol_state=RCPT\n"
                    "protocol_name=ESMTP\n"
                    "client_address=198.%u.%u.%u\n"
                    "client_name=mail%u.d%llu.%s\n"
                    "client_port=%u\n"
                    "reverse_client_name=mail%u.d%llu.%s\n"
                    "server_address=192.0.2.25\n"
                    "server_port=25\n"
                    "helo_name=mail%u.d%llu.%s\n"
                    "sender=user%llu+tag@d%llu.%s\n"
                    "recipient=rcpt%llu@mx.bench.example\n"
                    "recipient_count=%u\n"
                    "queue_id=\n"
                    "instance=%x.%llx.%x.%u\n"
                    "size=%u\n"
                    "etrn_domain=\n"
                    "stress=\n"
                    "sasl_method=\n"
                    "sasl_username=\n"
                    "sasl_sender=\n"
                    "ccert_subject=\n"
                    "ccert_issuer=\n"
                    "ccert_fingerprint=\n"
                    "ccert_pubkey_fingerprint=\n"
                    "encryption_protocol=TLSv1.3\n"
                    "encryption_cipher=TLS_AES_256_GCM_SHA384\n"
                    "encryption_keysize=256\n"
                    "policy_context=\n"
                    "\n",
                    fail ? 19u : 18u, net, host, host, (unsigned long long)d, o->suffix, cport,
                    host, (unsigned long long)d, o->suffix, host, (unsigned long long)d, o->suffix,
                    (unsigned long long)(m % o->locals), (unsigned long long)d, o->suffix,
                    (unsigned long long)r, c->rcpt, 0x1000u + c->t->id, (unsigned long long)m,
                    (unsigned)(c - c->t->conns), lg_run_id, 1000u + (unsigned)(m % 50000));
}

static void lg_close(struct lg_conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(c->t->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = LG_DEAD;
    c->rlen = 0;
}

static int lg_open(struct lg_conn *c)
{
    c->fd = lg_connect();
    if (c->fd < 0) {
        c->t->connect_fail++;
        c->state = LG_DEAD;
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    epoll_ctl(c->t->ep, EPOLL_CTL_ADD, c->fd, &ev);
    c->state = LG_FREE;
    c->rlen = 0;
    c->nreq = 0;
    c->rcpt = 0;
    c->msgs_on_conn = 0;
    return 0;
}

/* Replace a broken connection; the current message is abandoned (a new
 * smtpd session would start a new one). */
static void lg_reopen(struct lg_conn *c)
{
    lg_close(c);
    c->t->reconnects++;
    c->rcpt = 0;
    lg_open(c);
}

/* Claim one request slot; 0 when the run is over. */
static int lg_claim(struct lg_thread *t, uint64_t now)
{
    if (t->stop)
        return 0;
    if (t->o->total) {
        if (__atomic_fetch_add(&lg_req_counter, 1, __ATOMIC_RELAXED) >= t->o->total) {
            t->stop = 1;
            return 0;
        }
    } else if (now >= t->end_ns) {
        t->stop = 1;
        return 0;
    }
    return 1;
}

static int lg_send(struct lg_conn *c, uint64_t due)
{
    char buf[2048];
    if (c->rcpt == 0 || c->rcpt >= c->t->o->rcpts) {
        /* connection churn: close at a message boundary after --per-conn requests */
        if (c->t->o->per_conn && c->nreq >= c->t->o->per_conn) {
            lg_close(c);
            if (lg_open(c) < 0)
                return -1;
        }
        c->msg = __atomic_fetch_add(&lg_msg_counter, 1, __ATOMIC_RELAXED);
        c->rcpt = 0;
    }
    int n = lg_format(c, buf, sizeof buf);
    if (n < 0 || (size_t)n >= sizeof buf)
        abort(); /* a bug: keys are bounded */
    c->due_ns = due;
    size_t off = 0;
    while (off < (size_t)n) {
        ssize_t w = send(c->fd, buf + off, (size_t)n - off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            c->t->closed++;
            lg_reopen(c);
            return -1;
        }
        off += (size_t)w;
    }
    c->rcpt++;
    c->nreq++;
    c->state = LG_WAITING;
    return 0;
}

/* Check a complete reply in c->rbuf (ends at end, "\n\n" included). */
static void lg_reply(struct lg_conn *c, size_t end, uint64_t now)
{
    struct lg_thread *t = c->t;
    const char *r = c->rbuf;
    size_t body = end - 2; /* "action=..." without the empty line */
    int good = c->state == LG_WAITING && end == c->rlen && body > 7 &&
               memcmp(r, "action=", 7) == 0 && memchr(r, '\n', body) == NULL &&
               memchr(r, '\r', body) == NULL && memchr(r, '\0', body) == NULL;
    if (!good) {
        t->framing++;
        if (t->framing <= 3)
            fprintf(stderr, "loadgen: bad reply (%zu bytes, %zu buffered): %.*s\n", end, c->rlen,
                    (int)(c->rlen > 200 ? 200 : c->rlen), r);
        lg_reopen(c);
        return;
    }
    lg_record(t, now - c->due_ns);
    lg_count_action(t, r + 7, body - 7);
    t->ok++;
    c->rlen = 0;
    c->state = LG_FREE;
}

static void lg_readable(struct lg_conn *c, uint64_t now)
{
    for (;;) {
        if (c->rlen == sizeof c->rbuf) {
            c->t->framing++;
            lg_reopen(c);
            return;
        }
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            /* EOF or reset: an error only when a request was outstanding */
            if (c->state == LG_WAITING || c->rlen)
                c->t->closed++;
            lg_reopen(c);
            return;
        }
        c->rlen += (size_t)n;
        /* one read per wakeup: a reply is small and arrives in one segment;
         * a second recv would just return EAGAIN (a syscall per request) */
        if (memmem(c->rbuf, c->rlen, "\n\n", 2) != NULL || c->state != LG_WAITING)
            break;
    }
    if (c->state != LG_WAITING) {
        c->t->framing++; /* unsolicited bytes */
        lg_reopen(c);
        return;
    }
    char *e = memmem(c->rbuf, c->rlen, "\n\n", 2);
    if (e != NULL)
        lg_reply(c, (size_t)(e - c->rbuf) + 2, now);
}

static void lg_arm_timer(struct lg_thread *t, uint64_t at)
{
    struct itimerspec its = {0};
    if (at) {
        its.it_value.tv_sec = (time_t)(at / 1000000000u);
        its.it_value.tv_nsec = (long)(at % 1000000000u);
    }
    timerfd_settime(t->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* Send on every free connection whose request is due. */
static void lg_pump(struct lg_thread *t, uint64_t now)
{
    for (unsigned i = 0; i < t->nconns; i++) {
        struct lg_conn *c = &t->conns[i];
        if (c->state == LG_DEAD) {
            if (t->stop)
                continue;
            if (lg_open(c) < 0) {
                /* the server refuses connections: the run is over (an
                 * error in the result, not a busy loop) */
                t->stop = 1;
                continue;
            }
        }
        if (c->state != LG_FREE)
            continue;
        uint64_t due = now;
        if (t->interval) {
            if (t->next_due > now)
                break;
            due = t->next_due;
        }
        if (!lg_claim(t, now))
            return;
        if (lg_send(c, due) == 0 && t->interval)
            t->next_due += t->interval;
    }
}

static void *lg_run(void *arg)
{
    struct lg_thread *t = arg;
    struct epoll_event evs[256];
    uint64_t last_scan = lg_now();
    t->ep = epoll_create1(EPOLL_CLOEXEC);
    t->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event tev = {.events = EPOLLIN, .data.u64 = LG_TIMER_TAG};
    epoll_ctl(t->ep, EPOLL_CTL_ADD, t->tfd, &tev);
    for (unsigned i = 0; i < t->nconns; i++) {
        t->conns[i].t = t;
        t->conns[i].fd = -1;
        lg_open(&t->conns[i]);
    }
    t->next_due = lg_start_ns;
    lg_pump(t, lg_now());
    for (;;) {
        unsigned waiting = 0;
        for (unsigned i = 0; i < t->nconns; i++)
            waiting += t->conns[i].state == LG_WAITING;
        if (t->stop && waiting == 0)
            break;
        int timeout = 100;
        if (t->interval && !t->stop)
            lg_arm_timer(t, t->next_due);
        if (!t->o->total && !t->stop) {
            uint64_t now = lg_now();
            int left = now >= t->end_ns ? 0 : (int)((t->end_ns - now) / 1000000u) + 1;
            if (left < timeout)
                timeout = left;
        }
        if (t->o->spin)
            timeout = 0; /* busy-poll: no wakeup latency of our own */
        int n = epoll_wait(t->ep, evs, 256, timeout);
        uint64_t now = lg_now();
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == LG_TIMER_TAG) {
                uint64_t x;
                while (read(t->tfd, &x, sizeof x) > 0)
                    ;
                continue;
            }
            lg_readable(evs[i].data.ptr, now);
        }
        if (!t->o->total && now >= t->end_ns)
            t->stop = 1;
        if (now - last_scan > 50000000u) { /* request timeouts, every 50 ms */
            last_scan = now;
            for (unsigned i = 0; i < t->nconns; i++) {
                struct lg_conn *c = &t->conns[i];
                if (c->state == LG_WAITING &&
                    now - c->due_ns > (uint64_t)t->o->timeout_ms * 1000000u) {
                    t->timeouts++;
                    lg_reopen(c);
                }
            }
        }
        if (!t->stop)
            lg_pump(t, now);
    }
    for (unsigned i = 0; i < t->nconns; i++)
        lg_close(&t->conns[i]);
    close(t->tfd);
    close(t->ep);
    return NULL;
}

static int lg_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double lg_pct(const uint32_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i] / 1000.0; /* microseconds */
}

static void lg_usage(void)
{
    fprintf(stderr,
            "usage: pd-loadgen -p PORT [options]\n"
            "  -H HOST          server address (127.0.0.1)\n"
            "  -p PORT          server port\n"
            "  -c N             busy connections, one outstanding request each (16)\n"
            "  -t N             threads (1); connections are split among them\n"
            "  -d SECONDS       run this long (5), or\n"
            "  -n N             send exactly N requests\n"
            "  -r RATE          target requests/s over all connections (0 = unpaced)\n"
            "  --clients N      distinct client hosts (100)\n"
            "  --senders N      distinct sender domains d0..d<N-1>.SUFFIX (1000)\n"
            "  --rcpt-card N    distinct recipients (1000)\n"
            "  --locals N       distinct sender local parts per domain (1000)\n"
            "  --rcpts N        RCPT requests per message (instance) (1)\n"
            "  --per-conn N     reconnect after N requests, at a message boundary (0 = never)\n"
            "  --idle N         also open N connections and keep them idle\n"
            "  --idle-port P    ... to this port instead of the server's (the machine's share\n"
            "                   of what idle connections cost, without the server)\n"
            "  --fail-pct P     percent of messages from unauthorised clients (10)\n"
            "  --seq            keys by message number (m mod N) instead of random\n"
            "  --offset N       number of the first message (0)\n"
            "  --suffix S       sender domain suffix (bench.example)\n"
            "  --timeout MS     a request unanswered this long is an error (10000)\n"
            "  --seed N         random seed (1)\n"
            "  --spin           busy-poll instead of sleeping (takes a CPU; removes the\n"
            "                   generator's own wakeup latency from paced runs)\n"
            "  --label S        name printed on the RESULT line\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct lg_opts o = {.host = "127.0.0.1",
                        .conns = 16,
                        .threads = 1,
                        .rcpts = 1,
                        .fail_pct = 10,
                        .duration = 5,
                        .clients = 100,
                        .senders = 1000,
                        .rcpt_card = 1000,
                        .locals = 1000,
                        .timeout_ms = 10000,
                        .seed = 1,
                        .suffix = "bench.example",
                        .label = "run"};
    enum {
        O_CLIENTS = 256,
        O_SENDERS,
        O_RCPTCARD,
        O_RCPTS,
        O_PERCONN,
        O_IDLE,
        O_FAIL,
        O_SEQ,
        O_SUFFIX,
        O_TIMEOUT,
        O_SEED,
        O_LABEL,
        O_OFFSET,
        O_LOCALS,
        O_SPIN,
        O_IDLEPORT
    };
    static const struct option lo[] = {{"clients", 1, 0, O_CLIENTS},
                                       {"senders", 1, 0, O_SENDERS},
                                       {"rcpt-card", 1, 0, O_RCPTCARD},
                                       {"rcpts", 1, 0, O_RCPTS},
                                       {"per-conn", 1, 0, O_PERCONN},
                                       {"idle", 1, 0, O_IDLE},
                                       {"fail-pct", 1, 0, O_FAIL},
                                       {"seq", 0, 0, O_SEQ},
                                       {"suffix", 1, 0, O_SUFFIX},
                                       {"timeout", 1, 0, O_TIMEOUT},
                                       {"seed", 1, 0, O_SEED},
                                       {"label", 1, 0, O_LABEL},
                                       {"offset", 1, 0, O_OFFSET},
                                       {"locals", 1, 0, O_LOCALS},
                                       {"spin", 0, 0, O_SPIN},
                                       {"idle-port", 1, 0, O_IDLEPORT},
                                       {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "H:p:c:t:d:n:r:h", lo, NULL)) != -1) {
        switch (ch) {
        case 'H':
            o.host = optarg;
            break;
        case 'p':
            o.port = atoi(optarg);
            break;
        case 'c':
            o.conns = (unsigned)atoi(optarg);
            break;
        case 't':
            o.threads = (unsigned)atoi(optarg);
            break;
        case 'd':
            o.duration = atof(optarg);
            break;
        case 'n':
            o.total = strtoull(optarg, NULL, 10);
            break;
        case 'r':
            o.rate = atof(optarg);
            break;
        case O_CLIENTS:
            o.clients = (unsigned)atoi(optarg);
            break;
        case O_SENDERS:
            o.senders = (unsigned)atoi(optarg);
            break;
        case O_RCPTCARD:
            o.rcpt_card = (unsigned)atoi(optarg);
            break;
        case O_RCPTS:
            o.rcpts = (unsigned)atoi(optarg);
            break;
        case O_PERCONN:
            o.per_conn = (unsigned)atoi(optarg);
            break;
        case O_IDLE:
            o.idle = (unsigned)atoi(optarg);
            break;
        case O_IDLEPORT:
            o.idle_port = atoi(optarg);
            break;
        case O_FAIL:
            o.fail_pct = (unsigned)atoi(optarg);
            break;
        case O_SEQ:
            o.seq = 1;
            break;
        case O_SUFFIX:
            o.suffix = optarg;
            break;
        case O_TIMEOUT:
            o.timeout_ms = (unsigned)atoi(optarg);
            break;
        case O_SEED:
            o.seed = (unsigned)atoi(optarg);
            break;
        case O_LABEL:
            o.label = optarg;
            break;
        case O_SPIN:
            o.spin = 1;
            break;
        case O_LOCALS:
            o.locals = (unsigned)atoi(optarg);
            break;
        case O_OFFSET:
            o.offset = strtoull(optarg, NULL, 10);
            break;
        default:
            lg_usage();
        }
    }
    if (o.port <= 0 || o.conns == 0 || o.threads == 0 || o.threads > o.conns || o.rcpts == 0 ||
        o.clients == 0 || o.senders == 0 || o.rcpt_card == 0 || o.locals == 0)
        lg_usage();
    signal(SIGPIPE, SIG_IGN);
    lg_addr.sin_family = AF_INET;
    lg_addr.sin_port = htons((uint16_t)o.port);
    if (inet_pton(AF_INET, o.host, &lg_addr.sin_addr) != 1) {
        fprintf(stderr, "loadgen: bad address %s\n", o.host);
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    /* Idle connections first, held for the whole run. */
    int *idle = calloc(o.idle ? o.idle : 1, sizeof *idle);
    unsigned idle_open = 0;
    struct sockaddr_in idle_addr = lg_addr;
    if (o.idle_port > 0)
        idle_addr.sin_port = htons((uint16_t)o.idle_port);
    for (unsigned i = 0; i < o.idle; i++) {
        idle[i] = lg_connect_to(&idle_addr);
        if (idle[i] >= 0)
            idle_open++;
    }
    /* A connect completes in the kernel before the server accept()s it, so
     * without a pause the timed run would start while the server is still
     * accepting the idle connections, and charge that to the busy ones'
     * latency (13 ms p99 vs 0.7 ms in one run). One second covers 10,000. */
    if (idle_open > 0)
        sleep(1);

    struct lg_thread *th = calloc(o.threads, sizeof *th);
    struct lg_conn *conns = calloc(o.conns, sizeof *conns);
    pthread_t *tid = calloc(o.threads, sizeof *tid);
    if (!th || !conns || !tid || !idle) {
        perror("loadgen: calloc");
        return 2;
    }
    lg_msg_counter = o.offset;
    lg_run_id = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16);
    lg_start_ns = lg_now();
    unsigned off = 0;
    for (unsigned i = 0; i < o.threads; i++) {
        th[i].o = &o;
        th[i].id = i;
        th[i].nconns = o.conns / o.threads + (i < o.conns % o.threads);
        th[i].conns = conns + off;
        off += th[i].nconns;
        th[i].rng = 0x853c49e6748fea9bull ^ ((uint64_t)o.seed << 17) ^ (i + 1);
        th[i].end_ns = lg_start_ns + (uint64_t)(o.duration * 1e9);
        th[i].interval = o.rate > 0 ? (uint64_t)(1e9 * o.threads / o.rate) : 0;
        pthread_create(&tid[i], NULL, lg_run, &th[i]);
    }
    for (unsigned i = 0; i < o.threads; i++)
        pthread_join(tid[i], NULL);
    double secs = (double)(lg_now() - lg_start_ns) / 1e9;

    /* Idle connections still open? A peek reads 0 on a closed one. */
    unsigned idle_alive = 0;
    for (unsigned i = 0; i < o.idle; i++) {
        if (idle[i] < 0)
            continue;
        char b;
        ssize_t n = recv(idle[i], &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            idle_alive++;
        close(idle[i]);
    }

    /* Merge. */
    size_t n = 0;
    for (unsigned i = 0; i < o.threads; i++)
        n += th[i].nlat;
    uint32_t *all = malloc((n ? n : 1) * sizeof *all);
    struct lg_action acts[LG_MAX_ACTIONS];
    unsigned nacts = 0;
    unsigned long long ok = 0, framing = 0, closed = 0, timeouts = 0, cfail = 0, reconn = 0;
    n = 0;
    for (unsigned i = 0; i < o.threads; i++) {
        struct lg_thread *t = &th[i];
        memcpy(all + n, t->lat, t->nlat * sizeof *all);
        n += t->nlat;
        ok += t->ok;
        framing += t->framing;
        closed += t->closed;
        timeouts += t->timeouts;
        cfail += t->connect_fail;
        reconn += t->reconnects;
        for (unsigned a = 0; a < t->nactions; a++) {
            unsigned j;
            for (j = 0; j < nacts; j++)
                if (strcmp(acts[j].word, t->actions[a].word) == 0)
                    break;
            if (j == nacts) {
                if (nacts == LG_MAX_ACTIONS)
                    continue;
                acts[nacts] = t->actions[a];
                acts[nacts++].n = 0;
            }
            acts[j].n += t->actions[a].n;
        }
        free(t->lat);
    }
    qsort(all, n, sizeof *all, lg_cmp);
    char actbuf[1024] = "";
    size_t al = 0;
    for (unsigned j = 0; j < nacts && al < sizeof actbuf - 64; j++)
        al += (size_t)snprintf(actbuf + al, sizeof actbuf - al, "%s%s:%llu", j ? "," : "",
                               acts[j].word, acts[j].n);
    unsigned long long errors = framing + closed + timeouts + cfail;
    printf("RESULT label=%s conns=%u idle=%u requests=%llu seconds=%.3f rate=%.0f p50_us=%.1f "
           "p90_us=%.1f p99_us=%.1f max_us=%.1f errors=%llu framing=%llu closed=%llu "
           "timeouts=%llu connect_fail=%llu reconnects=%llu idle_open=%u idle_alive=%u "
           "actions=%s\n",
           o.label, o.conns, o.idle, ok, secs, secs > 0 ? (double)ok / secs : 0, lg_pct(all, n, 50),
           lg_pct(all, n, 90), lg_pct(all, n, 99), n ? all[n - 1] / 1000.0 : 0, errors, framing,
           closed, timeouts, cfail, reconn, idle_open, idle_alive, nacts ? actbuf : "-");
    free(all);
    free(th);
    free(conns);
    free(tid);
    free(idle);
    return framing || closed ? 1 : 0;
}
