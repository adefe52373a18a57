#!/usr/bin/env python3
"""An ordinary RAMCloud client in Python 3, through RAMCloud's own bindings
(ramcloud.py): it writes, increments, removes and reads back keys of its own
while migrations run, and checks every answer against what it last did to
the key (it is the only writer of its keys).

Usage: python_client.py <coordinator> <cluster> <table> <keys> <stop file>
                        <max operations> <pause us>

Prints one JSON object: operations, failed (errors, wrong answers, or no
answer within 1 s), failures (the first few), and a count per kind.
"""
import json
import os
import random
import sys
import time

import ramcloud


def main():
    if len(sys.argv) != 8:
        print(__doc__, file=sys.stderr)
        return 2
    locator, cluster, table_name = sys.argv[1:4]
    keys = int(sys.argv[4])
    stop_file = sys.argv[5]
    max_operations = int(sys.argv[6])
    pause = int(sys.argv[7]) / 1e6

    rc = ramcloud.RAMCloud()
    rc.connect(locator, cluster)
    table = rc.get_table_id(table_name)
    rng = random.Random(20261126)
    expected = {}           # key -> bytes, or None once removed
    counts = {"read": 0, "write": 0, "remove": 0, "increment": 0}
    failures = []
    operations = 0
    started = time.monotonic()

    for n in range(max_operations):
        if n % 64 == 0 and (os.path.exists(stop_file) or
                            time.monotonic() - started > 600):
            break
        key = "py%d" % rng.randrange(keys)
        roll = rng.random()
        kind = ("write" if roll < 0.35 else "remove" if roll < 0.45
                else "increment" if roll < 0.55 else "read")
        invoked = time.monotonic()
        problem = None
        try:
            if kind == "write":
                value = b"%d:%d" % (n, rng.randrange(1 << 40))
                rc.write(table, key, value)
                expected[key] = value
            elif kind == "remove":
                try:
                    rc.delete(table, key)
                except ramcloud.NoObjectError:
                    if expected.get(key) is not None:
                        problem = "remove of %s: no object, wrote %r" % (
                            key, expected[key])
                expected[key] = None
            elif kind == "increment":
                current = expected.get(key)
                if current is not None and len(current) != 8:
                    # Only 8-byte values count; start this key over.
                    rc.write(table, key, (0).to_bytes(8, "little",
                                                      signed=True))
                    current = (0).to_bytes(8, "little", signed=True)
                base = 0 if current is None else int.from_bytes(
                    current, "little", signed=True)
                value, _ = rc.increment(table, key, 3)
                if value != base + 3:
                    problem = "increment of %s: %d, expected %d" % (
                        key, value, base + 3)
                expected[key] = value.to_bytes(8, "little", signed=True)
            else:
                want = expected.get(key)
                try:
                    got, _ = rc.read(table, key)
                    if key in expected and got != want:
                        problem = "read of %s: %r, expected %r" % (
                            key, got, want)
                except ramcloud.NoObjectError:
                    if want is not None:
                        problem = "read of %s: no object, expected %r" % (
                            key, want)
        except Exception as error:     # every failure is reported, not raised
            problem = "%s of %s: %r" % (kind, key, error)
        if problem is None and time.monotonic() - invoked > 1.0:
            problem = "%s of %s took %.3f s" % (kind, key,
                                                time.monotonic() - invoked)
        operations += 1
        counts[kind] += 1
        if problem is not None:
            failures.append(problem)
        if pause > 0:
            time.sleep(pause)

    # Close the connection now (its shim reports its counters on close).
    ramcloud.so.rc_disconnect(rc.client)
    rc.client = ramcloud.ctypes.c_void_p()
    print(json.dumps({"operations": operations, "failed": len(failures),
                      "failures": failures[:10], "counts": counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
