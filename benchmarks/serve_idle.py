"""What does ``labkit serve`` cost while nothing changes?

Starts ``labkit serve`` (pace 1, the default) as its own process, creates N pods whose app
echoes a line every second (``while true; do echo tick; sleep 1; done``, no probes: once
Running nothing about them changes), waits until all are Running, then reads the server
process's CPU time (user + system, /proc/PID/stat) over a window of W seconds with no client
connected. Prints the share of one core it used. A second row does the same for the blog's
Deployment (a startup probe on the sidecar, so the kubelet has probe work to do).

    .venv/bin/python benchmarks/serve_idle.py [--pods 50] [--window 10]

Linux only (it reads /proc). Results and the machine are recorded in benchmarks/README.md
("labkit serve at rest").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK      # utime, stime


def kubectl(env: dict, *args: str, input: str | None = None) -> str:
    return subprocess.run([str(BIN / "kubectl"), *args], env=env, input=input, capture_output=True, text=True,
                          check=True, timeout=300).stdout


def ticking(replicas: int) -> str:
    return yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ticking"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "ticking"}},
                 "template": {"metadata": {"labels": {"app": "ticking"}}, "spec": {"containers": [{
                     "name": "app", "image": "alpine:3.20",
                     "command": ["sh", "-c", "while true; do echo tick; sleep 1; done"]}]}}}})


def blog(replicas: int) -> str:
    doc = yaml.safe_load((ROOT / "manifests/deployment-sidecar.yaml").read_text())
    doc["spec"]["replicas"] = replicas
    return yaml.safe_dump(doc)


def measure(manifest: str, name: str, pods: int, window: float, tmp: Path) -> float:
    kubeconfig = tmp / f"{name}.kubeconfig"
    server = subprocess.Popen([str(BIN / "labkit"), "serve", "--kubeconfig", str(kubeconfig)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        server.stdout.readline()           # the banner: it listens
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(tmp / "cache")}
        kubectl(env, "apply", "-f", "-", input=manifest)
        kubectl(env, "rollout", "status", f"deployment/{name}", "--timeout=240s")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            items = json.loads(kubectl(env, "get", "pods", "-o", "json"))["items"]
            if len(items) == pods and all(p["status"].get("phase") == "Running" for p in items):
                break
            time.sleep(1)
        time.sleep(3)                       # let the last status writes and kubectl's connections settle
        before = cpu_seconds(server.pid)
        time.sleep(window)
        return (cpu_seconds(server.pid) - before) / window
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--window", type=float, default=10.0)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}; {time.strftime('%Y-%m-%d')}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, name, manifest in (("ticking pods, no probes", "ticking", ticking(args.pods)),
                                      ("the blog's Deployment (startup probe)", "sidecar-deploy", blog(args.pods))):
            share = measure(manifest, name, args.pods, args.window, Path(tmp))
            print(f"{args.pods} Running pods, {label}: {share * 100:.1f} % of a core over {args.window:g} s")


if __name__ == "__main__":
    main()
