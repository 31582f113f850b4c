#!/usr/bin/python3
"""policy_client.py - a test client for the Postfix policy protocol.

Sends requests the way smtpd does (one persistent connection, one request at
a time) and returns the raw reply bytes, so tests can assert the framing
exactly. Used by the integration tests; not part of the product.

  policy_client.py [--unix PATH | --host H --port P] [--timeout S] \
      [--raw FILE] [--count N] name=value ...

Prints each reply as a Python bytes literal on its own line; "EOF" when the
server closed the connection without a complete reply; "TIMEOUT" on timeout.
Exit status 0 in all three cases (the caller asserts); 2 on usage errors.
"""
import argparse
import socket
import sys
import time

BASE = {
    "request": "smtpd_access_policy",
    "protocol_state": "RCPT",
    "protocol_name": "ESMTP",
    "client_address": "192.0.2.7",
    "client_name": "mail.example.org",
    "reverse_client_name": "mail.example.org",
    "helo_name": "mail.example.org",
    "sender": "alice@example.org",
    "recipient": "bob@test.example",
    "recipient_count": "0",
    "queue_id": "",
    "instance": "1.2.3.0",
    "size": "0",
    "etrn_domain": "",
    "stress": "",
    "sasl_method": "",
    "sasl_username": "",
    "sasl_sender": "",
    "ccert_subject": "",
    "ccert_issuer": "",
    "ccert_fingerprint": "",
    "ccert_pubkey_fingerprint": "",
    "encryption_protocol": "",
    "encryption_cipher": "",
    "encryption_keysize": "0",
    "policy_context": "",
}


def build(attrs):
    out = b""
    for k, v in attrs.items():
        out += k.encode() + b"=" + v + b"\n"
    return out + b"\n"


def read_reply(sock, timeout):
    """Read until the blank line that ends a reply (or EOF/timeout)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while b"\n\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            return "TIMEOUT", data
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return "TIMEOUT", data
        except ConnectionResetError:
            return "EOF", data
        if not chunk:
            return "EOF", data
        data += chunk
    return "OK", data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int)
    ap.add_argument("--unix")
    ap.add_argument("--timeout", type=float, default=15.0)
    ap.add_argument("--raw", help="send this file's bytes verbatim instead of a request")
    ap.add_argument("--count", type=int, default=1, help="requests on one connection")
    ap.add_argument("--time", action="store_true", help="print seconds per reply on stderr")
    ap.add_argument("attrs", nargs="*")
    a = ap.parse_args()
    if a.unix:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(a.unix)
    elif a.port:
        fam = socket.AF_INET6 if ":" in a.host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.connect((a.host, a.port))
    else:
        ap.error("--port or --unix")
        return 2
    if a.raw:
        with open(a.raw, "rb") as f:
            payload = f.read()
    else:
        attrs = {k: v.encode() for k, v in BASE.items()}
        for kv in a.attrs:
            k, _, v = kv.partition("=")
            # Escapes let tests send CR and control bytes inside a value.
            attrs[k] = v.encode().decode("unicode_escape").encode("latin-1")
        payload = build(attrs)
    for _ in range(a.count):
        t0 = time.monotonic()
        s.sendall(payload)
        status, data = read_reply(s, a.timeout)
        if a.time:
            print("%.3f" % (time.monotonic() - t0), file=sys.stderr)
        if status != "OK":
            print(status if not data else status + " " + repr(data))
            break
        print(repr(data))
        sys.stdout.flush()
    s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
