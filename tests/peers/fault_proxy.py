#!/usr/bin/env python3
"""An HTTP reverse proxy that injects faults, for purged's fault tests.

    fault_proxy.py LISTEN_PORT UPSTREAM_PORT

Requests are forwarded to 127.0.0.1:UPSTREAM_PORT (keep-alive both sides).
Faults are set through the proxy itself, never forwarded:

    POST /__fault?mode=MODE&count=N&after=M[&method=DELETE][&match=TEXT]

after M more matching requests pass, the next N matching requests get MODE:
    500    an HTTP 500 answer instead of the upstream's
    close  the connection is closed without an answer
    hang   no answer for 30 s (the client's timeout fires first)
    drop   forwarded to the upstream, which acts on it; its answer is dropped and
           the connection closed (the client cannot know what happened)
    late   forwarded to the upstream, which acts on it; no answer for 30 s, then the
           connection is closed (the client's timeout fires while the upstream works)
    gw504  forwarded to the upstream, which acts on it; the client gets a gateway's 504
           page instead of its answer (nginx's fastcgi_read_timeout, a PHP crash)
match=TEXT: only requests whose form-decoded body contains TEXT (e.g. iTop's
"simulate":false) count as matching.
GET /__stats answers {"requests": N, "faults": N}.
FAULT_PROXY_LOG=FILE (for profiles, bench/backends.sh): one line per forwarded request,
    start (s), milliseconds, method, path, status, bytes answered, and for iTop the
    operation, class and simulate flag of json_data; never the credentials.
"""
import http.client
import http.server
import json
import os
import socketserver
import sys
import threading
import time
import urllib.parse

UPSTREAM = int(sys.argv[2]) if len(sys.argv) > 2 else 0
state = {"mode": None, "count": 0, "after": 0, "method": None, "requests": 0, "faults": 0, "clients": set()}
lock = threading.Lock()


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without TCP_NODELAY the answer's body, written after its head, waits for the client's
    # delayed ACK: 40 ms added to every request on a kept-alive connection, none on a fresh
    # one, which skewed the benchmarks against keep-alive clients (nginx sets it too).
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def answer(self, code, body=b""):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def control(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path == "/__stats":
            with lock:
                return self.answer(200, json.dumps({"requests": state["requests"], "faults": state["faults"],
                                                    "connections": len(state["clients"])}).encode())
        q = {k: v[0] for k, v in urllib.parse.parse_qs(u.query).items()}
        with lock:
            state.update(mode=q.get("mode"), count=int(q.get("count", 1)), after=int(q.get("after", 0)),
                         method=q.get("method"), match=q.get("match"))
        self.answer(200, b"{}")

    def fault(self, body):
        """The fault to inject for this request, if any."""
        with lock:
            state["requests"] += 1
            state["clients"].add(self.client_address)
            if not state["mode"] or state["count"] <= 0:
                return None
            if state["method"] and state["method"] != self.command:
                return None
            if state.get("match") and state["match"] not in urllib.parse.unquote_plus((body or b"").decode("latin-1")):
                return None
            if state["after"] > 0:
                state["after"] -= 1
                return None
            state["count"] -= 1
            state["faults"] += 1
            return state["mode"]

    def forward(self):
        if self.path.startswith("/__"):
            return self.control()
        n = int(self.headers.get("Content-Length", 0) or 0)
        body = self.rfile.read(n) if n else None
        mode = self.fault(body)
        if mode == "500":
            return self.answer(500, b'{"error":"injected"}')
        if mode == "close":
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        if mode == "hang":
            time.sleep(30)
            self.close_connection = True
            return
        t0 = time.time()
        # 600 s: a bulk delete by hand (the benchmarks' reference) can take minutes.
        up = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=600)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "host")}
        up.request(self.command, self.path, body=body, headers=headers)
        r = up.getresponse()
        data = r.read()
        up.close()
        if LOG:
            note(t0, self.command, self.path, body, r.status, len(data))
        if mode == "late":
            time.sleep(30)
        if mode == "gw504":
            return self.answer(504, b"<html><body><h1>504 Gateway Time-out</h1></body></html>")
        if mode in ("drop", "late"):
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "content-length", "keep-alive"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_PUT = forward


LOG = os.environ.get("FAULT_PROXY_LOG")


def note(t0, method, path, body, status, size):
    """One line of the profile: what was asked (never the credentials) and how long it took."""
    what = ""
    try:
        form = urllib.parse.parse_qs((body or b"").decode("latin-1"))
        op = json.loads(form["json_data"][0]) if "json_data" in form else None
        if isinstance(op, dict):
            what = "%s %s%s" % (op.get("operation"), op.get("class"), " simulate" if op.get("simulate") else "")
    except (ValueError, KeyError):
        what = "?"
    with lock, open(LOG, "a") as f:
        f.write("%.3f %.1f %s %s %d %d %s\n" % (t0, (time.time() - t0) * 1000, method, path.split("?")[0], status, size, what))


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    srv = Server(("127.0.0.1", int(sys.argv[1])), Proxy)
    print(f"fault proxy on {srv.server_address[1]} -> {UPSTREAM}", flush=True)
    srv.serve_forever()
