"""What the node does to this machine, and how ``down`` undoes all of it (docs/node.md, "Clean-up").

The node starts processes (each in a session of its own, logs in the node's folder), makes one
bridge, cgroups under its own root in every hierarchy, mounts (overlay root filesystems, network
namespaces, the kubelet's volumes) under its own folders, and turns on IPv4 forwarding (the CNI
bridge plugin does, for its gateway). :func:`clean` removes each of these, whatever state a
failed start or a Ctrl-C left: it finds the node's processes by their cgroup and binary, not
only by the PIDs it wrote down.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import BackendUnavailable
from .config import BRIDGE, CGROUP_ROOT, NODE_IP, POD_SUBNET

CGROUP_BASE = Path("/sys/fs/cgroup")
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


def problems() -> list[str]:
    """Why a node cannot run on this machine (empty when it can)."""
    found = []
    if os.uname().sysname != "Linux":
        return [f"labkit node runs on Linux only (this is {os.uname().sysname})"]
    if os.geteuid() != 0:
        found.append("labkit node needs root (it runs containerd, the kubelet and a network bridge)")
    for tool, package in (("go", "Go 1.26+"), ("gcc", "gcc"), ("cargo", "Rust's cargo"), ("ip", "iproute2"),
                          ("docker-registry", "the docker-registry package"),
                          ("busybox", "the busybox-static package")):
        if not _which(tool):
            found.append(f"{tool} not found ({package})")
    if not Path("/usr/lib/cni/bridge").exists():
        found.append("/usr/lib/cni/bridge not found (the containernetworking-plugins package)")
    return found


def _which(tool: str) -> bool:
    import shutil

    return shutil.which(tool) is not None


def process_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, which tells a PID apart from a reused one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def start(name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None) -> tuple[int, int]:
    """Start one component in a session of its own, its output in ``log_dir/<name>.log``; (pid, start time)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{name}.log", "ab") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, env=env)
    return process.pid, process_start_time(process.pid) or 0


