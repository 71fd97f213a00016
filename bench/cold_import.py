"""Cold-import cost of a Lambda handler module, and what extra imports would add.

    python -m bench.cold_import [--python PATH] [--runs N] [--module app]
        [--extra "from aws_lambda_powertools import Logger, Metrics"] ...

Each run is a fresh interpreter under `-X importtime`: it imports `--module`
(the handler module Lambda loads, `app` for every Tickwork function), then the
`--extra` statements. Python writes one line per module it imports, with the
cumulative microseconds under it; a marker written to stderr between the steps
splits the lines, so the figure for the extras is what they add on top of the
handler module (modules both need are counted once, with the handler). `--ours`
names modules already inside the handler whose cumulative cost is reported too
(what the extras would replace). Figures are medians over the runs, in ms.

`--python` runs another interpreter (say a scratch virtualenv that holds a
candidate package besides the project's dependencies); the project itself
depends on nothing this script imports.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK = "@@bench.cold_import step"


def _entries(stderr: str) -> list[list[tuple[str, int, int]]]:
    """The `-X importtime` lines of each step: (module, depth, cumulative_us)."""
    steps: list[list[tuple[str, int, int]]] = []
    for line in stderr.splitlines():
        if line == MARK:
            steps.append([])
            continue
        if not steps or not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        steps[-1].append((name.strip(), depth, int(cumulative)))
    return steps


def measure_once(python: str, module: str, extras: list[str], ours: list[str]) -> dict[str, float]:
    """One fresh interpreter: ms of the module, of each extra top-level import, of `ours`."""
    mark = f"w({MARK!r} + '\\n'); sys.stderr.flush()"
    steps = ["import sys", "w = sys.stderr.write", mark, f"import {module}", mark, *extras]
    code = "\n".join(steps)
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    done = subprocess.run(
        [python, "-X", "importtime", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    handler, added = _entries(done.stderr)
    found: dict[str, float] = {
        "handler": sum(us for _, depth, us in handler if depth == 0) / 1000,
        "added": sum(us for _, depth, us in added if depth == 0) / 1000,
    }
    for name, depth, us in added:
        if depth == 0:
            found[f"added: {name}"] = us / 1000
    for name, _, us in handler:
        if name in ours:
            found[f"ours: {name}"] = us / 1000
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter to measure with")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--module", default="app", help="the handler module Lambda imports")
    parser.add_argument(
        "--extra", action="append", default=[], help="a statement run after the import"
    )
    parser.add_argument(
        "--ours",
        default="chalicelib.logs,chalicelib.metrics.service,chalicelib.metrics.model",
        help="comma-separated modules inside the handler to report (what extras would replace)",
    )
    args = parser.parse_args()
    ours = [name for name in args.ours.split(",") if name]
    runs: dict[str, list[float]] = defaultdict(list)
    for _ in range(args.runs):
        for key, ms in measure_once(args.python, args.module, args.extra, ours).items():
            runs[key].append(ms)
    print(f"load average {os.getloadavg()[0]:.2f}; {args.runs} runs; {args.python}")
    print(f"{'cumulative import time (ms)':<58} {'median':>8} {'min':>8} {'max':>8}")
    labels = {"handler": f"import {args.module}", "added": "added by the extras, in total"}
    for key, values in runs.items():
        label = labels.get(key, key)
        print(f"{label:<58} {statistics.median(values):8.1f} {min(values):8.1f} {max(values):8.1f}")


if __name__ == "__main__":
    main()
