#!/usr/bin/env python3
"""suite2lines.py - convert the openspf RFC 7208 YAML test suite into the plain
line format read by t-spfsuite (t/spf/spfsuite.c). Run at build time.

Every string is written as "x" + hex of its bytes, so no field contains a space.
  S <index> <description>                     start of a scenario (its own zone)
  Z <name> <TYPE> <data> <pref>               one zone entry; TYPE is A AAAA MX PTR
                                              TXT CNAME or TIMEOUT (data/pref unused)
  T <name> <host> <helo> <mailfrom> <results> <explanation>
                                              results: comma list; explanation "-" = none
Zone rules of the suite (see its header): records of type SPF are duplicated as
TXT unless the name lists TXT itself ("TXT: NONE" means no TXT record at all);
TIMEOUT means queries for that name time out (for types it has no data of).
"""
import sys
import yaml


def raw(s):
    """The bytes a YAML string stands for: \\xNN escapes are bytes (latin-1)."""
    if isinstance(s, bytes):
        return s
    s = str(s)
    try:
        return s.encode("latin-1")
    except UnicodeEncodeError:
        return s.encode("utf-8")


def hx(s):
    return "x" + raw(s).hex()


def txt_data(v):
    if isinstance(v, list):  # several character-strings, joined without separator
        return b"".join(raw(x) for x in v)
    return raw(v)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, "rb") as f:
        docs = list(yaml.safe_load_all(f))
    out = []
    ntests = 0
    for idx, doc in enumerate(docs):
        if not doc:
            continue
        out.append("S %d %s" % (idx, hx(doc.get("description", ""))))
        for name, entries in (doc.get("zonedata") or {}).items():
            entries = entries or []
            has_txt = any(isinstance(e, dict) and "TXT" in e for e in entries)
            for e in entries:
                if e == "TIMEOUT":
                    out.append("Z %s TIMEOUT x 0" % hx(name))
                    continue
                for typ, val in e.items():
                    if typ == "SPF":
                        if has_txt:
                            continue  # type SPF is never queried
                        typ = "TXT"
                    if typ == "TXT":
                        if val == "NONE":
                            continue
                        out.append("Z %s TXT x%s 0" % (hx(name), txt_data(val).hex()))
                    elif typ == "MX":
                        pref, host = val
                        out.append("Z %s MX %s %d" % (hx(name), hx(str(host).rstrip(".")),
                                                      int(pref)))
                    elif typ in ("PTR", "CNAME"):
                        out.append("Z %s %s %s 0" % (hx(name), typ, hx(str(val).rstrip("."))))
                    elif typ in ("A", "AAAA"):
                        out.append("Z %s %s %s 0" % (hx(name), typ, hx(val)))
                    else:
                        sys.exit("unknown zone type %r at %s" % (typ, name))
        for tname, t in (doc.get("tests") or {}).items():
            res = t["result"]
            if not isinstance(res, list):
                res = [res]
            exp = t.get("explanation")
            out.append("T %s %s %s %s %s %s" % (
                hx(tname), hx(t["host"]), hx(t.get("helo", "")), hx(t.get("mailfrom", "")),
                ",".join(str(r).lower() for r in res), "-" if exp is None else hx(exp)))
            ntests += 1
    with open(dst, "w") as f:
        f.write("\n".join(out) + "\n")
    print("suite2lines: %d tests" % ntests)


if __name__ == "__main__":
    main()
