/* rmail.h - the mail that carries an aggregate report (RFC 9990 §5 / RFC 7489
 * §7.2.1.1): a MIME multipart/mixed message with a short text part and the
 * gzip attachment (base64), Subject "Report Domain: <domain> Submitter: <org>
 * Report-ID: <id>", Auto-Submitted: auto-generated, and its hand-off to the
 * local MTA: `sendmail_command -t -oi -f <from>` run with a fixed argv (fork +
 * execv, never a shell), the message on its stdin. */
#ifndef PD_RMAIL_H
#define PD_RMAIL_H

#include <stddef.h>
#include <stdio.h>

struct rmail_msg {
    const char *from;      /* report_email */
    const char *const *to; /* mailto: addresses (without "mailto:"), n_to of them */
    size_t n_to;
    const char *domain;   /* the policy domain reported on */
    const char *org_name; /* submitter */
    const char *report_id;
    const char *attachment_path;   /* the .xml.gz file */
    const char *attachment_name;   /* its file name in the mail */
    const char *message_id_domain; /* right side of Message-ID (our hostname) */
};

/* rmail_write: the complete message (headers + body, CRLF line ends are NOT
 * used: LF, as sendmail -t expects on a pipe) to the stream fp. 0 or -1. */
int rmail_write(FILE *fp, const struct rmail_msg *m, char *err, size_t errlen);

/* rmail_send: run sendmail_command -t -oi -f FROM with the message on stdin;
 * 0 when it exited 0, -1 otherwise (reason with its exit status in err). */
int rmail_send(const char *sendmail_command, const struct rmail_msg *m, char *err, size_t errlen);

#endif
