#!/usr/bin/env python3
"""Raw HTTP clients for the REST scenario: what curl cannot do on its own.

Each subcommand prints one line of facts for the shell test to compare, and
exits 0 when it could run (the shell decides pass or fail).

  pipeline PORT TOKEN          3 pipelined requests in one write; prints their statuses in order
  trickle PORT TOKEN           a POST whose bytes go one per TCP segment; prints the status
  slow PORT                    a header sent a byte a second; prints how long until the server closed
  flood PORT N                 N connections at once, each asks /healthz; prints "answered=A refused=R"
  keepalive PORT TOKEN         http.client on one connection: 5 requests; prints statuses and the connection count
  big_header PORT              an 9 KiB header block; prints the status
  concurrent PORT TOKEN N METHOD PATH [SOURCE_ADDRESS] [TIMEOUT]
                               N requests at once, each on its own connection (from SOURCE_ADDRESS,
                               default 127.0.0.1); prints the count of each status, sorted, and of
                               clients left without an answer after TIMEOUT s (default 20): "200x16 429x4 none=0"
  ctl_op SOCKET OP ARGS_JSON   one request on the control socket; prints "ok" or its error code
  ctl_plans SOCKET N TARGET    N plan requests in one write on one control connection; prints how many
                               ids got ok, busy, something else, no answer within 30 s, and more than one answer
"""
import collections
import http.client
import resource
import socket
import sys
import threading
import time


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def content_length(head):
    """The Content-Length of a response head (status line and headers), 0 when absent."""
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            return int(v)
    return 0


def read_responses(s, n):
    """Read n responses (status codes) from a raw socket, honouring Content-Length."""
    buf = b""
    codes = []
    while len(codes) < n:
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                return codes
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        codes.append(int(head.split()[1]))
        length = content_length(head)
        while len(buf) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        buf = buf[length:]
    return codes


def pipeline(port, token):
    s = connect(port)
    auth = f"Authorization: Bearer {token}\r\n".encode()
    reqs = (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /v1/nope HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"
            b"GET /v1/targets HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n")
    s.sendall(reqs)
    print(" ".join(map(str, read_responses(s, 3))))


def trickle(port, token):
    s = connect(port)
    body = b'{"server": "elsewhere"}'
    req = (f"POST /purge/demo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
           f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    for i in range(len(req)):
        s.send(req[i:i + 1])
        time.sleep(0.002)
    print(" ".join(map(str, read_responses(s, 1))))


def slow(port):
    s = connect(port)
    start = time.monotonic()
    s.settimeout(30)
    try:
        for c in b"GET /healthz HTTP/1.1\r\nHost: slowloris\r\n":
            s.send(bytes([c]))
            time.sleep(1)
    except OSError:
        pass
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass
    print(f"{time.monotonic() - start:.1f}")


def flood(port, n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 100)), hard))
    socks = []
    for _ in range(n):
        try:
            socks.append(connect(port))
        except OSError:
            break
    time.sleep(0.5)
    answered = refused = 0
    for s in socks:
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        except OSError:
            refused += 1
            continue
    for s in socks:
        s.settimeout(10)
        try:
            codes = read_responses(s, 1)
            if codes == [200]:
                answered += 1
            else:
                refused += 1
        except OSError:
            refused += 1
    for s in socks:
        s.close()
    print(f"answered={answered} refused={refused}")


def keepalive(port, token):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    codes = []
    socks = set()
    for path in ["/healthz", "/v1/targets", "/v1/tasks?limit=1", "/metrics", "/healthz"]:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        r = conn.getresponse()
        r.read()
        codes.append(r.status)
        socks.add(id(conn.sock))
    print(" ".join(map(str, codes)), f"connections={len(socks)}")


def big_header(port):
    s = connect(port)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n")
    print(" ".join(map(str, read_responses(s, 1))))


def concurrent(port, token, n, method, path, source="127.0.0.1", timeout=20.0):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 100)), hard))
    results = collections.Counter()
    lock = threading.Lock()
    start = threading.Barrier(n)
    req = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
           f"Content-Length: 0\r\nConnection: close\r\n\r\n").encode()

    def one():
        what = "none"
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
            try:
                start.wait(timeout)
            except threading.BrokenBarrierError:
                pass
            s.settimeout(timeout)
            s.sendall(req)
            codes = read_responses(s, 1)
            what = str(codes[0]) if codes else "closed"
            s.close()
        except socket.timeout:
            what = "none"
        except OSError as e:
            what = "refused" if isinstance(e, ConnectionRefusedError) else "reset"
        with lock:
            results[what] += 1

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    none = results.pop("none", 0)
    print(" ".join(f"{k}x{v}" for k, v in sorted(results.items())), f"none={none}")


def ctl_plans(sock_path, n, target):
    from msgpack_min import frame, pk, unpk  # the same directory
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    s.sendall(b"".join(frame(pk({"kind": "request", "v": 2, "id": i, "op": "plan", "args": {"target": target}})) for i in range(1, n + 1)))
    answers = collections.Counter()
    kinds = {}
    buf = b""
    deadline = time.monotonic() + 30
    s.settimeout(1)
    while len(kinds) < n and time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 4 and len(buf) >= 4 + int.from_bytes(buf[:4], "big"):
            size = int.from_bytes(buf[:4], "big")
            msg, _ = unpk(buf[4:4 + size])
            buf = buf[4 + size:]
            answers[msg["id"]] += 1
            if msg.get("ok"):
                kinds[msg["id"]] = "ok"
            else:
                kinds[msg["id"]] = "busy" if msg["error"]["code"] == "busy" else "other"
    tally = collections.Counter(kinds.values())
    print(f"ok={tally['ok']} busy={tally['busy']} other={tally['other']} unanswered={n - len(kinds)} "
          f"duplicate={sum(1 for v in answers.values() if v > 1)}")


def ctl_op(sock_path, op, args):
    import json
    from msgpack_min import frame, pk, unpk  # the same directory
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    s.settimeout(10)
    s.sendall(frame(pk({"kind": "request", "v": 2, "id": 1, "op": op, "args": json.loads(args)})))
    buf = b""
    while len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[:4], "big"):
        chunk = s.recv(65536)
        if not chunk:
            print("closed")
            return
        buf += chunk
    msg, _ = unpk(buf[4:])
    print("ok" if msg.get("ok") else msg["error"]["code"])


if __name__ == "__main__":
    if sys.argv[1] == "ctl_op":
        ctl_op(sys.argv[2], sys.argv[3], sys.argv[4])
        sys.exit(0)
    if sys.argv[1] == "ctl_plans":
        ctl_plans(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        sys.exit(0)
    cmd, port = sys.argv[1], int(sys.argv[2])
    rest = sys.argv[3:]
    {
        "pipeline": lambda: pipeline(port, rest[0]),
        "trickle": lambda: trickle(port, rest[0]),
        "slow": lambda: slow(port),
        "flood": lambda: flood(port, int(rest[0])),
        "keepalive": lambda: keepalive(port, rest[0]),
        "big_header": lambda: big_header(port),
        "concurrent": lambda: concurrent(port, rest[0], int(rest[1]), rest[2], rest[3],
                                         *(rest[4:5]), *(float(x) for x in rest[5:6])),
    }[cmd]()
