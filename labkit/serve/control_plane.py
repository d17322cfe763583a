"""A real control plane for ``labkit serve --control-plane real``: etcd, kube-apiserver,
kube-controller-manager and kube-scheduler, the binaries labkit's node build made (docs/node.md).

Only the control plane: no kubelet, no containerd, no network, no root. labkit's simulated kubelet
(:mod:`.kubelet`) registers as its one Node. It runs beside a ``labkit node`` without clashing:
its own folder (a fresh one under labkit's cache, removed at stop), its own free ports, its own
etcd, its own certificates. The components' flags, the certificates and the process handling are
the node's (:mod:`labkit.node.config`, :mod:`labkit.node.pki`, :mod:`labkit.node.host`); see
docs/serve.md, "The real control plane".

Its folder records who owns it (``owner.json``: the ``labkit serve`` process and every component,
each as pid and start time). The components run in sessions of their own, so a ``kill -9`` of
that process leaves them running; the next control plane to start stops them and removes the
folder (:func:`remove_abandoned`), saying so.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import socket
import ssl
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import BackendUnavailable, LabkitError

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
READY_TIMEOUT_S = 120.0
OWNER_FILE = "owner.json"
log = logging.getLogger("labkit.serve")


def binaries(minor: str, cache: Path | None = None) -> tuple[Path | None, str]:
    """(the folder with the control plane's binaries of ``minor``, its Kubernetes version), or
    (None, why not): they are there once ``labkit node up`` (or its build) ran for that minor."""
    from ..paths import cache_dir
    from ..node.build import available_minors, pins

    if minor not in available_minors():
        return None, (f"no control plane is pinned for Kubernetes {minor} (pinned: {', '.join(available_minors()) or 'none'}; "
                      "node/kubernetes-<minor>/go.mod)")
    version = pins(minor).kubernetes
    folder = (cache or cache_dir()) / "node" / "build" / f"kubernetes-{version}"
    missing = [name for name in COMPONENTS if not os.access(folder / name, os.X_OK)]
    if missing:
        return None, (f"the control plane's binaries of Kubernetes {version} are not built here ({', '.join(missing)} "
                      f"missing in {folder}; `labkit node up` builds them)")
    return folder, version


def remove_abandoned(parent: Path) -> list[Path]:
    """Stop the components of every control plane under ``parent`` whose owning process has ended
    without stopping them (killed with SIGKILL, say), and remove their folders; the folders removed.

    A pid counts only with its start time, so a reused pid is never signalled. A folder without an
    owner record is one being made right now (the record is written next) and is left alone."""
    from ..node import host

    removed = []
    for folder in sorted(parent.glob("control-plane-*")):
        try:
            record = json.loads((folder / OWNER_FILE).read_text())
            owner = tuple(record["owner"])
            pids = {name: tuple(started) for name, started in record["components"].items()}
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if host.alive(*owner):
            continue
        for name in reversed(COMPONENTS):   # the controllers first, etcd last, as stop() does
            if name in pids:
                host.stop(*pids[name], grace=5)
        shutil.rmtree(folder, ignore_errors=True)
        log.warning("stopped the control plane a labkit serve (pid %d) left running when it was killed: %s",
                    owner[0], folder)
        removed.append(folder)
    return removed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ControlPlane:
    """One control plane's processes and folder; :meth:`stop` ends every process it started."""

    def __init__(self, minor: str, *, node_name: str, feature_gates: dict[str, bool] | None = None,
                 cache: Path | None = None, port: int = 0):
        from ..paths import cache_dir

        folder, version = binaries(minor, cache)
        if folder is None:
            raise BackendUnavailable(version)
        self.bin = folder
        self.version = version
        self.node_name = node_name
        self.feature_gates = dict(feature_gates or {})
        parent = (cache or cache_dir()) / "serve"
        parent.mkdir(parents=True, exist_ok=True)
        remove_abandoned(parent)
        self.state = Path(tempfile.mkdtemp(prefix="control-plane-", dir=parent))
        self.token = secrets.token_urlsafe(32)
        self.pids: dict[str, tuple[int, int]] = {}
        self._record()
        self.layout = None
        self.port = port            # the API server's (0: a free one)
        self.stopping = False       # set from another thread: a start under way gives up and cleans up

    def _record(self) -> None:
        """Who owns this folder and what it started, rewritten as each component starts (see remove_abandoned)."""
        from ..node import host

        me = os.getpid()
        record = {"owner": [me, host.process_start_time(me) or 0], "components": self.pids}
        temporary = self.state / (OWNER_FILE + ".new")
        temporary.write_text(json.dumps(record))
        temporary.replace(self.state / OWNER_FILE)

    @property
    def url(self) -> str:
        return self.layout.server

    @property
    def ca(self) -> bytes:
        return (self.layout.pki / "ca.crt").read_bytes()

    def client_ssl(self) -> ssl.SSLContext:
        """TLS as the admin (system:masters): what the simulated kubelet talks to the API server with."""
        pki = self.layout.pki
        context = ssl.create_default_context(cafile=os.fspath(pki / "ca.crt"))
        context.load_cert_chain(os.fspath(pki / "admin.crt"), os.fspath(pki / "admin.key"))
        return context

    def start(self, say=lambda text: None) -> None:
        """Start etcd, then the API server (until /readyz), then the controllers and the scheduler.
        On any failure everything started is stopped again and the error names the log."""
        try:
            self._start(say)
        except BaseException:
            self.stop()
            raise

    def _start(self, say) -> None:
        from ..node import config, host
        from ..node.pki import ensure_pki

        ports = config.Ports(apiserver=self.port or free_port(), etcd=free_port(), etcd_peer=free_port(), registry=0, kubelet=0,
                             kubelet_healthz=0, controller_manager=free_port(), scheduler=free_port())
        layout = self.layout = config.Layout(state=self.state, run=self.state / "run", bin=self.bin, ports=ports)
        ensure_pki(layout.pki, self.node_name, "127.0.0.1", config.SERVICE_IP)
        layout.etc.mkdir(parents=True, exist_ok=True)
        for stem in ("controller-manager", "scheduler"):
            (layout.etc / f"{stem}.kubeconfig").write_text(config.kubeconfig(layout, stem))
        (layout.etc / "scheduler.yaml").write_text(config.scheduler_config(layout))
        tokens = layout.etc / "tokens.csv"    # the learner's kubeconfig: a bearer token, as labkit serve's own
        tokens.touch(mode=0o600)
        tokens.write_text(f'{self.token},labkit,labkit,"system:masters"\n')
        argv = config.commands(layout, self.feature_gates)
        argv["kube-apiserver"] += [f"--token-auth-file={tokens}"]
        for name in COMPONENTS:
            if self.stopping:
                raise LabkitError("stopped while starting")
            self.pids[name] = host.start(name, argv[name], layout.logs)
            self._record()
            if name == "etcd":
                self._wait(lambda: host.http_ok(f"http://127.0.0.1:{ports.etcd}/health"), "etcd")
            elif name == "kube-apiserver":
                self._wait(self._readyz, "kube-apiserver /readyz")
        say(f"control plane {self.version} up (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) "
            f"in {self.state}")

    def _readyz(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/readyz", context=self.client_ssl(), timeout=5) as answer:
                return answer.status == 200
        except (urllib.error.URLError, OSError, ssl.SSLError):
            return False

    def _wait(self, ready, what: str) -> None:
        from ..node import host

        host.wait_until(ready, what, timeout=READY_TIMEOUT_S, pids=lambda: self.pids, logs=self.layout.logs,
                        stopping=lambda: self.stopping)

    def alive(self) -> dict[str, bool]:
        from ..node import host

        return {name: host.alive(pid, began) for name, (pid, began) in self.pids.items()}

    def stop(self) -> None:
        """Stop every process it started (the controllers first, etcd last) and remove its folder."""
        from ..node import host

        for name in reversed(COMPONENTS):
            started = self.pids.pop(name, None)
            if started is not None:
                host.stop(*started, grace=5)
        shutil.rmtree(self.state, ignore_errors=True)

