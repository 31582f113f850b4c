/* grey.h - greylisting rules, pure: the triplet (client network, normalised
 * sender, recipient) and its key, the state machine of one triplet and of the
 * client auto-whitelist (AWL) with an injected clock, the reply text, and
 * postgrey-format whitelist files (clients, recipients).
 *
 * No sockets, no clocks, no Redis: redis/rgrey.c stores the state and runs
 * the same rules in Lua; the functions here are the tested reference it
 * mirrors. Times are milliseconds (unix epoch for instants). */
#ifndef PD_GREY_H
#define PD_GREY_H

#include <stddef.h>

/* What greylisting says about one RCPT. */
enum grey_verdict {
    GREY_DEFER = 0, /* not yet: answer the greylist action; wait_s seconds left */
    GREY_PASS,      /* triplet passed before and is still fresh */
    GREY_PASS_NEW,  /* first successful retry (counts towards the client AWL) */
    GREY_PASS_AWL,  /* the client network is auto-whitelisted */
    GREY_ERROR      /* no answer (Redis away/error): the caller fails open (DUNNO) */
};
/* grey_verdict_name: "defer", "pass", "pass_new", "pass_awl", "error". */
const char *grey_verdict_name(enum grey_verdict v);

/* The settings the rules need (the caller copies them from cfg). */
struct grey_params {
    long long delay_ms;   /* greylist_delay */
    long long window_ms;  /* greylist_retry_window: how long after first sight a retry counts */
    long long max_age_ms; /* greylist_max_age: life of a passed triplet / AWL entry */
    unsigned awl_count;   /* greylist_awl_count; 0 disables the AWL */
    long long awl_interval_ms; /* AWL counts at most one pass per network per interval */
    unsigned ipv4_prefix;      /* greylist_ipv4_prefix (8..32) */
    unsigned ipv6_prefix;      /* greylist_ipv6_prefix (16..128) */
};
/* As postgrey: a burst of passes (one message to 5 recipients) counts once per hour. */
#define GREY_AWL_INTERVAL_MS 3600000LL
/* grey_params_init: postgrey's defaults (300 s, 2 d, 35 d, AWL 5, /24, /64). */
void grey_params_init(struct grey_params *p);

/* ---- the triplet ---- */

#define GREY_ADDR_MAX 512 /* normalised sender / recipient, bytes incl. NUL */
#define GREY_NET_MAX 48   /* "2001:db8:1:2::/64" incl. NUL */
#define GREY_KEY_MAX 33   /* 32 hex digits + NUL */

/* grey_normalize_sender: the sender as greylisting sees it, into out (size sz,
 * always NUL-terminated). In order:
 *   1. lowercase (ASCII);
 *   2. BATV: "prvs=TAG=user@d" and the swapped "prvs=user=TAG@d" (TAG: 10
 *      [0-9a-z] as the standard's K DDD SSSSSS), "msprvs1=TAG=user@d",
 *      "btv1==TAG==user@d" -> "user@d";
 *   3. SRS: "srs0=HASH=TT=domain=user@fwd" -> "srs0=#=#=domain=user@fwd"
 *      (hash and timestamp change per message; the original sender stays);
 *   4. "+extension" in the local part: cut from the first '+';
 *   5. every run of digits standing alone between non-word characters
 *      (perl's \b\d+\b: "bounce-123-456" -> "bounce-#-#", "user123" kept)
 *      -> "#", in the local part only (VERP, list bounce ids).
 * A '-' extension is kept: "john-doe" is as often a name as "user-ext".
 * The null sender "" stays "" (its own triplet per client and recipient, as
 * postgrey). A sender without '@' is only lowercased. Returns the length, or
 * -1 when it does not fit (out then holds "", and greylisting should skip). */
int grey_normalize_sender(const char *sender, char *out, size_t sz);

/* grey_normalize_rcpt: lowercase copy (the recipient's +ext is kept, as
 * postgrey). -1 when it does not fit. */
int grey_normalize_rcpt(const char *rcpt, char *out, size_t sz);

/* grey_client_net: the client's network as text: "192.0.2.0/24",
 * "2001:db8:1:2::/64" (IPv4-mapped IPv6 counts as IPv4). -1 when addr is not
 * an IP address (out then holds ""). */
int grey_client_net(const char *addr, unsigned v4prefix, unsigned v6prefix, char *out, size_t sz);

/* grey_triplet_key: the first 128 bits of SHA-256("v1" NUL net NUL sender NUL
 * rcpt) as 32 lowercase hex digits (out size >= GREY_KEY_MAX). Stable across
 * hosts and versions of this program; reveals no address in Redis. */
void grey_triplet_key(const char *net, const char *nsender, const char *nrcpt, char *out);

/* One triplet, computed from the request. */
struct grey_triplet {
    char net[GREY_NET_MAX];
    char sender[GREY_ADDR_MAX]; /* normalised */
    char rcpt[GREY_ADDR_MAX];   /* normalised */
    char key[GREY_KEY_MAX];
};
/* grey_triplet_make: all of the above. -1 (skip greylisting) when the address
 * is not an IP or sender/recipient are too long. */
