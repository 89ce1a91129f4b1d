#!/usr/bin/env python3
"""Runs every command the README shows, as written, from the repository root.

Each ```sh block runs as one bash script (so a `source` line holds for the lines after it)
with -e and pipefail. Commands that CI runs itself are skipped here, by prefix, with the
reason printed; everything else must exit 0. Usage: run_readme_commands.py REPO_ROOT
"""
import re
import subprocess
import sys
from pathlib import Path

# Command prefixes not run by this test, and why: each is run elsewhere as written.
COVERED_ELSEWHERE = {
    "bash scripts/demo.sh": ".ci/run runs it",
    "bash scripts/test.sh": "the suite this test belongs to; .ci/run runs it",
    "bash scripts/fuzz.sh": ".ci/run runs it (30 s per harness)",
    "bash scripts/soak.sh": "10^6 + 10^5 checked barriers take minutes; run by hand before a release",
    "distbarrier-run --nnodes 2": "needs two hosts; ctest example_two_nodes_root-info runs it with two launchers "
                                   "on this host",
    "distbarrier-run --rank-table rank_table.json": "needs two hosts; ctest example_two_nodes_rank-table runs it "
                                                    "with two launchers on this host",
}
BLOCK_TIMEOUT_S = 900


def blocks(readme: str):
    for match in re.finditer(r"```sh\n(.*?)```", readme, re.S):
        # Join continuation lines, then drop trailing comments and empty lines.
        text = match.group(1).replace("\\\n", " ")
        lines = []
        for line in text.splitlines():
            command = re.sub(r"\s+#\s.*$", "", line).strip()
            if command:
                lines.append(command)
        yield lines


def main() -> int:
    root = Path(sys.argv[1])
    failures = 0
    ran = 0
    for number, lines in enumerate(blocks((root / "README.md").read_text()), start=1):
        kept = []
        for command in lines:
            reason = next((why for prefix, why in COVERED_ELSEWHERE.items() if command.startswith(prefix)), None)
            if reason:
                print(f"block {number}: skipped `{command}`: {reason}")
            else:
                kept.append(command)
        if not kept:
            continue
        script = "set -euo pipefail\n" + "\n".join(kept) + "\n"
        print(f"block {number}: running\n  " + "\n  ".join(kept), flush=True)
        result = subprocess.run(["bash", "-c", script], cwd=root, timeout=BLOCK_TIMEOUT_S,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ran += len(kept)
        if result.returncode != 0:
            failures += 1
            print(f"block {number}: FAILED with exit code {result.returncode}; its output ends:")
            print("\n".join(result.stdout.splitlines()[-40:]))
        else:
            print(f"block {number}: ok")
    print(f"{ran} README commands run, {failures} blocks failed")
    return 1 if failures or ran == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