def alive(pid: int, started: int) -> bool:
    return process_start_time(pid) == started and not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def http_ok(url: str) -> bool:
    """Whether ``url`` answers 200 now (a started component's health endpoint)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def log_tail(logs: Path, name: str, lines: int = 15) -> str:
    """The last lines of a started process's log (``start`` writes ``<logs>/<name>.log``)."""
    try:
        return "\n".join((logs / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_until(ready: Callable[[], bool], what: str, *, timeout: float, pids: Callable[[], dict],
               logs: Path, stopping: Callable[[], bool] = lambda: False) -> float:
    """Poll ``ready`` until it holds; returns the seconds it took. Fails at once, with the tail of its
    log, when one of ``pids()`` (name -> (pid, start time)) has exited: waiting on would only time out."""
    from ..errors import LabkitError

    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if stopping():
            raise LabkitError(f"stopped while waiting for {what}")
        if ready():
            return time.monotonic() - start
        for name, (pid, began) in pids().items():
            if not alive(pid, began):
                raise LabkitError(f"{name} exited while waiting for {what}; its log: {logs / (name + '.log')}\n"
                                  f"{log_tail(logs, name)}")
        time.sleep(0.2)
    raise LabkitError(f"timed out after {timeout:g} s waiting for {what}; logs in {logs}")


def stop(pid: int, started: int, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; only if the PID is still that process."""
    if not alive(pid, started):
        _reap(pid)
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(pid)
        if not alive(pid, started):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for _ in range(50):
        _reap(pid)
        if not alive(pid, started):
            return
        time.sleep(0.1)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def processes_running(binaries: list[Path]) -> list[int]:
    """PIDs of processes whose executable is one of ``binaries`` (the node's own builds)."""
    wanted = {os.path.realpath(b) for b in binaries}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            exe = os.readlink(entry / "exe")
        except OSError:
            continue
        if exe.removesuffix(" (deleted)") in wanted:
            found.append(int(entry.name))
    return found


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(process_start_time(p) is not None and not _zombie(p) for p in pids):
        for pid in pids:
            _reap(pid)
        time.sleep(0.05)


# -- cgroups -----------------------------------------------------------------------------
def cgroup_roots() -> list[Path]:
    """The node's cgroup root in every mounted hierarchy (v1 controllers, named ones, and v2)."""
    roots = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        parts = line.split()
        if len(parts) > 2 and parts[2] in ("cgroup", "cgroup2"):
            roots.append(Path(parts[1]) / CGROUP_ROOT.lstrip("/"))
    return roots


def make_cgroup_roots() -> None:
    """Create the node's cgroup root in every v1 hierarchy (the kubelet requires it in each)."""
    for root in cgroup_roots():
        if "unified" in root.parts:
            continue
        root.mkdir(exist_ok=True)
        if (root.parent / "cpuset.cpus").exists():
            for name in ("cpuset.cpus", "cpuset.mems"):
                if not (root / name).read_text().strip():
                    (root / name).write_text((root.parent / name).read_text())


def cgroup_processes() -> list[int]:
    pids: set[int] = set()
    for root in cgroup_roots():
        if not root.is_dir():
            continue
        for procs in root.rglob("cgroup.procs"):
            try:
                pids.update(int(p) for p in procs.read_text().split())
            except OSError:
                continue
    return sorted(pids)


def remove_cgroups() -> list[str]:
    """rmdir the node's cgroups, deepest first; returns what could not be removed."""
    left = []
    for root in cgroup_roots():
        if not root.is_dir():
            continue
        for directory in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts),
                                reverse=True) + [root]:
            for attempt in range(20):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                left.append(os.fspath(directory))
    return left


# -- mounts ------------------------------------------------------------------------------
def mounts_under(paths: list[Path]) -> list[str]:
    """Mount points under any of ``paths``, deepest first."""
    prefixes = [os.path.realpath(p) for p in paths]
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == p or point.startswith(p + "/") for p in prefixes):
            found.append(point)
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def unmount_all(paths: list[Path]) -> list[str]:
    """Unmount everything under ``paths`` (lazily, so a busy mount does not stop the clean-up)."""
    for _ in range(3):
        points = mounts_under(paths)
        if not points:
            return []
        for point in points:
            subprocess.run(["umount", "-l", point], capture_output=True)
    return mounts_under(paths)


# -- network -----------------------------------------------------------------------------
def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise BackendUnavailable(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")
    return result


def link_exists(name: str) -> bool:
    return ip("link", "show", name, check=False).returncode == 0


def make_bridge() -> None:
    """The pod bridge with the node's address, made before the kubelet starts (its --node-ip lives here)."""
    if not link_exists(BRIDGE):
        ip("link", "add", BRIDGE, "type", "bridge")
    prefix = POD_SUBNET.split("/")[1]
    if NODE_IP not in ip("-o", "addr", "show", "dev", BRIDGE).stdout:
        ip("addr", "add", f"{NODE_IP}/{prefix}", "dev", BRIDGE)
    ip("link", "set", BRIDGE, "up")


def remove_network(ip_forward_before: str | None) -> list[str]:
    left = []
    if link_exists(BRIDGE):
        # veths in the bridge go with their pods' namespaces; remove any left over first
        for line in ip("-o", "link", "show", "master", BRIDGE, check=False).stdout.splitlines():
            name = line.split(":")[1].strip().split("@")[0]
            ip("link", "del", name, check=False)
        ip("link", "del", BRIDGE, check=False)
        if link_exists(BRIDGE):
            left.append(f"network device {BRIDGE}")
    if ip_forward_before is not None and IP_FORWARD.read_text().strip() != ip_forward_before:
        IP_FORWARD.write_text(ip_forward_before + "\n")
    return left


def load_overlay() -> None:
    if "overlay" not in Path("/proc/filesystems").read_text():
        subprocess.run(["modprobe", "overlay"], capture_output=True)


def can_lower_oom_score() -> bool:
    """Whether this process holds CAP_SYS_RESOURCE (bit 24), which lowering an OOM score adjustment needs.

    Some sandboxes withhold it even from root; containerd must then clamp the kubelet's negative
    scores (:func:`labkit.node.config.containerd_config`).
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> 24 & 1)
    return False
