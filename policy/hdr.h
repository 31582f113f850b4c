/* hdr.h - the header lines we PREPEND: Received-SPF (RFC 7208 §9.1) and
 * Authentication-Results (RFC 8601, method spf only: a policy server never sees
 * header.from, so we never write dmarc=).
 *
 * Every value taken from the request or DNS is sanitised (san.h) and, where
 * the grammar needs it, quoted; the output is one line (no CR/LF), at most
 * HDR_MAX bytes, in the form `Name: value` ready for `PREPEND`. Pure. */
#ifndef PD_HDR_H
#define PD_HDR_H

#include <stddef.h>

#include "spfres.h"

#define HDR_MAX 960 /* well under SMTP's 998-octet line limit */

struct hdr_spf {
    enum spf_res result;
    int identity_helo;         /* 0: identity=mailfrom, 1: identity=helo (null sender) */
    const char *client_ip;     /* "192.0.2.7" */
    const char *helo;          /* HELO name as given by the client ("" if none) */
    const char *envelope_from; /* the MAIL FROM as given ("" for <>) */
    const char *domain;        /* the domain evaluated (sender domain or HELO) */
    const char *receiver;      /* our host name */
    const char *problem;       /* for temperror/permerror, "" otherwise */
    const char *authserv_id;   /* for Authentication-Results */
};

/* hdr_received_spf: e.g.
 *   Received-SPF: pass (mx.example.org: domain of alice@a.example designates
 *   192.0.2.7 as permitted sender) receiver=mx.example.org; client-ip=192.0.2.7;
 *   envelope-from="alice@a.example"; helo=mail.a.example; identity=mailfrom
 * (on one line). For the null sender, identity=helo and envelope-from is
 * "postmaster@<helo>"... per RFC 7208 §9.1. Returns length, or -1 if sz is too small. */
int hdr_received_spf(char *buf, size_t sz, const struct hdr_spf *h);

/* hdr_auth_results: e.g.
 *   Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=a.example
 * (the domain only: OpenDMARC compares the value from its @ on; docs/headers.md)
 * (smtp.helo=<helo> for the null sender). Returns length or -1. */
int hdr_auth_results(char *buf, size_t sz, const struct hdr_spf *h);

/* The envelope-DMARC verdict (our own header; never "dmarc=" in
 * Authentication-Results, which requires header.from). Fields are fixed words
 * or validated domain names; all still pass through sanitising and quoting. */
struct hdr_dmarc {
    const char *result;        /* "pass", "fail", "none", "temperror" */
    const char *receiver;      /* our host name */
    const char *policy_domain; /* MAIL FROM domain (HELO for the null sender) */
    const char *record_domain; /* where the record was found; "" without one */
    const char *policy;        /* the policy that applied: "none"/"quarantine"/"reject"; "" */
    const char *tag;           /* which tag supplied it: "p", "sp", "np"; "" */
    const char *spf;           /* SPF result of the policy domain */
    const char *disposition;   /* "none", "quarantine", "reject" */
    const char *reasons;       /* comma-separated RFC 9990 reason types, "" for none */
};

#define HDR_ENVELOPE_DMARC "X-Envelope-DMARC"

/* hdr_envelope_dmarc: e.g.
 *   X-Envelope-DMARC: fail (mx.example.org: envelope DMARC, DKIM not
 *   evaluated) domain=a.example; record=a.example; policy=reject; tag=p;
 *   spf=fail; disposition=reject
 * (one line; reason=... added when reasons is not empty). Returns length or -1. */
int hdr_envelope_dmarc(char *buf, size_t sz, const struct hdr_dmarc *d);

/* hdr_reject_text: the text after the reply code of a DMARC reject, e.g.
 *   "envelope DMARC: a.example publishes policy reject and SPF fail for 192.0.2.7
 *    (MAIL FROM domain; DKIM not evaluated)"
 * Every argument sanitised, one line, at most HDR_REJECT_TEXT_MAX bytes.
 * Returns length or -1. */
#define HDR_REJECT_TEXT_MAX 404
int hdr_reject_text(char *buf, size_t sz, const char *policy_domain, const char *policy,
                    const char *spf, const char *client_ip);

#endif
