#!/usr/bin/python3
"""fake_policy.py: a trivial Postfix policy server for tests.

Answers "action=ACTION" to every request of the Postfix policy delegation
protocol (name=value lines, then an empty line), keeping connections open
for further requests, and logs each request as one JSON object a line.
Listens on 127.0.0.1 only. Started and stopped (by PID) by t/lib/harness.sh
(h_fake_policy).
"""
import argparse
import json
import os
import socketserver
import sys
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--action", required=True, help='e.g. "DUNNO" or "PREPEND X-Foo: bar"')
    ap.add_argument("--port", type=int, default=0, help="0 = ephemeral")
    ap.add_argument("--portfile", help="write the bound port here (atomically)")
    ap.add_argument("--log", help="append each request as a JSON line")
    ap.add_argument("--delay-ms", type=int, default=0, help="wait before each answer")
    args = ap.parse_args()

    log = open(args.log, "a", buffering=1) if args.log else None
    log_lock = threading.Lock()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            req = {}
            for raw in self.rfile:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line:
                    name, _, value = line.partition("=")
                    req[name] = value
                    continue
                if log:
                    with log_lock:
                        log.write(json.dumps(req, sort_keys=True) + "\n")
                if args.delay_ms:
                    time.sleep(args.delay_ms / 1000.0)
                self.wfile.write(("action=%s\n\n" % args.action).encode())
                self.wfile.flush()
                req = {}

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    srv = Server(("127.0.0.1", args.port), Handler)
    if args.portfile:
        tmp = "%s.tmp.%d" % (args.portfile, os.getpid())
        with open(tmp, "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.rename(tmp, args.portfile)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
