/* redis_srv.h - test helper: a throwaway redis-server on loopback (TCP port
 * and/or unix socket, optional password), started daemonized with its pidfile
 * and log in the test's temp directory and stopped by that PID, never by
 * name. Used by test_rcount and test_rgrey. */
#ifndef PD_REDIS_SRV_H
#define PD_REDIS_SRV_H

#include <hiredis/hiredis.h>

struct rsrv {
    int port;             /* 0 = unix socket only */
    char sock[128];       /* unix socket path or "" */
    char pidfile[160];    /* set by rsrv_start */
    char extra[256];      /* more redis-server arguments, last (they override) */
    const char *password; /* --requirepass, NULL for none */
    int up;
};

/* rsrv_set_dir: the directory for pidfiles, logs and data (before rsrv_start). */
void rsrv_set_dir(const char *dir);
/* rsrv_free_port: a loopback TCP port free right now (0 on failure). */
int rsrv_free_port(void);
/* rsrv_conn: a synchronous connection, authenticated when s has a password
 * (caller redisFree()s), or NULL. */
redisContext *rsrv_conn(const struct rsrv *s);
/* rsrv_ping: 1 when the server answers PING. */
int rsrv_ping(const struct rsrv *s);
/* rsrv_start: start and wait (up to 5 s) until it answers. 0 or -1. */
int rsrv_start(struct rsrv *s);
/* rsrv_pid: the PID from the pidfile, 0 when none. */
long rsrv_pid(const struct rsrv *s);
/* rsrv_stop: SIGCONT (in case a test stopped it), then sig; wait (up to 5 s)
 * until the process is gone. */
void rsrv_stop(struct rsrv *s, int sig);

#endif
