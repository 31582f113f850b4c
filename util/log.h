/* log.h - logging to syslog (mail facility) or stderr, one line per event.
 *
 * Lines are `key=value` pairs after a short event word, e.g.
 *   decision instance=38bd.6b0263c2.bfa5b.0 client=192.0.2.7 spf=fail action=PREPEND
 * log_kv() quotes values that need it and escapes control characters, so a
 * remote value can never break a log line or inject another one.
 * Thread-safe (one write per line). */
#ifndef PD_LOG_H
#define PD_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_L_ERROR = 0, LOG_L_WARNING, LOG_L_INFO, LOG_L_DEBUG };
enum log_target { LOG_T_STDERR = 0, LOG_T_SYSLOG };

/* log_open: ident is the program name. May be called again to switch (SIGHUP). */
void log_open(const char *ident, enum log_target target, enum log_level level);
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);

/* log_msg: printf-style free text (for startup/config messages). */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* log_kv: an event word followed by key/value pairs, NULL-terminated:
 *   log_kv(LOG_L_INFO, "decision", "client", ip, "spf", "pass", NULL);
 * A NULL value ends the list too; an empty value prints as key="". */
void log_kv(enum log_level level, const char *event, ...) __attribute__((sentinel));

/* log_kv_append: append ` key=value` (quoted/escaped as log_kv does) to buf
 * (size sz, always NUL-terminated, truncated with "..." if full). For callers
 * that build a line piece by piece. Returns the new length. */
size_t log_kv_append(char *buf, size_t sz, size_t len, const char *key, const char *value);

/* log_die: log at ERROR and exit(1). For startup only. */
void log_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
