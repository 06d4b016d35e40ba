#!/usr/bin/env python3
"""Hostile frames on purged's control socket, replaying the attacks of the
fail-closed issue. Each case states the error code its one reply must carry;
the reply must decode (valid UTF-8: unpk() raises on anything else) and a
fresh connection must still be answered afterwards.

usage: hostile.py CONTROL_SOCKET refused|allowed|deadline
  refused   run as a caller that may not use purged: one `forbidden` reply,
            whatever it sends (its frames are never decoded)
  allowed   run as root or purged's own user: each bad frame gets its error
  deadline  a frame left incomplete is cut off with a reply after 10 s
"""
import socket
import struct
import sys
import time

from msgpack_min import frame, pk, read_all, unpk

SOCK, MODE = sys.argv[1], sys.argv[2]
FORGED_KEY = "\n<2>purged: audit: root via ctl: purge 'prod' ok"
failed = 0


def say(ok, what):
    global failed
    print(("ok - " if ok else "not ok - ") + what)
    failed += not ok


def exchange(raw, wait=5.0):
    """Send raw bytes (ignoring a write refused after the daemon closed), return (reply or None, closed)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(SOCK)
    try:
        s.sendall(raw)
    except (BrokenPipeError, ConnectionResetError):
        pass
    data, closed = read_all(s, wait)
    s.close()
    if len(data) < 4:
        return None, closed
    n = struct.unpack(">I", data[:4])[0]
    return unpk(data[4:4 + n])[0], closed


def case(name, raw, want_code, wait=5.0):
    try:
        reply, closed = exchange(raw, wait)
    except (UnicodeDecodeError, ValueError) as e:
        say(False, f"{name}: the reply does not decode: {e}")
        return
    if reply is None:
        say(False, f"{name}: no reply (closed={closed})")
        return
    code = (reply.get("error") or {}).get("code")
    say(code == want_code and closed, f"{name}: one '{code}' reply and the connection closed "
        f"(want '{want_code}'): {(reply.get('error') or {}).get('message', '')[:100]!r}")


def alive():
    reply, _ = exchange(frame(pk({"kind": "request", "v": 2, "id": 9, "op": "status", "args": {}})), 2.0)
    return reply is not None and reply.get("id") == 9


def req(**kw):
    d = {"kind": "request", "v": 2, "id": 1, "op": "status", "args": {}}
    d.update(kw)
    return frame(pk(d))


# A map key that is not UTF-8 ("\udcff" packs as the byte 0xff).
BAD_KEY = req(**{"\udcff": 1})
# Valid UTF-8 that a 64-byte cut splits mid-character.
LONG_OP = req(op="a" + "é" * 40)
FORGED = req(**{FORGED_KEY: 1})

if MODE == "refused":
    case("refused caller, key not UTF-8", BAD_KEY, "forbidden")
    case("refused caller, op cut mid-character", LONG_OP, "forbidden")
    case("refused caller, a key forging a log line", FORGED, "forbidden")
    case("refused caller, bytes that are no frame at all", b"\xff" * 9, "forbidden")
    case("refused caller, a well-formed status", req(), "forbidden")
elif MODE == "allowed":
    case("key not UTF-8", BAD_KEY, "bad_request")
    say(alive(), "purged answers after it")
    case("op cut mid-character by the error text", LONG_OP, "bad_request")
    say(alive(), "purged answers after it")
    case("a key forging a log line", FORGED, "bad_request")
    say(alive(), "purged answers after it")
elif MODE == "deadline":
    start = time.monotonic()
    case("a frame left incomplete", struct.pack(">I", 100) + b"\x80" * 10, "bad_request", wait=15.0)
    took = time.monotonic() - start
    say(8 <= took <= 14, f"…cut after the 10 s deadline ({took:.1f} s)")
    say(alive(), "purged answers after it")
else:
    sys.exit(f"unknown mode {MODE}")
sys.exit(1 if failed else 0)
