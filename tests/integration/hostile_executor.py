#!/usr/bin/python3
# A compromised executor, for truth.sh: installed as purged-executor, it
# reads its job from fd 3 and sends what the attack named in the file
# argv[0].attack says: bytes no honest executor sends. The supervisor must
# kill it (or, for a legitimate but unusual result, record it exactly), fail
# the task with a precise reason, journal it, and stay up.
import os
import sys
import time

# truth.sh installs msgpack_min.py beside this file (as purged-executor): the tests' one packer.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from msgpack_min import frame, pk  # noqa: E402  (a str with surrogate escapes packs as its raw bytes)


def send(*msgs):
    data = b"".join(frame(pk(m)) for m in msgs)
    while data:
        data = data[os.write(3, data):]


def result(ok=False, **kw):
    return {"kind": "result", "result": dict(ok=ok, **kw)}


def progress(done, total=10):
    return {"kind": "progress", "progress": {"step": "objects", "done": done, "total": total}}


def entry(i):
    return {"kind": "objects", "id": i, "name": "object %d" % i}


ATTACKS = {
    # The fail-closed issue's exact attack: a map key that is not UTF-8.
    "badkey": lambda: send({"\udcff": 1}),
    # Legitimate but long: 600 x "é" (1 200 bytes) must be recorded exactly.
    "error600": lambda: send(result(error="é" * 600)),
    # 60 000 bytes of "é": kept, cut on a character boundary.
    "error60k": lambda: send(result(error="é" * 30000)),
    # Over the protocol's string limit (64 KiB).
    "error80k": lambda: send(result(error="é" * 40000)),
    # A manifest name that is not UTF-8, after two good deletions.
    "badname": lambda: send({"kind": "manifest", "manifest": [entry(1), entry(2)]},
                            {"kind": "manifest", "manifest": [{"kind": "objects", "id": 3, "name": "\udcff\udcfeobject"}]}),
    # A name long enough to fill root's disk quickly, frame after frame (hostile review of issue 15, F5).
    "longname": lambda: send({"kind": "manifest", "manifest": [entry(1)]},
                             {"kind": "manifest", "manifest": [{"kind": "objects", "id": 2, "name": "x" * 60000}]}),
    # A kind that is not a name.
    "badkind": lambda: send({"kind": "manifest", "manifest": [{"kind": "no such kind!", "id": 1}]}),
    # A result count that is negative.
    "countkind": lambda: send(result(ok=True, counts={"objects": -5})),
    # Counts that would pass 2^53 once summed.
    "overflow": lambda: send({"kind": "manifest", "manifest": [], "deleted": {"objects": 1 << 53}},
                             {"kind": "manifest", "manifest": [], "deleted": {"objects": 1}}),
    # A flood of progress frames.
    "flood": lambda: send(*[progress(i % 10) for i in range(30000)]),
    # A message after the result.
    "after": lambda: send(result(ok=True), progress(1)),
    # A deletion reported by a plan.
    "plandelete": lambda: send({"kind": "manifest", "manifest": [entry(1)]}),
    # 100 000 log lines, then an honest failure.
    "logflood": lambda: (os.write(2, b"".join(b"<3>flooding the log %d\n" % i for i in range(100000))),
                         send(result(error="logged a lot"))),
    # Three confirmed deletions, then gone without a result.
    "vanish": lambda: send({"kind": "manifest", "manifest": [entry(1), entry(2), entry(3)]}),
}

if __name__ == "__main__":
    attack = open(sys.argv[0] + ".attack").read().strip()
    try:
        os.read(3, 65536)  # the job (its content does not matter here)
    except OSError:
        pass
    ATTACKS[attack]()
    if attack in ("error600", "error60k", "vanish", "logflood"):
        sys.exit(0)
    time.sleep(10)  # the supervisor kills us long before this
