#!/usr/bin/env python3
"""vectors.py - turn shared/testdata/dmarc/dmarc-policy-vectors.json into the
line format t/unit/test_dmarc_vectors.c reads (so the C test needs no JSON
parser), and decide which expectations apply to *envelope* DMARC.

Envelope DMARC (docs/dmarc.md): the policy domain is the MAIL FROM domain, the
SPF identity is that same domain (alignment is trivial) and DKIM is never
evaluated. So for each vector:
  - discovery expectations (policy, policy/record domain, org domain, query
    sequence, record found, lookup status) always apply: discovery does not
    depend on authentication results;
  - verdict expectations (dmarc result, disposition, reject, use_result,
    spf alignment) apply only when the SPF identity is the header_from domain
    (or absent) and the outcome cannot depend on DKIM;
  - DKIM expectations never apply.

Output, one record per line, fields separated by TAB, each field %-escaped
(bytes < 0x20, '%' and non-ASCII as %XX):
  V id spec policy_domain method mode spf verdict_ok na_reason
  Z name type value          one line per TXT record (strings joined) / A / AAAA / MX
  S name                     TXT lookup of name fails (SERVFAIL)
  E key value                expectation (lists joined by one space)
  D key value reason         expectation replaced by ours: divergent by design
  K key reason               expectation not checked
  .                          end of the vector
Usage: vectors.py FILE.json
"""
import json
import sys

DISCOVERY_KEYS = {"policy", "policy_domain", "record_domain", "record_found", "org_domain",
                  "dmarc_txt_queries", "lookup_status", "dmarc_record"}
VERDICT_KEYS = {"dmarc", "effective_policy", "disposition", "reject", "use_result",
                "spf_aligned", "spf_aligned_pass", "spf_aligned_result"}

# Vectors whose source asserts something we decided otherwise, with our value
# and the reason (docs/dmarc.md "Where we differ").
DIVERGENT = {
    "mailauth-rfc9989-87": (
        {"policy": "none", "policy_domain": "example.com", "dmarc": "fail"},
        "several records at the author domain are discarded and the walk goes on "
        "(RFC 9989 4.10 steps 2-3; RFC 7489 6.6.3 likewise); mailauth stops"),
    "mox-lookup-51": (
        {"lookup_status": "none", "record_found": "true"},
        "'bogus' without '=' is a tag-spec syntax error the parser ignores "
        "(RFC 9989 4.8); mox rejects the record"),
    "mox-verify-295": (
        {"dmarc": "fail", "use_result": "true", "reject": "false"},
        "same record as mox-lookup-51: accepted as p=none, so SPF none -> fail, "
        "disposition none"),
}


def esc(s):
    out = []
    for b in str(s).encode("utf-8"):
        if b < 0x20 or b == 0x25 or b >= 0x7f:
            out.append("%%%02X" % b)
        else:
            out.append(chr(b))
    return "".join(out)


def emit(*fields):
    print("\t".join(esc(f) for f in fields))


def val(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, list):
        return " ".join(str(x) for x in v)
    return str(v)


def spf_for(vec):
    """(spf result for the header_from identity or None, reason if n/a)."""
    hf = vec["header_from"].lower()
    spf = vec["spf"]
    if spf is None:
        return None, "no SPF result given"
    if isinstance(spf, list):  # mailauth: the passing SPF domains
        doms = [s["domain"].lower() for s in spf if s.get("result") == "pass"]
        if hf in doms:
            return "pass", ""
        if doms:
            return None, "SPF passes for %s, not the header_from domain (alignment test)" % \
                ",".join(doms)
        return "fail", ""  # no SPF pass observed
    dom = (spf.get("domain") or hf).lower()
    if dom != hf:
        return None, "SPF identity %s differs from header_from %s (alignment test)" % (dom, hf)
    return spf["result"], ""


def main():
    data = json.load(open(sys.argv[1]))
    for vec in data["vectors"]:
        spec = vec["spec"]
        method, mode = ("psl", "7489") if spec == "RFC7489" else ("treewalk", "9989")
        spf, reason = spf_for(vec)
        dkim = vec.get("dkim") or []
        dkim_helps = [d for d in dkim if d.get("result") in ("pass", "temperror")]
        exp = vec["expect"]
        if spf is not None and spf != "pass" and dkim_helps and exp.get("dmarc") != "none":
            spf, reason = None, "needs DKIM (d=%s %s)" % (dkim_helps[0]["domain"],
                                                          dkim_helps[0]["result"])
        verdict_ok = spf is not None
        emit("V", vec["id"], spec, vec["header_from"], method, mode, spf or "-",
             "1" if verdict_ok else "0", reason or "-")
        for name, rrs in vec["dns"].items():
            for typ, values in rrs.items():
                for v in values:
                    if typ == "TXT":
                        v = "".join(v) if isinstance(v, list) else v
                    elif typ == "MX":
                        v = "%s %s" % (v[0], v[1])
                    emit("Z", name.lower(), typ, v)
        for name in vec.get("dns_servfail") or []:
            emit("S", name.lower())
        over, why = DIVERGENT.get(vec["id"], ({}, ""))
        for key, v in exp.items():
            if key in over:
                emit("D", key, over[key], why)
            elif key in DISCOVERY_KEYS:
                emit("E", key, val(v))
            elif key in VERDICT_KEYS:
                if verdict_ok:
                    if key == "dmarc" and v == "permerror":
                        emit("K", key, "permerror: an unusable record is 'no policy' here")
                    else:
                        emit("E", key, val(v))
                else:
                    emit("K", key, reason)
            elif key.startswith("dkim"):
                emit("K", key, "DKIM is not evaluated (envelope DMARC)")
            else:
                emit("K", key, "informational (%s)" % val(v))
        print(".")


if __name__ == "__main__":
    main()
