"""``labkit node``: a real single-node Kubernetes on this Linux machine, built from upstream source.

It runs as upstream's ``hack/local-up-cluster.sh`` runs one: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and the kubelet as local processes, built from the
``k8s.io/kubernetes`` Go module at a release tag; containerd and runc as the runtime; a CNI
bridge whose pod network never leaves the machine; and a local registry that containerd uses
as the mirror of every registry, holding images built here, each labelled with what it really
is. It needs Linux and root; the first build takes a while and is cached per version.
How it is built, configured and cleaned up: docs/node.md.

    node = Node("1.37")
    node.up()                 # builds (cached), starts, waits for the node to be Ready
    print(node.kubeconfig)    # the admin kubeconfig; kubectl --kubeconfig ... get nodes -o wide
    node.down()               # stops everything and removes what it made

This is the ground truth of the repository's CI: the simulator (``labkit fidelity``), the
served API and the recorder are measured against it.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailable, LabkitError
from ..paths import cache_dir

READY_TIMEOUT_S = 180.0
STATE_FILE = "node.json"
RUN_DIR = Path("/run/labkit-node")
START_ORDER = ("registry", "containerd", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
               "kubelet")


def default_minor() -> str:
    """The newest minor a node is pinned for."""
    from .build import available_minors

    minors = available_minors()
    if not minors:
        raise BackendUnavailable("no node is pinned in this checkout (node/kubernetes-<minor>/go.mod)")
    return minors[-1]


@dataclass
class Status:
    """What ``labkit node status`` reports."""

    running: bool
    kubeconfig: str | None
    version: dict[str, str]
    components: dict[str, bool]
    images: list[dict[str, str]]
    unavailable_images: list[str]
    why: str = ""

    def text(self) -> str:
        lines = [f"node: {'running' if self.running else 'not running'}{' (' + self.why + ')' if self.why else ''}"]
        if self.kubeconfig:
            lines.append(f"kubeconfig: {self.kubeconfig}")
        for name, value in self.version.items():
            lines.append(f"{name}: {value}")
        if self.components:
            lines.append("processes: " + ", ".join(f"{n} {'up' if ok else 'DOWN'}" for n, ok in self.components.items()))
        if self.images:
            lines.append("images (local registry, built here):")
            lines += [f"  {i['ref']}  {i['what']}" for i in self.images]
        if self.unavailable_images:
            lines.append("images the lab names that this node cannot build (pods using them stay in ErrImagePull):")
            lines += [f"  {ref}" for ref in self.unavailable_images]
        return "\n".join(lines)


class Node:
    """One node of Kubernetes ``k8s_version`` (a minor this repository pins, e.g. ``"1.37"``)."""

    def __init__(self, k8s_version: str | None = None, *, cache: str | os.PathLike | None = None,
                 feature_gates: dict[str, bool] | None = None, quiet: bool = False):
        from ..versions import KubeVersion
        from .build import pins
        from .config import Layout

        minor = default_minor() if k8s_version is None else f"{KubeVersion.parse(k8s_version).minor_str}"
        self.pins = pins(minor)
        self.minor = minor
        self.quiet = quiet
        self.feature_gates = dict(feature_gates or {})
        self.cache = Path(cache) if cache is not None else cache_dir()
        self.layout = Layout(state=self.cache / "node" / "state", run=RUN_DIR,
                             bin=self.cache / "node" / "build" / f"kubernetes-{self.pins.kubernetes}")

    # -- what it is -------------------------------------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        return self.layout.kubeconfig

    def describe(self) -> str:
        """How a trace names this backend: what really ran."""
        return (f"a Kubernetes node built from upstream source (kubelet {self.pins.kubernetes}, "
                f"containerd {self.pins.containerd})")

    def _state(self) -> dict[str, Any] | None:
        path = self.layout.state / STATE_FILE
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def _write_state(self, state: dict[str, Any]) -> None:
        self.layout.state.mkdir(parents=True, exist_ok=True)
        (self.layout.state / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")

    def _say(self, message: str) -> None:
        if not self.quiet:
            print(f"labkit node: {message}", file=sys.stderr, flush=True)

    # -- up ------------------------------------------------------------------------------------
    def running(self) -> bool:
        """True when this node's processes all run and its API server answers."""
        from . import host

        state = self._state()
        if not state or state.get("kubernetes") != self.pins.kubernetes:
            return False
        if not all(host.alive(pid, started) for pid, started in state.get("pids", {}).values()):
            return False
        return self._api_ready()

    def up(self, *, ready_timeout: float = READY_TIMEOUT_S) -> bool:
        """Build (cached), start and wait until the node is Ready; True if it started, False if it was running.

        A failed start or a Ctrl-C removes everything it had made before the error goes on.
        """
        from . import host

        found = host.problems()
        if found:
            raise BackendUnavailable("labkit node cannot run here: " + "; ".join(found))
        if self.running():
            self._say(f"already running ({self.describe()}); kubeconfig {self.kubeconfig}")
            return False
        other = self._state()
        if other:
            self._say("a node that is not (fully) running was left behind: removing it first")
            self.down()
        try:
            self._start(ready_timeout)
        except BaseException:
            self._say("start failed: removing what it made (logs were in the node's folder and are printed above)")
            self._print_logs_tail()
            self.down(keep_logs=True)
            raise
        return True

    def _start(self, ready_timeout: float) -> None:
        from . import build, config, host
        from .images import Registry

        built = build.build_all(self.minor, self.cache, quiet=self.quiet)
        pause_tag = build.pause_tag(built.kubernetes_source)
        layout = self.layout
        self._check_ports()
        for directory in (layout.state, layout.etc / "cni", layout.etc / "certs.d", layout.logs, layout.run):
            directory.mkdir(parents=True, exist_ok=True)
        state: dict[str, Any] = {"kubernetes": self.pins.kubernetes, "pids": {},
                                 "ip_forward_before": host.IP_FORWARD.read_text().strip(),
                                 "run_dir_existed": Path("/run/containerd").exists(),
                                 "feature_gates": self.feature_gates, "started_at": time.time()}
        self._write_state(state)

        def started(name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
            state["pids"][name] = host.start(name, argv, layout.logs, env)
            self._write_state(state)

        # certificates, kubeconfigs, configs
        config_files = {
            "cni/10-labkit-node.conflist": config.cni_conflist(),
            "containerd.toml": config.containerd_config(layout, f"registry.k8s.io/pause:{pause_tag}",
                                                        built.runtime_bin / "runc",
                                                        restrict_oom_score_adj=not host.can_lower_oom_score()),
            "kubelet.yaml": config.kubelet_config(layout, self.feature_gates),
            "scheduler.yaml": config.scheduler_config(layout),
            "registry.yml": config.registry_config(layout, self.cache / "node" / "registry"),
            "kubelet.kubeconfig": config.kubeconfig(layout, "kubelet"),
            "controller-manager.kubeconfig": config.kubeconfig(layout, "controller-manager"),
            "scheduler.kubeconfig": config.kubeconfig(layout, "scheduler"),
        }
        for registry in config.MIRRORED_REGISTRIES:
            config_files[f"certs.d/{registry}/hosts.toml"] = config.hosts_toml(layout)
        from .pki import ensure_pki

        ensure_pki(layout.pki, config.NODE_NAME, config.NODE_IP, config.SERVICE_IP)
        for name, text in config_files.items():
            path = layout.etc / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        layout.kubeconfig.touch(mode=0o600)
        layout.kubeconfig.write_text(config.kubeconfig(layout, "admin"))

        # the registry and the images
        started("registry", ["docker-registry", "serve", os.fspath(layout.etc / "registry.yml")])
        self._wait(lambda: host.http_ok(f"http://{layout.registry}/v2/"), 30, "the local registry")
        registry = Registry(layout.registry)
        for image in self._images(built.kubernetes_source, pause=built.pause, agnhost=built.bin / "agnhost",
                                  static_web_server=built.static_web_server):
            registry.push(image)
        self._say("images pushed to the local registry")

        # host: overlay, the bridge, the node's cgroup root
        host.load_overlay()
        host.make_bridge()
        host.make_cgroup_roots()

        path_env = {**os.environ, "PATH": f"{built.runtime_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
        started("containerd", [os.fspath(built.runtime_bin / "containerd"), "--config",
                               os.fspath(layout.etc / "containerd.toml")], path_env)
        self._wait(lambda: layout.containerd_socket.exists(), 30, "containerd's socket")
        commands = config.commands(layout, self.feature_gates)
        started("etcd", commands["etcd"])
        self._wait(lambda: host.http_ok(f"http://127.0.0.1:{layout.ports.etcd}/health"), 60, "etcd")
        started("kube-apiserver", commands["kube-apiserver"])
        self._wait(self._api_ready, 120, "kube-apiserver /readyz")
        started("kube-controller-manager", commands["kube-controller-manager"])
        started("kube-scheduler", commands["kube-scheduler"])
        started("kubelet", commands["kubelet"], path_env)
        self._wait(self._node_ready, ready_timeout, f"node {config.NODE_NAME} Ready")
        self._wait(lambda: self._get("/api/v1/namespaces/default/serviceaccounts/default") is not None, 60,
                   "the default ServiceAccount")
        self._say(f"Ready: {self.describe()}; kubeconfig {self.kubeconfig}")

    def _check_ports(self) -> None:
        for name, port in self.layout.ports.all().items():
            with socket.socket() as probe:
                probe.settimeout(0.2)
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    raise BackendUnavailable(f"port {port} on 127.0.0.1 ({name}) is already in use: is another "
                                             "node or cluster running? `labkit node down` stops labkit's")

    def _wait(self, ready, timeout: float, what: str) -> None:
        from . import host

        took = host.wait_until(ready, what, timeout=timeout, logs=self.layout.logs,
                               pids=lambda: (self._state() or {}).get("pids", {}))
        self._say(f"{what}: ok ({took:.1f} s)")

    def _print_logs_tail(self) -> None:
        from . import host

        if self.quiet:
            return
        for name in START_ORDER:
            if (self.layout.logs / f"{name}.log").exists():
                print(f"--- {name} (last lines)\n{host.log_tail(self.layout.logs, name, 8)}", file=sys.stderr)

    # -- talking to it --------------------------------------------------------------------------
    def _ssl(self) -> ssl.SSLContext:
        pki = self.layout.pki
        context = ssl.create_default_context(cafile=os.fspath(pki / "ca.crt"))
        context.load_cert_chain(os.fspath(pki / "admin.crt"), os.fspath(pki / "admin.key"))
        return context

    def _get(self, path: str) -> dict | None:
        try:
            with urllib.request.urlopen(self.layout.server + path, context=self._ssl(), timeout=5) as answer:
                return json.loads(answer.read())
        except (urllib.error.URLError, OSError, ValueError, ssl.SSLError):
            return None

    def _api_ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.layout.server + "/readyz", context=self._ssl(), timeout=5) as answer:
                return answer.status == 200
        except (urllib.error.URLError, OSError, ssl.SSLError):
            return False

    def _node_ready(self) -> bool:
        from .config import NODE_NAME

        node = self._get(f"/api/v1/nodes/{NODE_NAME}")
        conditions = ((node or {}).get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    # -- down ------------------------------------------------------------------------------------
    def down(self, *, keep_logs: bool = False) -> list[str]:
        """Stop every process and remove every mount, network device and cgroup the node made.

        Safe to call at any time, also after a failed start or a crash: processes are found by
        their cgroup and their binary as well as by the PIDs written down. Returns what could not
        be removed (empty when all is clean).
        """
        import shutil

        from . import host

        state = self._state() or {}
        pids = state.get("pids", {})
        if "kubelet" in pids:  # first, so that it restarts nothing
            host.stop(*pids["kubelet"], grace=5)
        host.kill_all(host.cgroup_processes())  # the pods' processes
        runtime_bins = list((self.cache / "node" / "build").glob("runtime-*/*"))
        kube_bins = list((self.cache / "node" / "build").glob("kubernetes-*/*"))
        host.kill_all([pid for pid in host.processes_running(runtime_bins) if pid not in
                       {p for p, _ in pids.values()}])  # shims
        for name in reversed(START_ORDER):
            if name in pids and name != "kubelet":
                host.stop(*pids[name], grace=10)
        host.kill_all(host.processes_running(runtime_bins + kube_bins))  # anything a crash left behind
        left = host.unmount_all([self.layout.state, self.layout.run])
        left += host.remove_network(state.get("ip_forward_before"))
        left += host.remove_cgroups()
        shutil.rmtree(self.layout.run, ignore_errors=True)
        if state and not state.get("run_dir_existed", True):
            shutil.rmtree("/run/containerd", ignore_errors=True)  # the shims' sockets (containerd's fixed path)
        if not left:
            logs = self.layout.logs
            for entry in self.layout.state.iterdir() if self.layout.state.exists() else []:
                if keep_logs and entry == logs:
                    continue
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink()
        return left

    # -- status ----------------------------------------------------------------------------------
    def status(self) -> Status:
        from . import host

        state = self._state()
        components = {}
        if state:
            components = {name: host.alive(pid, started) for name, (pid, started) in state.get("pids", {}).items()}
        running = self.running()
        built, unavailable = self.images()
        return Status(running=running, kubeconfig=os.fspath(self.kubeconfig) if running else None,
                      version={"kubernetes": self.pins.kubernetes, "etcd": self.pins.etcd,
                               "containerd": self.pins.containerd, "runc": self.pins.runc},
                      components=components, images=built, unavailable_images=unavailable,
                      why="" if running or state else "`labkit node up` starts it")

    def images(self) -> tuple[list[dict[str, str]], list[str]]:
        """(images the node builds, with what each is; images the lab names that it cannot build)."""
        known = {}
        try:
            from . import build

            source = build.module_source("k8s.io/kubernetes", self.pins.kubernetes, self.pins.module_dir)
            for image in self._images(source, pause=Path("pause"), agnhost=Path("agnhost"),
                                      static_web_server=Path("sws")):
                for ref in image.refs:
                    known[ref] = image.description
        except LabkitError:
            pass
        return ([{"ref": ref, "what": what} for ref, what in known.items()],
                sorted(lab_images() - {repository(ref) for ref in known}))

    def _images(self, kubernetes_source: Path, *, pause: Path, agnhost: Path, static_web_server: Path) -> list:
        """The node's images (labkit.node.images), from these built files, at this kubernetes source's tags."""
        from . import build
        from .images import bash_version, busybox_version, images

        return images(pause=pause, pause_tag=build.pause_tag(kubernetes_source), agnhost=agnhost,
                      agnhost_tag=agnhost_tag(kubernetes_source), static_web_server=static_web_server,
                      static_web_server_version=build.STATIC_WEB_SERVER_VERSION, kubernetes=self.pins.kubernetes,
                      busybox_version=busybox_version(), bash_version=bash_version())


def why_not_running() -> str | None:
    """Why labkit's node cannot be used now (None when one runs): what this machine lacks, or how to
    start it. Tests skip with this reason; `labkit doctor` says it."""
    from .host import problems

    found = problems()
    if found:
        return "labkit node cannot run here: " + "; ".join(found)
    try:
        if Node().running():
            return None
    except LabkitError as exc:
        return str(exc)
    return "labkit's real node is not running: `labkit node up` starts it (.ci/run does)"


def agnhost_tag(kubernetes_source: Path) -> str:
    """agnhost's version at this Kubernetes tag (test/images/agnhost/VERSION)."""
    return (kubernetes_source / "test" / "images" / "agnhost" / "VERSION").read_text().strip()


def repository(ref: str) -> str:
    """An image's repository as the image table names it: no registry host, no ``library/``, no tag."""
    name = ref.split("@", 1)[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        name = rest
    return name.removeprefix("library/")


def lab_images() -> set[str]:
    """Every image repository the lab's image table knows (labkit/data/images.yaml), first name of each row."""
    from importlib import resources

    import yaml

    table = yaml.safe_load(resources.files("labkit").joinpath("data/images.yaml").read_text())
    return {row["names"][0] for row in table["images"] if row.get("names")}
