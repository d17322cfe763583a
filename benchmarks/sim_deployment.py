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
(issue 21: 10,000 pods within 5 s, and ×10 ± 20 % from 1,000). Each repetition also times SimPy
alone over as many events as the largest size makes, the floor of the simulation's cost.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
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


def time_cli(manifest: Path, output: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one ``labkit sim run``: on a shared machine the CPU
    time is what the load disturbs least."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "labkit", "sim", "run", str(manifest), "--delete-after", "30", *output],
                   check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def simpy_floor(pods: int, events_per_pod: int = 45) -> float:
    """CPU seconds SimPy itself takes for as many events as ``pods`` pods make (processes that only
    yield timeouts, in a fresh interpreter): what no change to labkit's model code can go below
    without fewer events per pod."""
    code = ("import gc, time, simpy\ngc.disable()\nenv = simpy.Environment()\n"
            "def proc(env, i):\n    for k in range(%d):\n        yield env.timeout(0.05 * ((i + k) %% 7))\n"
            "for i in range(%d):\n    env.process(proc(env, i))\n"
            "t = time.process_time(); env.run(); print(time.process_time() - t)\n") % (events_per_pod - 1, pods)
    return float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)


def main_cli(sizes: list[int], repeat: int, outputs: list[str]) -> int:
    """Time ``labkit sim run`` as a command for each size, table and JSON, with ratios to the smallest size."""
    with tempfile.TemporaryDirectory() as tmp:
        manifests = {}
        for replicas in sizes:
            doc = yaml.safe_load((ROOT / "manifests" / "deployment-sidecar.yaml").read_text())
            doc["spec"]["replicas"] = replicas
            manifests[replicas] = Path(tmp) / f"deployment-{replicas}.yaml"
            manifests[replicas].write_text(yaml.safe_dump(doc))
        for label, output in (("table", []), ("--json", ["--json"])):
            if label not in outputs:
                continue
            walls: dict[int, list[float]] = {n: [] for n in sizes}
            cpus: dict[int, list[float]] = {n: [] for n in sizes}
            floors: list[float] = []
            for _ in range(repeat):
                for replicas in sizes:
                    wall, cpu = time_cli(manifests[replicas], output)
                    walls[replicas].append(wall)
                    cpus[replicas].append(cpu)
                floors.append(simpy_floor(sizes[-1]))
            smallest = sizes[0]
            print(f"labkit sim run ({label}); load average {os.getloadavg()[0]:.1f}; SimPy alone for the events of "
                  f"{sizes[-1]} pods (45 a pod): median {statistics.median(floors):.2f} s CPU "
                  f"(runs {', '.join(f'{f:.2f}' for f in floors)})")
            for replicas in sizes:
                ratios = [w / s for w, s in zip(walls[replicas], walls[smallest])]
                print(f"  {replicas:>6} replicas: median {statistics.median(walls[replicas]):6.2f} s "
                      f"(runs {', '.join(f'{w:.2f}' for w in walls[replicas])}); / {smallest}: median "
                      f"x{statistics.median(ratios):.2f} (runs {', '.join(f'{r:.2f}' for r in ratios)}); CPU median "
                      f"{statistics.median(cpus[replicas]):.2f} s (runs {', '.join(f'{c:.2f}' for c in cpus[replicas])}), "
                      f"/ {smallest}: x{statistics.median(c / s for c, s in zip(cpus[replicas], cpus[smallest])):.2f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the median is reported")
    parser.add_argument("--cli", action="store_true", help="time the labkit sim run command instead")
    parser.add_argument("--output", nargs="+", choices=["table", "--json"], default=["table", "--json"],
                        help="with --cli: which outputs to time (default both)")
    args = parser.parse_args()
    if args.cli:
        return main_cli(sorted(args.replicas), args.repeat, args.output)
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
