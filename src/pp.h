/* pp.h - the Postfix policy delegation protocol codec (SMTPD_POLICY_README):
 * `name=value` lines, a request ends with an empty line; the reply is exactly
 * `action=<text>\n\n`.
 *
 * The parser is incremental and bounded: a line longer than PP_MAX_LINE, a
 * request larger than PP_MAX_REQUEST, more than PP_MAX_ATTRS attributes, a line
 * without '=', an empty name, a NUL byte, or a duplicated attribute is an error
 * with a reason string (the connection is then closed without a reply).
 * A trailing CR before LF is tolerated and stripped. Attribute order is free;
 * unknown attributes are kept but ignored by callers. No I/O here. */
#ifndef PD_PP_H
#define PD_PP_H

#include <stddef.h>
#include <stdint.h>

#define PP_MAX_LINE 8192
#define PP_MAX_REQUEST 65536
#define PP_MAX_ATTRS 128
#define PP_MAX_ACTION 4096 /* longest action text we ever send */

struct pp_attr {
    const char *name;  /* points into the request's buffer */
    const char *value; /* "" when empty */
};

/* A parsed request. All pointers are into req->buf, owned by the request. */
struct pp_request {
    char *buf;
    size_t nattrs;
    struct pp_attr attrs[PP_MAX_ATTRS];
    uint32_t hash[PP_MAX_ATTRS]; /* pp_name_hash() of each name: lookups compare these first */
};

/* pp_name_hash: the hash pp_get() compares (over n bytes; see pp.c). */
uint32_t pp_name_hash(const char *name, size_t n);

/* pp_get: value of attribute name, or "" when absent (never NULL). */
const char *pp_get(const struct pp_request *req, const char *name);
/* pp_has: 1 when the attribute was present (even with an empty value). */
int pp_has(const struct pp_request *req, const char *name);
/* pp_request_free: free a request from pp_parser_feed(); NULLs *rp. */
void pp_request_free(struct pp_request **rp);

enum pp_status {
    PP_NEED_MORE = 0, /* all input consumed, request incomplete */
    PP_REQUEST = 1,   /* *out holds a complete request; *consumed bytes used */
    PP_ERROR = -1,    /* malformed; pp_parser_error() says why */
};

struct pp_parser;
struct pp_parser *pp_parser_new(void);
void pp_parser_free(struct pp_parser **pp);
/* pp_parser_feed: consume up to len bytes of data. On PP_REQUEST, *out gets a new
 * request (caller frees) and *consumed says how many bytes were used (the rest
 * belongs to the next request). On PP_NEED_MORE all bytes were consumed. After
 * PP_ERROR the parser must not be fed again. */
enum pp_status pp_parser_feed(struct pp_parser *p, const char *data, size_t len, size_t *consumed,
                              struct pp_request **out);
/* pp_parser_error: short reason for the last PP_ERROR ("line too long", ...). */
const char *pp_parser_error(const struct pp_parser *p);
/* pp_parser_idle: 1 when no partial request is buffered (a NULL parser is idle). */
int pp_parser_idle(const struct pp_parser *p);

/* pp_format_reply: write "action=<action>\n\n" into buf. Refuses (returns -1) an
 * empty action, one longer than PP_MAX_ACTION, or one containing CR, LF or NUL:
 * Postfix would treat those as permit or as a broken reply. Returns the length. */
int pp_format_reply(char *buf, size_t sz, const char *action);

#endif
