/* rxml.h - DMARC aggregate report XML (RFC 9990 by default, RFC 7489 on
 * request), written with libxml2's xmlTextWriter straight into a gzip stream:
 * rows are streamed, so memory stays bounded whatever their number. The only
 * module including libxml2 and zlib.
 *
 * We evaluate envelope DMARC: header_from is the policy domain, there is no
 * DKIM evaluation, so no <dkim> auth result is written and policy_evaluated's
 * <dkim> is "fail" (meaning: no aligned DKIM pass was observed; docs say so). */
#ifndef PD_RXML_H
#define PD_RXML_H

#include <stddef.h>
#include <stdint.h>

#include "rrow.h"

enum rxml_format { RXML_RFC9990 = 0, RXML_RFC7489 };

struct rxml_meta {
    enum rxml_format format;
    const char *org_name;      /* report_metadata/org_name */
    const char *email;         /* report_metadata/email */
    const char *extra_contact; /* "" = omitted */
    const char *report_id;     /* report_metadata/report_id */
    long long begin, end;      /* date_range, unix seconds (UTC day bounds) */
    const char *generator;     /* RFC 9990 report_metadata/generator, e.g. "policyd-dmarc 0.1.0" */
    const struct rrow_policy *policy; /* policy_published */
};

struct rxml;

/* rxml_open: start a report written gzip-compressed to path (created 0644,
 * truncated). NULL with a reason in err on failure. */
struct rxml *rxml_open(const char *path, const struct rxml_meta *m, char *err, size_t errlen);
/* rxml_add_row: one <record> with this row and count. 0 or -1 (reason from
 * rxml_errstr). A row whose values the schema cannot hold (source_ip not an
 * IP address, unknown disposition or SPF result) is refused and nothing of it
 * written: the report stays usable. Any other failure (I/O) is final. */
int rxml_add_row(struct rxml *x, const struct rrow *row, uint64_t count);
/* rxml_errstr: why the last rxml_add_row failed ("" if none); borrowed, valid
 * while x lives. (Added by rxml: rxml_add_row's reason had no reader.) */
const char *rxml_errstr(const struct rxml *x);
/* rxml_close: finish the document and the gzip stream; frees x and NULLs *xp.
 * Returns 0, or -1 with a reason in err (the file is then incomplete; a
 * report without any record is refused: both schemas require one). */
int rxml_close(struct rxml **xp, char *err, size_t errlen);
/* rxml_abort: discard (frees, unlinks the file). */
void rxml_abort(struct rxml **xp);

/* rxml_filename: "<submitter>!<domain>!<begin>!<end>!<id>.xml.gz" into buf
 * (characters unsafe in a file name replaced). Returns length or -1. */
int rxml_filename(char *buf, size_t sz, const char *submitter, const char *domain, long long begin,
                  long long end, const char *report_id);

#endif
