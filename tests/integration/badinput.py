#!/usr/bin/env python3
"""Bad-input tables for purged: malformed HTTP requests against purged-rest
and malformed control frames against the control socket. Each case states
the answer it must get and whether the connection must be closed; after
each, a good request must still be answered. Prints the table it checked and
exits 1 if any row failed.

usage: badinput.py HTTP_PORT TOKEN CONTROL_SOCKET
"""
import socket
import struct
import sys
import time

from http_probe import content_length  # the same directory
from msgpack_min import frame, pk, read_all, unpk

PORT, TOKEN, SOCK = int(sys.argv[1]), sys.argv[2], sys.argv[3]
A = f"Authorization: Bearer {TOKEN}\r\n".encode()
rows = []


def req(**kw):
    d = {"kind": "request", "v": 2, "id": 7, "op": "status"}
    d.update(kw)
    return d


# ------------------------------------------------------------------ transport
def recv_all(s, timeout=5):
    return read_all(s, timeout)


def recv_response(s, timeout=5):
    """Read one response (headers and Content-Length body), then see whether the server closes."""
    s.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                return data, True
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = content_length(head)
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                return data, True
            body += chunk
            data += chunk
        # A closing server closes right after the answer; a keep-alive one stays open.
        s.settimeout(0.3)
        return data, s.recv(1) == b""
    except socket.timeout:
        return data, False
    except OSError:
        return data, True


def http_case(name, raw, want_status, want_close):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
    try:
        s.sendall(raw)
    except OSError:
        pass
    data, closed = recv_response(s)
    if want_close and not closed:
        more, closed = recv_all(s, timeout=5)  # e.g. a second answer before the close
        data += more
    s.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else None
    good = status == want_status and (closed or not want_close)
    rows.append(("http", name, f"{want_status}{' +close' if want_close else ''}",
                 f"{status}{' +close' if closed else ''}", good))


def http_alive():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data, _ = recv_all(s)
    s.close()
    return data.startswith(b"HTTP/1.1 200")


def ctl_case(name, raw, want_code, want_close=True):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(SOCK)
    try:
        s.sendall(raw)
    except OSError:
        pass
    if want_code is None:
        s.shutdown(socket.SHUT_WR)
    data, closed = recv_all(s, timeout=3)
    s.close()
    code = None
    if len(data) >= 4:
        n = struct.unpack(">I", data[:4])[0]
        try:
            msg, _ = unpk(data[4:4 + n])
            code = msg.get("error", {}).get("code") if not msg.get("ok") else "ok"
        except Exception:
            code = "undecodable"
    good = code == want_code and (closed or not want_close)
    rows.append(("ctl", name, f"{want_code}{' +close' if want_close else ''}", f"{code}{' +close' if closed else ''}",
                 good))


def ctl_alive():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(SOCK)
    s.sendall(frame(pk(req())))
    s.settimeout(5)
    data = s.recv(65536)
    s.close()
    msg, _ = unpk(data[4:])
    return msg.get("ok") is True


# ------------------------------------------------------------------ HTTP table
G = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
TID = "01a227ad-f7bc-7304-b19f-9b57b020426a"


def post(path, body, ctype=b"application/json", extra=b""):
    return (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n" + A + b"Content-Type: " + ctype +
            b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body)


def put(path, body, ctype=b"application/json"):
    return post(path, body, ctype).replace(b"POST ", b"PUT ", 1)


def get(path, extra=b""):
    return b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + A + extra + b"\r\n"


