"""The blog's Job (and Deployment) on labkit's real node and in the simulator, side by side.

Each repetition runs, one after the other, the same steps through the same lab contract on both
backends (what notebook 04 and ``labkit fidelity`` do): the Job — apply
manifests/job-sidecar.yaml, wait until it is Complete; the Deployment — apply
manifests/deployment-sidecar.yaml, wait until it is Available, delete it and wait until its pod
is gone (its app, a shell loop that ignores SIGTERM, is SIGKILLed after the 30 s grace period).
For each it gives the wall time of those steps and the time the trace itself says they took
(the Job: its ``JobComplete`` event; the Deployment: its last event), which is seconds on the
node and simulated seconds in the simulator, and the ratio of the node's wall time to the
simulator's in the same repetition; and ``labkit sim run`` of the Job as a command (what a
user types: Python's start-up and imports included) against the node's Job. The simulator runs
one Job first, untimed: the first admission in a process imports the Kubernetes API models
(about 0.1 s), a start-up cost.

It needs labkit's node to be running already (``labkit node status``); it never starts or stops
it, and works in namespaces of its own that it deletes.

    .venv/bin/python benchmarks/node_vs_sim.py [--repeat 3] [--no-deployment]

Results and the machine are recorded in benchmarks/README.md ("The real node against the
simulator").
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from labkit.cluster import ClusterLab  # noqa: E402
from labkit.node import Node  # noqa: E402
from labkit.sim import SimLab  # noqa: E402

WORKLOADS = {
    "job": ("manifests/job-sidecar.yaml", "job/sidecar-job", "Complete"),
    "deployment": ("manifests/deployment-sidecar.yaml", "deployment/sidecar-deploy", "Available"),
}


def drive(lab, workload: str) -> tuple[float, float]:
    """Run one workload; (wall seconds of its steps, the seconds its trace says they took)."""
    manifest, ref, condition = WORKLOADS[workload]
    started = time.perf_counter()
    lab.apply(str(ROOT / manifest))
    lab.wait(ref, condition, timeout=300)
    if workload == "deployment":
        lab.delete(ref, wait=True, timeout=300)
    wall = time.perf_counter() - started
    trace = lab.trace()
    if workload == "job":
        done = trace.first("JobComplete")
        if done is None:
            raise SystemExit(f"no JobComplete in the {lab.backend} trace")
        return wall, done.t
    return wall, max(e.t for e in trace.events)


def sim_command(version: str) -> float:
    """Wall seconds of ``labkit sim run`` of the Job as a command (Python's start-up and imports included)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "labkit", "sim", "run", WORKLOADS["job"][0], "--k8s-version", version],
                   check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - started


def node_lab(node: Node) -> ClusterLab:
    return ClusterLab(kubeconfig=node.kubeconfig, context="labkit-node", quiet=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-deployment", action="store_true", help="only the Job")
    args = parser.parse_args()
    node = Node(None)
    if not node.running():
        raise SystemExit("labkit's node is not running (labkit node status); this benchmark never starts it")
    workloads = ["job"] if args.no_deployment else ["job", "deployment"]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
          f"{platform.release()}, Python {platform.python_version()}; node: {node.describe()}")
    warm = SimLab(k8s_version="1.29", seed=0, quiet=True)  # the first admission imports the API models
    drive(warm, "job")
    warm.close()
    rows: dict[str, list[tuple[float, float, float, float]]] = {w: [] for w in workloads}
    commands: list[tuple[float, float]] = []   # (node wall of the Job, labkit sim run of it) per repetition
    loads = []
    for _ in range(args.repeat):
        for workload in workloads:
            loads.append(os.getloadavg()[0])
            lab = node_lab(node)
            try:
                version = lab.kubernetes_version
                node_wall, node_t = drive(lab, workload)
            finally:
                lab.close()
            minor = ".".join(version.lstrip("v").split(".")[:2])
            sim = SimLab(k8s_version=minor, seed=0, quiet=True)
            try:
                sim_wall, sim_t = drive(sim, workload)
            finally:
                sim.close()
            rows[workload].append((node_wall, node_t, sim_wall, sim_t))
            if workload == "job":
                commands.append((node_wall, sim_command(minor)))
            print(f"  {workload}: node {node_wall:.2f} s wall ({node_t:.2f} s in its trace); simulator "
                  f"{sim_wall * 1000:.1f} ms wall ({sim_t:.2f} simulated s); node/simulator wall "
                  f"x{node_wall / sim_wall:,.0f}", flush=True)
    print(f"\nload average during the runs: {min(loads):.1f}-{max(loads):.1f} (1 min); medians of {args.repeat}:")
    print("| workload | node wall (s) | node trace (s) | simulator wall (ms) | simulated (s) | node wall / simulator wall |")
    print("|---|---:|---:|---:|---:|---:|")
    for workload, runs in rows.items():
        med = [statistics.median(r[i] for r in runs) for i in range(4)]
        ratio = statistics.median(r[0] / r[2] for r in runs)
        print(f"| {workload} | {med[0]:.2f} | {med[1]:.2f} | {med[2] * 1000:.1f} | {med[3]:.2f} | x{ratio:,.0f} |")
    print(f"\nlabkit sim run of the Job as a command: {statistics.median(c for _, c in commands):.2f} s wall; node wall / "
          f"command wall x{statistics.median(n / c for n, c in commands):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
