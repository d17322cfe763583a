"""How long container starts take on labkit's node under CPU limits (docs/timing.md "CPU limits").

Runs the blog Job's pod template (manifests/job-sidecar.yaml) as bare pods, with each container's
CPU limit set to none, 10m, 20m, 50m and 100m, on a running `labkit node` (as root), and reads
containerd's own event times (nanoseconds) with the node's `ctr events`: for the pause container,
the sidecar and the app, the time from containerd's container create to the task's start. Those
times fit SANDBOX_CPU_S and CONTAINER_CPU_S in labkit/sim/timing.py.

    sudo .venv/bin/python benchmarks/cpu_limit_start.py [ROUNDS]
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import yaml

from labkit.kubectl import kubectl_binary
from labkit.node import Node
from labkit.node.build import build_all

ROOT = Path(__file__).resolve().parents[1]
LIMITS = (("none", None), ("m10", "10m"), ("m20", "20m"), ("m50", "50m"), ("m100", "100m"))
NAMESPACE = "cpu-limit-start"
_EVENT = re.compile(r"(\S+) (\S+) \+0000 UTC k8s\.io (/\S+) (.*)$")


def pod(name: str, cpu: str | None) -> dict:
    template = yaml.safe_load((ROOT / "manifests" / "job-sidecar.yaml").read_text())["spec"]["template"]
    spec = copy.deepcopy(template["spec"])
    for container in spec["initContainers"] + spec["containers"]:
        if cpu is None:
            container.pop("resources", None)
        else:
            container["resources"]["limits"]["cpu"] = container["resources"]["requests"]["cpu"] = cpu
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def event_time(date: str, clock: str) -> float:
    seconds, _, fraction = clock.partition(".")
    return datetime.fromisoformat(f"{date}T{seconds}+00:00").timestamp() + float("0." + (fraction or "0"))


def main(rounds: int) -> None:
    node = Node()
    if not node.running():
        sys.exit("no labkit node runs: start one with `labkit node up`")
    runtime = build_all(node.minor, node.cache, quiet=True).runtime_bin    # cached: finds, never builds
    ctr = [str(runtime / "ctr"), "--address", str(node.layout.containerd_socket)]
    kubectl = [kubectl_binary(), "--kubeconfig", str(node.kubeconfig), "-n", NAMESPACE]
    lines: list[str] = []
    events = subprocess.Popen([*ctr, "events"], stdout=subprocess.PIPE, text=True)
    threading.Thread(target=lambda: lines.extend(line.rstrip() for line in events.stdout), daemon=True).start()
    subprocess.run([*kubectl[:3], "create", "namespace", NAMESPACE], capture_output=True)
    runs = [(f"{label}-{i}", cpu) for i in range(rounds) for label, cpu in LIMITS]
    try:
        for name, cpu in runs:
            subprocess.run([*kubectl, "apply", "-f", "-"], input=json.dumps(pod(name, cpu)), text=True,
                           check=True, capture_output=True)
            subprocess.run([*kubectl, "wait", f"pod/{name}", "--for=jsonpath={.status.phase}=Succeeded",
                            "--timeout=120s"], check=True, capture_output=True)
        time.sleep(2)
    finally:
        events.terminate()
    who = {}
    for cid in subprocess.run([*ctr, "-n", "k8s.io", "containers", "ls", "-q"], capture_output=True,
                              text=True).stdout.split():
        info = json.loads(subprocess.run([*ctr, "-n", "k8s.io", "containers", "info", cid], capture_output=True,
                                         text=True).stdout)
        labels = info.get("Labels") or {}
        if labels.get("io.kubernetes.pod.namespace") == NAMESPACE:
            who[cid] = (labels.get("io.kubernetes.pod.name"), labels.get("io.kubernetes.container.name") or "pause")
    times: dict[tuple, dict[str, float]] = {}
    for line in lines:
        match = _EVENT.match(line)
        found = match and re.search(r'"(?:container_id|id)":"([0-9a-f]{64})"', match.group(4))
        if found and found.group(1) in who:
            times.setdefault(who[found.group(1)], {}).setdefault(match.group(3), event_time(*match.group(1, 2)))
    print(f"{'pod':10} {'cpu':6} {'pause':>7} {'sidecar':>8} {'app':>7}   (containerd create -> task start, s)"
          f" {'app runs':>9} (task start -> exit, s)")
    for name, cpu in runs:
        took = [times.get((name, c), {}).get("/tasks/start", float("nan"))
                - times.get((name, c), {}).get("/containers/create", float("nan"))
                for c in ("pause", "sws-init", "sidecar-job")]
        app = times.get((name, "sidecar-job"), {})
        runs_s = app.get("/tasks/exit", float("nan")) - app.get("/tasks/start", float("nan"))
        print(f"{name:10} {cpu or '-':6} {took[0]:7.3f} {took[1]:8.3f} {took[2]:7.3f} {runs_s:9.3f}")
    subprocess.run([*kubectl[:3], "delete", "namespace", NAMESPACE, "--wait=false"], capture_output=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
