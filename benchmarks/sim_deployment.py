"""Simulator scale-out: the blog's Deployment with 100, 1,000 and 10,000 replicas.

Each run applies manifests/deployment-sidecar.yaml with ``replicas`` changed, lets every pod
start (sidecar, startup probe, app), deletes the Deployment 30 s after the apply (the
garbage collector deletes every pod; each app ignores SIGTERM and is SIGKILLed 30 s later,
then its sidecar stops) and runs until every pod is gone. It prints wall time, trace events
and events per second, and checks that the cost per pod stays about the same (linear
growth): the ratio of the largest to the smallest per-pod time must stay below 2.

    .venv/bin/python benchmarks/sim_deployment.py [--replicas 100 1000 10000] [--repeat 3]

``--cli`` times the command instead, as a user runs it: ``labkit sim run FILE --delete-after
30`` (the timeline table) and with ``--json`` (the trace), each a fresh process whose output
goes to /dev/null, start-up and writing included; the sizes of one repetition run in turn,
and each size's time is also given as a ratio to the smallest size's in the same repetition
(issue 21: 10,000 pods within 5 s, and ×10 ± 20 % from 1,000).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from labkit.sim import simulate  # noqa: E402


def run_once(replicas: int) -> tuple[float, int, float]:
    doc = yaml.safe_load((ROOT / "manifests" / "deployment-sidecar.yaml").read_text())
    doc["spec"]["replicas"] = replicas
    start = time.perf_counter()
    trace = simulate([doc], k8s_version="1.29", delete_after=30, until_seconds=600)
    wall = time.perf_counter() - start
    deleted = sum(1 for p in trace.pods if p.final.deleted)
    if len(trace.pods) != replicas or deleted != replicas:
        raise SystemExit(f"{replicas} replicas: {len(trace.pods)} pods, {deleted} deleted — the run is wrong")
    return wall, len(trace.events), trace.duration


def time_cli(manifest: Path, output: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "labkit", "sim", "run", str(manifest), "--delete-after", "30", *output],
                   check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - start


def main_cli(sizes: list[int], repeat: int) -> int:
    """Time ``labkit sim run`` as a command for each size, table and JSON, with ratios to the smallest size."""
    with tempfile.TemporaryDirectory() as tmp:
        manifests = {}
        for replicas in sizes:
            doc = yaml.safe_load((ROOT / "manifests" / "deployment-sidecar.yaml").read_text())
            doc["spec"]["replicas"] = replicas
            manifests[replicas] = Path(tmp) / f"deployment-{replicas}.yaml"
            manifests[replicas].write_text(yaml.safe_dump(doc))
        for label, output in (("table", []), ("--json", ["--json"])):
            walls: dict[int, list[float]] = {n: [] for n in sizes}
            for _ in range(repeat):
                for replicas in sizes:
                    walls[replicas].append(time_cli(manifests[replicas], output))
            smallest = sizes[0]
            print(f"labkit sim run ({label}); load average {os.getloadavg()[0]:.1f}")
            for replicas in sizes:
                ratios = [w / s for w, s in zip(walls[replicas], walls[smallest])]
                print(f"  {replicas:>6} replicas: median {statistics.median(walls[replicas]):6.2f} s "
                      f"(runs {', '.join(f'{w:.2f}' for w in walls[replicas])}); / {smallest}: median "
                      f"x{statistics.median(ratios):.2f} (runs {', '.join(f'{r:.2f}' for r in ratios)})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the median is reported")
    parser.add_argument("--cli", action="store_true", help="time the labkit sim run command instead")
    args = parser.parse_args()
    if args.cli:
        return main_cli(sorted(args.replicas), args.repeat)
    print(f"machine: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}")
    print(f"load average before: {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "")
    print(f"{'replicas':>9} {'wall s':>8} {'events':>9} {'events/s':>10} {'ms/pod':>8} {'virtual s':>10}")
    run_once(1)   # warm up: the first admission imports the Kubernetes client's models
    per_pod = {}
    for replicas in args.replicas:
        runs = [run_once(replicas) for _ in range(args.repeat)]
        wall = statistics.median(r[0] for r in runs)
        events, virtual = runs[0][1], runs[0][2]
        per_pod[replicas] = wall / replicas
        print(f"{replicas:>9} {wall:>8.2f} {events:>9} {events / wall:>10.0f} {1000 * wall / replicas:>8.3f} {virtual:>10.1f}")
    sizes = sorted(per_pod)
    steps = [per_pod[b] / per_pod[a] for a, b in zip(sizes, sizes[1:])]
    print("per-pod cost growth per step: " + ", ".join(f"{a}->{b}: x{r:.2f}" for a, b, r in zip(sizes, sizes[1:], steps))
          + " (linear: about 1; quadratic: about 10)")
    return 0 if all(r < 2 for r in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