CRDB = b"/v1/crdbs/1d7741cc-1110-4e2f-bc6c-935292783d24/purge"
http_cases = [
    ("unknown method", b"BREW /healthz HTTP/1.1\r\n\r\n", 400, True),
    ("lowercase method", b"get /healthz HTTP/1.1\r\n\r\n", 400, True),
    ("HTTP/9.9", b"GET /healthz HTTP/9.9\r\n\r\n", 400, True),
    ("no version", b"GET /healthz\r\n\r\n", 400, True),
    ("garbage request line", b"\x00\x01\x02\r\n\r\n", 400, True),
    ("header without colon", b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n", 400, True),
    ("space in header name", b"GET /healthz HTTP/1.1\r\nHo st: x\r\n\r\n", 400, True),
    ("NUL in header value", b"GET /healthz HTTP/1.1\r\nX: a\x00b\r\n\r\n", 400, True),
    ("obsolete line folding", b"GET /healthz HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 400, True),
    ("bare LF line ends", b"GET /healthz HTTP/1.1\nHost: x\n\n", 400, True),
    ("NUL in path", b"GET /heal\x00thz HTTP/1.1\r\n\r\n", 400, True),
    ("raw UTF-8 in path", get("/v1/tasks/\u2603".encode()), 400, True),
    ("header block over 8 KiB", b"GET /healthz HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431, True),
    ("request line over 8 KiB", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 431, True),
    ("1200 small headers (9.6 KiB)", b"GET /healthz HTTP/1.1\r\n" + b"X-A: b\r\n" * 1200 + b"\r\n", 431, True),
    ("Content-Length over 64 KiB", b"POST /purge/demo HTTP/1.1\r\nContent-Length: 100000\r\n\r\n", 413, True),
    ("chunked body over 64 KiB", b"POST /purge/demo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" +
     (b"8000\r\n" + b"a" * 0x8000 + b"\r\n") * 3 + b"0\r\n\r\n", 413, True),
    ("bad chunk size", b"POST /purge/demo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n", 400, True),
    ("chunk without CRLF", b"POST /purge/demo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc0\r\n\r\n", 400, True),
    ("Content-Length and chunked", b"POST /purge/demo HTTP/1.1\r\nContent-Length: 3\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, True),
    ("two Content-Lengths", b"POST /purge/demo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, True),
    ("negative Content-Length", b"POST /purge/demo HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, True),
    ("Content-Length not a number", b"POST /purge/demo HTTP/1.1\r\nContent-Length: ten\r\n\r\n", 400, True),
    ("unknown transfer coding", b"POST /purge/demo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400, True),
    ("a bad request after a good one", G + b"BREW / HTTP/1.1\r\n\r\n", 200, True),
    ("invalid JSON", post(b"/purge/demo", b'{"server":'), 400, False),
    ("JSON array body", post(b"/purge/demo", b"[1,2]"), 400, False),
    ("JSON null body", post(b"/purge/demo", b"null"), 400, False),
    ("port as a string", post(b"/purge/demo", b'{"port":"80"}'), 400, False),
    ("port out of range", post(b"/purge/demo", b'{"port":70000}'), 400, False),
    ("server as a number", post(b"/purge/demo", b'{"server":1}'), 400, False),
    ("duplicate JSON keys", post(b"/purge/demo", b'{"port":1,"port":2}'), 400, False),
    ("invalid UTF-8 in JSON", post(b"/purge/demo", b'{"server":"\xff\xfe"}'), 400, False),
    ("deeply nested JSON", post(b"/purge/demo", b"[" * 5000 + b"]" * 5000), 400, False),
    ("text/plain body", post(b"/purge/demo", b"hello", b"text/plain"), 415, False),
    ("overlong target name", post(b"/purge/" + b"t" * 65, b""), 400, False),
    ("target with traversal", post(b"/purge/..%2F..%2Fetc", b""), 400, False),
    ("target with NUL escape", post(b"/purge/de%00mo", b""), 400, False),
    ("overlong task id", get(b"/v1/tasks/" + b"0" * 200), 400, False),
    ("task id path traversal", get(b"/v1/tasks/..%2F..%2Fetc%2Fpasswd"), 400, False),
    ("raw path traversal", get(b"/v1/tasks/../../etc/passwd"), 404, False),
    ("task id with NUL escape", get(b"/v1/tasks/01a227ad-f7bc-7304-b19f-9b57b020426%00"), 400, False),
    ("unicode junk task id", get(b"/v1/tasks/%E2%98%83%E2%98%83"), 400, False),
    ("uppercase UUID", get(b"/v1/tasks/" + TID.upper().encode()), 400, False),
    ("limit not a number", get(b"/v1/tasks?limit=abc"), 400, False),
    ("limit negative", get(b"/v1/tasks?limit=-1"), 400, False),
    ("limit too large", get(b"/v1/tasks?limit=99999"), 400, False),
    ("offset negative", get(b"/v1/tasks?offset=-5"), 400, False),
    ("crdb guid with NUL escape", put(CRDB.replace(b"1d77", b"%00"), b'{"instances":[1]}'), 404, False),
    ("crdb guid traversal", put(b"/v1/crdbs/..%2F..%2Fx/purge", b'{"instances":[1]}'), 404, False),
    ("crdb instances empty", put(CRDB, b'{"instances":[]}'), 400, False),
    ("crdb instances duplicated", put(CRDB, b'{"instances":[1,1]}'), 400, False),
    ("crdb instance 0", put(CRDB, b'{"instances":[0]}'), 400, False),
    ("crdb instance too large", put(CRDB, b'{"instances":[70000]}'), 400, False),
    ("crdb instance as string", put(CRDB, b'{"instances":["1"]}'), 400, False),
    ("crdb instances not an array", put(CRDB, b'{"instances":1}'), 400, False),
    ("crdb extra key", put(CRDB, b'{"instances":[1],"force":true}'), 400, False),
    ("crdb empty object", put(CRDB, b"{}"), 400, False),
    ("crdb body not JSON", put(CRDB, b"instances=1"), 400, False),
    ("crdb text/plain", put(CRDB, b'{"instances":[1]}', b"text/plain"), 415, False),
    ("crdb unknown task id", get(b"/v1/crdb_tasks/not-a-uuid"), 404, False),
    ("token over 256 bytes", b"GET /v1/tasks HTTP/1.1\r\nAuthorization: Bearer " + b"a" * 300 + b"\r\n\r\n", 401, False),
    ("Basic instead of Bearer", b"GET /v1/tasks HTTP/1.1\r\nAuthorization: Basic YTpi\r\n\r\n", 401, False),
    ("empty Bearer", b"GET /v1/tasks HTTP/1.1\r\nAuthorization: Bearer \r\n\r\n", 401, False),
    ("wrong token", b"GET /v1/tasks HTTP/1.1\r\nAuthorization: Bearer nope\r\n\r\n", 401, False),
    ("wrong method", b"DELETE /healthz HTTP/1.1\r\n\r\n", 405, False),
    ("CONNECT", b"CONNECT example.com:443 HTTP/1.1\r\n\r\n", 404, False),
    ("OPTIONS *", b"OPTIONS * HTTP/1.1\r\n\r\n", 404, False),
    ("unknown route", get(b"/admin/shell"), 404, False),
]

for name, raw, status, close in http_cases:
    http_case(name, raw, status, close)
    if not http_alive():
        rows.append(("http", f"alive after '{name}'", "200", "no answer", False))
        break

# ------------------------------------------------------------------ control frames
nested = {}
cur = nested
for _ in range(20):
    cur["k"] = {}
    cur = cur["k"]
ctl_cases = [
    ("truncated length prefix", b"\x00\x00", None),
    ("zero-length frame", b"\x00\x00\x00\x00", "bad_request"),
    ("length over 1 MiB", struct.pack(">I", (1 << 20) + 1), "too_large"),
    ("length 2^32-1", b"\xff\xff\xff\xff", "too_large"),
    ("frame shorter than its length", struct.pack(">I", 100) + b"\x80", None),
    ("array instead of map", frame(pk([1, 2])), "bad_request"),
    ("integer instead of map", frame(pk(5)), "bad_request"),
    ("string instead of map", frame(pk("status")), "bad_request"),
    ("missing id", frame(pk({"kind": "request", "v": 2, "op": "status"})), "bad_request"),
    ("missing v", frame(pk({"kind": "request", "id": 1, "op": "status"})), "bad_request"),
    ("missing op", frame(pk({"kind": "request", "v": 2, "id": 1})), "bad_request"),
    ("missing kind", frame(pk({"v": 2, "id": 1, "op": "status"})), "bad_request"),
    ("unknown kind", frame(pk(req(kind="telegram"))), "bad_request"),
    ("a reply sent as a request", frame(pk({"kind": "reply", "id": 1, "ok": True})), "bad_request"),
    ("protocol version 99", frame(pk(req(v=99))), "bad_request"),
    ("unknown op", frame(pk(req(op="format.disk"))), "bad_request"),
    ("op as integer", frame(pk(req(op=3))), "bad_request"),
    ("negative id", frame(pk(req(id=-1))), "bad_request"),
    ("float id", frame(pk(req(id=1.5))), "bad_request"),
    ("string id", frame(pk(req(id="1"))), "bad_request"),
    ("args as string", frame(pk(req(op="purge", args="demo"))), "bad_request"),
    ("args as array", frame(pk(req(op="purge", args=["demo"]))), "bad_request"),
    ("unknown top-level key", frame(pk(req(sudo=True))), "bad_request"),
    ("unknown argument", frame(pk(req(op="purge", args={"target": "demo", "force": True}))), "bad_request"),
    ("purge without target", frame(pk(req(op="purge", args={}))), "bad_request"),
    ("target with a slash", frame(pk(req(op="purge", args={"target": "../etc"}))), "bad_request"),
    ("task id not a UUID", frame(pk(req(op="tasks.get", args={"id": "1; rm -rf /"}))), "bad_request"),
    ("limit as string", frame(pk(req(op="tasks.list", args={"limit": "10"}))), "bad_request"),
    ("nesting 20 deep", frame(pk(req(args=nested))), "bad_request"),
    ("string of 70 KiB", frame(pk(req(op="x" * 70000))), "too_large"),
    ("binary value", frame(pk(req(op=b"status"))), "bad_request"),
    ("extension type", frame(b"\x83\xa1v\x01\xa2id\x01\xa2op\xd4\x01\x00"), "bad_request"),
    ("invalid UTF-8", frame(pk(req(op="sta\udcfftus"))), "bad_request"),
    ("NUL in a string", frame(pk(req(op="sta\x00tus"))), "bad_request"),
    ("duplicate key", frame(b"\x84\xa1v\x01\xa2id\x01\xa2op\xa6status\xa2op\xa6reload"), "bad_request"),
    ("trailing bytes", frame(pk(req()) + b"\xc0"), "bad_request"),
    ("auth of 300 bytes", frame(pk(req(auth="a" * 300))), "bad_request"),
    ("a reply sent to the daemon", frame(pk({"kind": "reply", "id": 1, "ok": True})), "bad_request"),
    ("a job sent to the daemon", frame(pk({"kind": "job", "v": 2, "build": "x", "job": {}})), "bad_request"),
    ("crdb.purge with no instances", frame(pk(req(op="crdb.purge", args={"guid": "g", "instances": []}))),
     "bad_request"),
    ("integer map key", frame(b"\x81\x01\x01"), "bad_request"),
    ("array claiming 2^32-1 entries", frame(b"\xdd\xff\xff\xff\xff"), "bad_request"),
    ("malformed msgpack (0xc1)", frame(b"\xc1"), "bad_request"),
]
for name, raw, code in ctl_cases:
    ctl_case(name, raw, code)
    if not ctl_alive():
        rows.append(("ctl", f"alive after '{name}'", "ok", "no answer", False))
        break

# An old purgectl (protocol 1: no "kind") is told why, in the form it reads: no "kind" in the reply.
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(SOCK)
s.sendall(frame(pk({"v": 1, "id": 3, "op": "status", "args": {}})))
data, closed = recv_all(s, timeout=3)
s.close()
old = unpk(data[4:4 + struct.unpack(">I", data[:4])[0]])[0] if len(data) >= 4 else {}
text = (old.get("error") or {}).get("message", "")
rows.append(("ctl", "protocol 1 request: 'restart purged', in protocol 1's form", "no kind +restart",
             f"{'kind' if 'kind' in old else 'no kind'} {'+restart' if 'restart purged' in text else text[:30]}",
             "kind" not in old and "restart purged" in text and closed))

# A good request on the same connection after a refused one is not possible (closed): check the daemon.
rows.append(("both", "daemon answers after all of the above", "ok", "ok" if http_alive() and ctl_alive() else "no",
             http_alive() and ctl_alive()))

w = max(len(r[1]) for r in rows)
print(f"{'door':5} {'case':{w}}  {'expected':18} {'got':18} result")
for door, name, want, got, good in rows:
    print(f"{door:5} {name:{w}}  {want:18} {got:18} {'ok' if good else 'FAILED'}")
n_http = sum(1 for r in rows if r[0] == "http")
n_ctl = sum(1 for r in rows if r[0] == "ctl")
failed = [r for r in rows if not r[4]]
print(f"{n_http} HTTP requests, {n_ctl} control frames checked: {len(rows) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
