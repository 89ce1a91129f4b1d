#!/usr/bin/python3
"""Runs trace_program under DISTBARRIER_TRACE and checks the trace it leaves.

    check_trace.py PROGRAM MODE [--skew TOOL]

The file must be valid JSON however the program ended, hold one arrive->release span per
rank per barrier with a named track per rank, and (the barrier property, seen from the
trace) every rank's release of barrier k must come after every rank's arrival at k. With
--skew, the skew tool must draw a PNG and name the injected slow rank.
"""
import collections
import json
import os
import subprocess
import sys
import tempfile

RANKS, BARRIERS, SLOW_RANK = 6, 40, 4


def fail(message):
    print("FAIL:", message)
    sys.exit(1)


def main():
    program, mode = sys.argv[1], sys.argv[2]
    skew = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--skew" else None
    with tempfile.TemporaryDirectory() as work:
        path = os.path.join(work, "trace.json")
        env = dict(os.environ, DISTBARRIER_TRACE=path)
        result = subprocess.run([program, str(RANKS), str(BARRIERS), mode, str(SLOW_RANK)], env=env,
                                capture_output=True, text=True, timeout=120)
        expected = {"finish": 0, "exit": 3, "abort": -6}[mode]
        if result.returncode != expected:
            fail(f"program exited {result.returncode}, expected {expected}: {result.stderr[-2000:]}")
        with open(path, encoding="utf-8") as handle:
            trace = json.load(handle)  # raises, and fails the test, if the file is not valid JSON

        spans = [e for e in trace["traceEvents"] if e.get("ph") == "X" and e.get("cat") == "distbarrier"]
        released = [e for e in spans if e["args"]["outcome"] == "released"]
        per_barrier = collections.defaultdict(dict)
        for event in released:
            args = event["args"]
            if args["rank"] in per_barrier[args["seq"]]:
                fail(f"two spans for rank {args['rank']} in barrier {args['seq']}")
            if event["dur"] < 0 or event["tid"] != args["rank"] or event["name"] != f"barrier #{args['seq']}":
                fail(f"malformed span {event}")
            per_barrier[args["seq"]][args["rank"]] = (event["ts"], event["ts"] + event["dur"])
        if sorted(per_barrier) != list(range(1, BARRIERS + 1)):
            fail(f"barriers in the trace: {sorted(per_barrier)}")
        for seq, ranks in per_barrier.items():
            if sorted(ranks) != list(range(RANKS)):
                fail(f"barrier {seq} has spans for ranks {sorted(ranks)}")
            last_arrival = max(arrive for arrive, _ in ranks.values())
            first_release = min(release for _, release in ranks.values())
            if first_release < last_arrival:
                fail(f"barrier {seq}: a rank was released at {first_release} before the last arrival {last_arrival}")
        names = {e["tid"] for e in trace["traceEvents"] if e.get("ph") == "M" and e.get("name") == "thread_name"}
        if names != set(range(RANKS)):
            fail(f"named rank tracks: {sorted(names)}")
        print(f"{mode}: valid JSON, {len(released)} spans = {RANKS} ranks x {BARRIERS} barriers, property holds")

        if skew:
            png = os.path.join(work, "skew.png")
            drawn = subprocess.run([skew, path, "-o", png], capture_output=True, text=True, timeout=120)
            if drawn.returncode != 0:
                fail(f"{skew} failed: {drawn.stderr}")
            with open(png, "rb") as handle:
                if handle.read(8) != b"\x89PNG\r\n\x1a\n":
                    fail("the skew tool did not write a PNG")
            if f"slowest rank: {SLOW_RANK} " not in drawn.stdout:
                fail(f"the skew tool did not name rank {SLOW_RANK}:\n{drawn.stdout}")
            print(f"skew: PNG written, slowest rank {SLOW_RANK} named")


if __name__ == "__main__":
    main()
