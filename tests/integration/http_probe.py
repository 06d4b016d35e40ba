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
"""
import http.client
import resource
import socket
import sys
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


if __name__ == "__main__":
    cmd, port = sys.argv[1], int(sys.argv[2])
    rest = sys.argv[3:]
    {
        "pipeline": lambda: pipeline(port, rest[0]),
        "trickle": lambda: trickle(port, rest[0]),
        "slow": lambda: slow(port),
        "flood": lambda: flood(port, int(rest[0])),
        "keepalive": lambda: keepalive(port, rest[0]),
        "big_header": lambda: big_header(port),
    }[cmd]()
