"""How fast is ``labkit serve`` for kubectl?

1. ``kubectl get pods`` (the real, pinned kubectl, a Table of every pod) in a namespace holding
   10 and 1,000 Running pods: the wall time of the command, and of the same list request made
   directly over HTTPS (what the server costs without kubectl's own start-up).
2. A watch (HTTPS, one JSON event per line) that sees 1,000 pods of the blog's Deployment go from
   Pending to Running at ``--pace 100``: the wall time from the create until the watch has seen
   every pod Running, against the simulated time that takes divided by the pace, and how late
   the watch saw the last pod.
3. The server's own time per request: the time inside its handler (measured in-process by the
   server, ``Api.timings``) against the total a client sees, for a GET of one pod and a list of
   1,000 pods as a Table.

    .venv/bin/python benchmarks/serve.py [--pods 1000] [--repeat 5]

Results and the machine are recorded in benchmarks/README.md ("labkit serve").
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import resource
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from labkit.serve import serve  # noqa: E402

KUBECTL = str(Path(sys.executable).parent / "kubectl")
TABLE = "application/json;as=Table;g=meta.k8s.io;v=v1"


class Client:
    def __init__(self, server):
        self.server = server
        self.context = ssl.create_default_context(cadata=server.ca.decode())
        self.conn = self._connect()

    def _connect(self, timeout: float = 120):
        return http.client.HTTPSConnection("127.0.0.1", self.server.port, context=self.context, timeout=timeout)

    def request(self, method: str, path: str, body=None, accept: str = "application/json"):
        """One request on a kept-alive connection (as kubectl and client-go keep theirs)."""
        data = None if body is None else json.dumps(body).encode()
        self.conn.request(method, path, body=data, headers={"Authorization": f"Bearer {self.server.token}",
                                                            "Content-Type": "application/json", "Accept": accept})
        response = self.conn.getresponse()
        return response.status, response.read()


def deployment(name: str, replicas: int, *, blog: bool) -> dict:
    if blog:
        obj = yaml.safe_load((ROOT / "manifests/deployment-sidecar.yaml").read_text())
        obj["metadata"]["name"] = name
    else:
        obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
               "spec": {"selector": {"matchLabels": {"app": name}},
                        "template": {"metadata": {"labels": {"app": name}},
                                     "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}
    obj["spec"]["replicas"] = replicas
    return obj


def running_pods(client: Client, ns: str) -> int:
    items = json.loads(client.request("GET", f"/api/v1/namespaces/{ns}/pods")[1])["items"]
    return sum(1 for p in items if (p.get("status") or {}).get("phase") == "Running")


def populate(client: Client, ns: str, count: int) -> float:
    """A namespace with ``count`` Running pods (a Deployment of one plain container each)."""
    assert client.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})[0] == 201
    started = time.perf_counter()
    assert client.request("POST", f"/apis/apps/v1/namespaces/{ns}/deployments",
                          deployment("web", count, blog=False))[0] == 201
    while running_pods(client, ns) < count:
        time.sleep(0.5)
    return time.perf_counter() - started


def kubectl_get_pods(server, ns: str, repeat: int, cache: str) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system) seconds of each ``kubectl get pods``."""
    env = {**os.environ, "KUBECONFIG": str(server.kubeconfig), "KUBECACHEDIR": cache}
    subprocess.run([KUBECTL, "get", "pods", "-n", ns], env=env, capture_output=True, check=True)  # discovery cached
    times, cpu = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        out = subprocess.run([KUBECTL, "get", "pods", "-n", ns], env=env, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        assert len(out.stdout.splitlines()) > 1
    return times, cpu


def http_list(client: Client, ns: str, repeat: int) -> tuple[list[float], list[float]]:
    """Client-side total and in-server handler time of a pod list as a Table."""
    totals, handler = [], []
    for _ in range(repeat):
        client.server.api.timings = []
        started = time.perf_counter()
        code, _ = client.request("GET", f"/api/v1/namespaces/{ns}/pods?limit=500", accept=TABLE)
        totals.append(time.perf_counter() - started)
        assert code == 200
        handler.append(sum(t for _, t in client.server.api.timings))
    client.server.api.timings = None
    return totals, handler


def http_get_one(client: Client, ns: str, name: str, repeat: int) -> tuple[list[float], list[float]]:
    totals, handler = [], []
    for _ in range(repeat):
        client.server.api.timings = []
        started = time.perf_counter()
        code, _ = client.request("GET", f"/api/v1/namespaces/{ns}/pods/{name}")
        totals.append(time.perf_counter() - started)
        assert code == 200
        handler.append(sum(t for _, t in client.server.api.timings))
    client.server.api.timings = None
    return totals, handler


def watch_rollout(count: int, pace: float, tmp: Path) -> dict:
    """A watch on a namespace while the blog's Deployment with ``count`` replicas rolls out."""
    with serve("1.29", pace=pace, kubeconfig=tmp / "watch-kubeconfig") as server:
        client = Client(server)
        ns = "rollout"
        assert client.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})[0] == 201
        watcher = Client(server)._connect(timeout=300)
        watcher.request("GET", f"/api/v1/namespaces/{ns}/pods?watch=true&timeoutSeconds=240",
                        headers={"Authorization": f"Bearer {server.token}"})
        stream = watcher.getresponse()
        created = time.perf_counter()
        assert client.request("POST", f"/apis/apps/v1/namespaces/{ns}/deployments",
                              deployment("sidecar-deploy", count, blog=True))[0] == 201
        phases: dict[str, str] = {}
        events = 0
        pending_seen = set()
        while True:
            line = stream.readline()
            if not line:
                raise SystemExit("the watch ended before every pod was Running")
            event = json.loads(line)
            events += 1
            pod = event["object"]
            phase = pod["status"].get("phase")
            phases[pod["metadata"]["name"]] = phase
            if phase == "Pending":
                pending_seen.add(pod["metadata"]["name"])
            if len(phases) == count and all(p == "Running" for p in phases.values()):
                break
        seen_all = time.perf_counter() - created
        watcher.close()
        # the simulated moment the last pod went Running, from the simulator's own trace
        trace = server.trace(ns)
        last = max(e.t for e in trace.events if e.type == "PodPhase" and e.phase == "Running")
        first = min(e.t for e in trace.events if e.pod)
        return {"pods": count, "pace": pace, "events": events, "pending_seen": len(pending_seen),
                "wall_s": seen_all, "simulated_s": last - first, "ideal_wall_s": (last - first) / pace}


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pace", type=float, default=100.0)
    parser.add_argument("--no-watch", action="store_true", help="skip the watch of a rollout (part 2)")
    args = parser.parse_args()
    kubectl_version = json.loads(subprocess.run([KUBECTL, "version", "--client", "-o", "json"], capture_output=True,
                                                text=True, check=True).stdout)["clientVersion"]["gitVersion"]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
          f"{platform.release()}, Python {platform.python_version()}, kubectl {kubectl_version}, "
          f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with serve("1.29", pace=args.pace, kubeconfig=tmp / "kubeconfig") as server:
            client = Client(server)
            rows = []
            for count in (10, args.pods):
                ns = f"pods-{count}"
                took = populate(client, ns, count)
                kubectl_times, kubectl_cpu = kubectl_get_pods(server, ns, args.repeat, str(tmp / "kube-cache"))
                totals, handler = http_list(client, ns, args.repeat)
                rows.append((count, took, kubectl_times, kubectl_cpu, totals, handler))
            name = json.loads(client.request("GET", "/api/v1/namespaces/pods-10/pods")[1])["items"][0]["metadata"]["name"]
            one_total, one_handler = http_get_one(client, "pods-10", name, args.repeat * 20)
        print(f"\nkubectl get pods (median of {args.repeat}; the list as a Table over HTTPS; the server's handler); "
              f"load average {os.getloadavg()[0]:.1f}:")
        print("| pods | kubectl get pods (ms) | its CPU (ms) | × the 10-pod kubectl | HTTPS list as Table (ms) "
              "| in the handler (ms) | set-up (s) |")
        print("|---|---|---|---|---|---|---|")
        for count, took, kubectl_times, kubectl_cpu, totals, handler in rows:
            ratio = statistics.median(kubectl_times) / statistics.median(rows[0][2])
            print(f"| {count} | {ms(kubectl_times)} | {ms(kubectl_cpu)} | {ratio:.2f} | {ms(totals)} | {ms(handler)} "
                  f"| {took:.1f} |")
        print(f"\none pod, GET (median of {len(one_total)}): total {ms(one_total)} ms, in the handler {ms(one_handler)} ms, "
              f"outside it (HTTP, TLS, client) {ms([t - h for t, h in zip(one_total, one_handler)])} ms")
        if args.no_watch:
            return
        result = watch_rollout(args.pods, args.pace, tmp)
        print(f"\nwatch: {result['pods']} pods of the blog's Deployment at pace {result['pace']:g}: {result['events']} "
              f"events; every pod Running after {result['wall_s']:.2f} s wall (simulated {result['simulated_s']:.2f} s, "
              f"{result['ideal_wall_s']:.2f} s at this pace); {result['pending_seen']} pods seen Pending first")


if __name__ == "__main__":
    main()
