#!/usr/bin/python3
"""Plots a distbarrier-perf JSON result: ns per barrier (log y) against ranks, one line per
implementation, the cache-line ping-pong as a dashed floor.

    scripts/plot_perf.py RESULT.json [MORE.json ...] -o perf.png

Several results (e.g. -b 2 -e 16 and -g 32 64 128) are drawn as one set of curves; where two
have the same rank count the later file wins.

Needs matplotlib (Debian: python3-matplotlib).
"""
import argparse
import json
import sys

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SERIES = [
    ("distbarrier_back_to_back_ns", "distbarrier back-to-back", "C0", "o", "-"),
    ("distbarrier_round_trip_ns", "distbarrier round trip", "C0", "s", "--"),
    ("std_barrier_ns", "std::barrier", "C1", "^", "-"),
    ("pthread_barrier_ns", "pthread_barrier", "C2", "v", "-"),
    ("central_spin_yield_ns", "central spin-then-yield", "C4", "D", "-"),
    ("mpi_barrier_ns", "MPI_Barrier (Open MPI)", "C3", "P", "-"),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("result", nargs="+", help="JSON written by distbarrier-perf --json")
    parser.add_argument("-o", "--output", default="perf.png", help="image to write (default perf.png)")
    parser.add_argument("--title", help="title (default: mode and machine)")
    args = parser.parse_args()

    by_ranks = {}
    result = None
    for path in args.result:
        with open(path) as f:
            loaded = json.load(f)
        result = result or loaded
        for row in loaded.get("rows", []):
            by_ranks[row["ranks"]] = row
    rows = [by_ranks[r] for r in sorted(by_ranks)]
    if not rows:
        sys.exit("plot_perf.py: no rows in " + " ".join(args.result))
    ranks = [row["ranks"] for row in rows]

    fig, ax = plt.subplots(figsize=(10, 5), dpi=120)
    for key, label, color, marker, style in SERIES:
        points = [(row["ranks"], row.get(key)) for row in rows if row.get(key) is not None]
        if not points:
            continue
        xs, ys = zip(*points)
        ax.plot(xs, ys, label=label, color=color, marker=marker, linestyle=style, linewidth=1.8, markersize=6)
    pingpong = result.get("pingpong_ns")
    if pingpong:
        what = "processes" if result.get("mode") == "processes" else "threads"
        ax.axhline(pingpong, color="gray", linestyle=":", linewidth=1.5,
                   label=f"cache-line ping-pong, 2 {what} ({pingpong:.0f} ns)")

    ax.set_yscale("log")
    if len(ranks) > 1 and ranks[-1] / ranks[0] >= 4:
        ax.set_xscale("log", base=2)
    ax.set_xticks(ranks)
    ax.set_xticklabels([str(r) for r in ranks])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("ranks")
    ax.set_ylabel("ns per barrier (log)")
    machine = result.get("machine", {})
    ax.set_title(args.title or
                 f"distbarrier-perf, {result.get('mode')} mode, {machine.get('cpu')} ({machine.get('nproc')} CPUs); "
                 f"median of {result.get('repeat')} rounds x {result.get('iterations')} barriers",
                 fontsize=10)
    ax.grid(True, which="major", alpha=0.35)
    ax.legend(fontsize=8.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    fig.savefig(args.output)
    print(args.output)


if __name__ == "__main__":
    main()
