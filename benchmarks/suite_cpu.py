"""Where the test suite's CPU goes: the README's test command, with the machine's CPU time by process.

Runs ``python -m pytest -n 4 --dist loadfile`` (or the command after ``--``) and reads /proc once a
second while it runs: the machine's CPU time (``/proc/stat``, everything but idle and iowait) and
each process's own user + system time. A process any sample saw is counted by its name, from its
start or from the command's (pytest's workers are ``python``; the real node's are kube-apiserver,
etcd, containerd, ...); what no sample saw (kubectl, short kernels and ``labkit`` commands that
lived under a second) is the rest. Linux only;
start the real node first (``labkit node up``) to measure the suite as ``.ci/run`` runs it.

    .venv/bin/python benchmarks/suite_cpu.py [-- COMMAND...]
"""

from __future__ import annotations

import collections
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HZ = os.sysconf("SC_CLK_TCK")
NODE = ("kube-apiserver", "etcd", "containerd", "containerd-shim", "kube-controller", "kube-scheduler", "kubelet",
        "runc", "docker-registry", "pause")


def machine_cpu_s() -> float:
    fields = list(map(int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]))
    return (sum(fields) - fields[3] - fields[4]) / HZ      # all but idle and iowait


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def processes() -> dict[tuple[int, int], tuple[str, float]]:
    """(pid, start time) -> (name, user + system seconds of the process itself); the start time
    keeps a reused pid apart."""
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():      # not the sampler itself
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        found[(int(pid), int(fields[19]))] = (name, (int(fields[11]) + int(fields[12])) / HZ)
    return found


def main() -> int:
    command = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else \
        [sys.executable, "-m", "pytest", "-n", "4", "--dist", "loadfile", "-q"]
    before = processes()              # what ran before the command: counted from here on
    first: dict[tuple[int, int], tuple[str, float]] = {}
    last: dict[tuple[int, int], tuple[str, float]] = {}
    start, cpu_start = time.monotonic(), machine_cpu_s()
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    while child.poll() is None:
        for key, (name, seconds) in processes().items():
            # a process that started since is counted from its start, not from its first sample
            first.setdefault(key, before.get(key, (name, 0.0)))
            last[key] = (name, seconds)
        time.sleep(1.0)
    wall, cpu = time.monotonic() - start, machine_cpu_s() - cpu_start
    by_name: collections.Counter[str] = collections.Counter()
    for key, (name, seconds) in last.items():
        by_name[name] += seconds - first[key][1]
    counted = sum(by_name.values())
    print(f"{' '.join(command)}: exit {child.returncode}")
    print(f"{cpu_model()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"wall {wall:.0f} s; the machine's CPU {cpu:.0f} s ({cpu / wall / os.cpu_count():.0%} of its cores)")
    print(f"{'process':<24} {'CPU s':>7}")
    node = sum(seconds for name, seconds in by_name.items() if name in NODE)
    for name, seconds in by_name.most_common(12):
        print(f"{name:<24} {seconds:7.1f}")
    print(f"{'(the real node, all)':<24} {node:7.1f}")
    print(f"{'(unseen: the rest)':<24} {cpu - counted:7.1f}")
    return child.returncode


if __name__ == "__main__":
    raise SystemExit(main())