int grey_triplet_make(const struct grey_params *p, const char *client_addr, const char *sender,
                      const char *recipient, struct grey_triplet *t);

/* ---- the state machine (the Lua in redis/rgrey.c mirrors these) ---- */

struct grey_state {
    int exists;
    long long first_ms; /* first sight of this attempt cycle */
    long long last_ms;  /* last attempt */
    int passed;         /* a retry came after the delay within the window */
};

struct grey_step {
    enum grey_verdict verdict; /* GREY_DEFER, GREY_PASS or GREY_PASS_NEW */
    long long wait_ms;         /* DEFER: time left (> 0); else 0 */
    unsigned wait_s;           /* wait_ms rounded up to seconds (>= 1 on DEFER) */
    struct grey_state next;    /* what to store */
    long long ttl_ms;          /* TTL to set on the stored state; -1: keep the current one */
};

/* grey_step: one attempt at now_ms on a triplet in state cur (cur->exists 0:
 * never seen, or expired from the store).
 *  - unknown, or pending past the window (now - first > window), or first in
 *    the future (another MX's clock): first sight -> DEFER with the full
 *    delay; store {first=now, passed=0} with TTL = window;
 *  - pending, now - first < delay -> DEFER with the rest; last = now, TTL kept
 *    (a pending entry dies window after first sight, retries do not extend it);
 *  - pending, delay <= now - first <= window -> PASS_NEW; passed, TTL = max age;
 *  - passed, now - last <= max age -> PASS; last = now, TTL = max age (refreshed);
 *  - passed, now - last > max age -> first sight again. */
void grey_step(const struct grey_state *cur, long long now_ms, const struct grey_params *p,
               struct grey_step *out);

struct grey_awl {
    int exists;
    unsigned count;    /* passes counted */
    long long last_ms; /* last time counted / touched */
};

/* grey_awl_check: 1 when the network is auto-whitelisted (awl_count > 0,
 * count >= awl_count and last seen no longer than max age ago). *write is set to 1 when next must
 * be stored (last seen touched, at most once per awl_interval, TTL = max age), else 0. */
int grey_awl_check(const struct grey_awl *cur, long long now_ms, const struct grey_params *p,
                   struct grey_awl *next, int *write);

/* grey_awl_pass: a PASS_NEW from this network: count it unless one was
 * counted less than awl_interval ago (a stale entry starts again from 0). Returns the new count;
 * *write as above. */
unsigned grey_awl_pass(const struct grey_awl *cur, long long now_ms, const struct grey_params *p,
                       struct grey_awl *next, int *write);

/* ---- the reply ---- */

/* grey_format_reply: "<action> <text>" into out (size sz) where text is tmpl
 * with every %s -> wait_s, %r -> the recipient's domain, %% -> %, and every
 * other byte copied; the result is sanitised (no CR/LF/controls, valid UTF-8)
 * and bounded to 500 bytes. An empty tmpl gives just the action. Returns the
 * length. */
size_t grey_format_reply(const char *action, const char *tmpl, unsigned wait_s,
                         const char *recipient, char *out, size_t sz);

/* ---- whitelists (postgrey's whitelist_clients / whitelist_recipients) ---- */

struct grey_wl;

/* grey_wl_new: an empty whitelist (matches nothing). NULL on ENOMEM. */
struct grey_wl *grey_wl_new(void);
void grey_wl_free(struct grey_wl **wlp);

/* grey_wl_load_clients / grey_wl_load_recipients: add the entries of a file.
 * Clients: "host.name" or "domain" (that name and every name below it,
 * matched on the client name), IPv4 "a.b.c.d[/n]", "a.b.c" (/24), "a.b"
 * (/16), IPv6 "x::y[/n]", "/regex/" (POSIX ERE on the client name, case-
 * insensitive; perl's \d, \D, (?: and lazy quantifiers are translated).
 * Recipients: "domain" (the domain and its subdomains), "user@" (any domain),
 * "user@domain" (user and user+ext), "/regex/" on the whole address.
 * '#' starts a comment; blank lines are skipped. On a bad line or an
 * unreadable file: -1 with "file:line: message" (or "file: message") in err
 * and the whitelist unchanged by this file. 0 on success. */
int grey_wl_load_clients(struct grey_wl *wl, const char *path, char *err, size_t errlen);
int grey_wl_load_recipients(struct grey_wl *wl, const char *path, char *err, size_t errlen);

/* The same from text in memory (name is used in error messages). */
int grey_wl_parse_clients(struct grey_wl *wl, const char *name, const char *text, char *err,
                          size_t errlen);
int grey_wl_parse_recipients(struct grey_wl *wl, const char *name, const char *text, char *err,
                             size_t errlen);

/* grey_wl_match_client: 1 when the client (address text; name as Postfix's
 * client_name, "unknown" without verified rDNS, may be NULL) is listed. */
int grey_wl_match_client(const struct grey_wl *wl, const char *addr, const char *name);
/* grey_wl_match_recipient: 1 when the recipient address is listed. */
int grey_wl_match_recipient(const struct grey_wl *wl, const char *rcpt);
/* grey_wl_count: entries loaded (clients + recipients). */
size_t grey_wl_count(const struct grey_wl *wl);

#endif
