"""The few msgpack types the tests need, by hand (Debian's python3 has no
msgpack module by default), and the control protocol's frame: a 4-byte
big-endian length and one msgpack map. Shared by badinput.py and hostile.py.
"""
import socket
import struct


def pk(o):
    if o is None:
        return b"\xc0"
    if o is True:
        return b"\xc3"
    if o is False:
        return b"\xc2"
    if isinstance(o, int):
        if 0 <= o < 128:
            return bytes([o])
        return b"\xd3" + struct.pack(">q", o)
    if isinstance(o, float):
        return b"\xcb" + struct.pack(">d", o)
    if isinstance(o, bytes):
        return b"\xc4" + bytes([len(o)]) + o
    if isinstance(o, str):
        b = o.encode("utf-8", "surrogateescape")
        if len(b) < 32:
            return bytes([0xa0 | len(b)]) + b
        if len(b) < 65536:
            return b"\xda" + struct.pack(">H", len(b)) + b
        return b"\xdb" + struct.pack(">I", len(b)) + b
    if isinstance(o, list):
        return b"\xdc" + struct.pack(">H", len(o)) + b"".join(pk(x) for x in o)
    if isinstance(o, dict):
        return b"\xde" + struct.pack(">H", len(o)) + b"".join(pk(k) + pk(v) for k, v in o.items())
    raise TypeError(o)


def entries(b, i, fix_last, tag16):
    """A map's or array's entry count: fix form up to fix_last, else 16 (tag16) or 32 bits."""
    t = b[i]
    if t <= fix_last:
        return t & 0x0f, i + 1
    if t == tag16:
        return struct.unpack(">H", b[i + 1:i + 3])[0], i + 3
    return struct.unpack(">I", b[i + 1:i + 5])[0], i + 5


def unpk(b, i=0):
    t = b[i]
    if t <= 0x7f:
        return t, i + 1
    if 0x80 <= t <= 0x8f or t in (0xde, 0xdf):
        n, i = entries(b, i, 0x8f, 0xde)
        d = {}
        for _ in range(n):
            k, i = unpk(b, i)
            v, i = unpk(b, i)
            d[k] = v
        return d, i
    if 0x90 <= t <= 0x9f or t in (0xdc, 0xdd):
        n, i = entries(b, i, 0x9f, 0xdc)
        out = []
        for _ in range(n):
            v, i = unpk(b, i)
            out.append(v)
        return out, i
    if 0xa0 <= t <= 0xbf:
        n = t & 0x1f
        return b[i + 1:i + 1 + n].decode(), i + 1 + n
    if t in (0xd9, 0xda, 0xdb):
        w = {0xd9: 1, 0xda: 2, 0xdb: 4}[t]
        n = int.from_bytes(b[i + 1:i + 1 + w], "big")
        return b[i + 1 + w:i + 1 + w + n].decode(), i + 1 + w + n
    if t == 0xc0:
        return None, i + 1
    if t in (0xc2, 0xc3):
        return t == 0xc3, i + 1
    if t in (0xcc, 0xcd, 0xce, 0xcf):
        w = {0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8}[t]
        return int.from_bytes(b[i + 1:i + 1 + w], "big"), i + 1 + w
    if t in (0xd0, 0xd1, 0xd2, 0xd3):
        w = {0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8}[t]
        return int.from_bytes(b[i + 1:i + 1 + w], "big", signed=True), i + 1 + w
    if t >= 0xe0:
        return t - 256, i + 1
    if t == 0xcb:
        return struct.unpack(">d", b[i + 1:i + 9])[0], i + 9
    raise ValueError(hex(t))


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def read_all(s, timeout):
    """Read until the peer closes or @timeout passes: (bytes, closed). A reset is a close."""
    s.settimeout(timeout)
    data, closed = b"", False
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            data += chunk
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    return data, closed
