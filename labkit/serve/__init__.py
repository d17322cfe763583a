"""``labkit serve``: the simulator behind the Kubernetes API, for real kubectl and the real client.

The simulator runs in wall-clock time (times ``pace``) on 127.0.0.1, answers the REST API
with bearer-token auth, and writes its own kubeconfig (mode 0600; never ``~/.kube/config``).
It says what it is: ``/version`` gitVersion ends in ``-labkit-sim`` and the node is
``labkit-sim-node``. From Python::

    with labkit.serve.serve(k8s_version="1.29", pace=1) as server:
        subprocess.run(["kubectl", "get", "pods"], env={**os.environ, "KUBECONFIG": server.kubeconfig})

Layers: :mod:`.store` (objects, resourceVersions, watches), :mod:`.world` (the simulator's
state as objects), :mod:`.http` (routes, errors, the verbs) with :mod:`.discovery`,
:mod:`.watch`, :mod:`.selectors`, :mod:`.bodies`, :mod:`.tables`, :mod:`.patch`, :mod:`.logs`.
aiohttp is imported only here, never by ``import labkit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import secrets
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import InvalidInput, LabkitError
from ..served import CONTEXT, SIM_SUFFIX, is_served_simulator
from ..versions import DEFAULT_K8S_VERSION, KubeVersion, lab_feature_gates



def default_kubeconfig(env: Mapping[str, str] | None = None) -> Path:
    """Where ``labkit serve`` writes its kubeconfig unless told: the user's cache (``env``
    defaults to ``os.environ``; ``labkit doctor`` looks there too)."""
    from ..paths import cache_dir

    return cache_dir(env) / "serve-kubeconfig.yaml"


def write_kubeconfig(path: Path, url: str, token: str, ca: bytes) -> Path:
    """A kubeconfig for the served simulator, created with mode 0600 (it holds the token)."""
    import base64

    import yaml

    cluster = {"server": url, "certificate-authority-data": base64.b64encode(ca).decode()}
    config = {"apiVersion": "v1", "kind": "Config", "current-context": CONTEXT,
              "clusters": [{"name": CONTEXT, "cluster": cluster}],
              "users": [{"name": CONTEXT, "user": {"token": token}}],
              "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": "default"}}],
              "preferences": {}}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)
        yaml.safe_dump(config, handle, sort_keys=False)
    return path


def running_server(kubeconfig: Path) -> str | None:
    """The URL of the served simulator that ``kubeconfig`` points at, if one answers there (a second
    ``labkit serve`` must not overwrite a running one's kubeconfig); None if the file is absent, not
    labkit's, or its server is gone."""
    import base64
    import json
    import ssl
    import urllib.request

    import yaml

    try:
        config = yaml.safe_load(Path(kubeconfig).read_text())
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == CONTEXT)
        url = cluster["server"]
        context = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    except (OSError, ValueError, TypeError, KeyError, StopIteration, AttributeError, yaml.YAMLError, ssl.SSLError):
        return None
    try:   # /version answers without the token, as a real API server's does
        with urllib.request.urlopen(url + "/version", context=context, timeout=2) as response:
            version = json.load(response).get("gitVersion", "")
    except (OSError, ValueError):
        return None
    # labkit's own context answering: the served simulator, or a real control plane labkit serve runs
    return url if version else None


NEEDS = ("aiohttp", "jsonpatch", "cryptography")
CONTROL_PLANES = ("simulated", "real")


def require_extra() -> None:
    """labkit serve's libraries come with the ``serve`` extra; say so instead of an ImportError."""
    import importlib.util

    def present(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            return False

    missing = [name for name in NEEDS if not present(name)]
    if missing:
        raise LabkitError(f"labkit serve needs {', '.join(missing)}: pip install 'sidecar-lab[serve]' "
                          "(in a checkout: pip install -e '.[serve]'), which also brings a pinned kubectl")


class Server:
    """One served simulator: its loop, its world, its URL and kubeconfig."""

    def __init__(self, k8s_version: str | KubeVersion = DEFAULT_K8S_VERSION, feature_gates: dict[str, bool] | None = None, *,
                 port: int = 0, pace: float = 1.0, kubeconfig: str | os.PathLike | None = None, host: str = "127.0.0.1",
                 seed: int = 0, token: str | None = None, history: int | None = None, names_seed: int | None = None,
                 control_plane: str = "simulated"):
        require_extra()
        self.version = KubeVersion.parse(k8s_version)
        self.feature_gates = lab_feature_gates(self.version, feature_gates)
        self.port = port
        self.pace = pace
        self.host = host
        self.seed = seed
        self.token = token or secrets.token_urlsafe(32)
        self.history = history      # how many writes a watch may resume after (None: the store's default)
        self.names_seed = names_seed  # generated names: random per server unless a seed is given
        self.kubeconfig = Path(kubeconfig) if kubeconfig is not None else default_kubeconfig()
        self.url = ""
        self.loop: asyncio.AbstractEventLoop | None = None
        self.api = None
        self.world = None
        self._runner = None
        self._ticker: asyncio.Task | None = None
        self._stopped: asyncio.Event | None = None
        self.next_wakeup: float | None = None    # wall time the ticker sleeps until (None: until a request)
        if control_plane not in CONTROL_PLANES:
            raise InvalidInput(f"must be one of {', '.join(CONTROL_PLANES)}, got {control_plane!r}", field="--control-plane")
        self.control_plane = control_plane        # "simulated": labkit's API server; "real": docs/serve.md
        self.plane = None                          # the real control plane's processes (control_plane.ControlPlane)
        self.kubelet = None                        # the simulated kubelet under it (kubelet.SimulatedKubelet)

    # -- on the loop ---------------------------------------------------------------------------------
    async def start(self) -> None:
        from aiohttp import web

        from .http import Api
        from .store import Store
        from .world import World

        running = running_server(self.kubeconfig)
        if running is not None:
            raise InvalidInput(f"a served simulator is already running at {running} with this kubeconfig; stop it "
                               "first (Ctrl-C in its terminal), or give this one its own --kubeconfig PATH",
                               source=os.fspath(self.kubeconfig))
        self.loop = asyncio.get_running_loop()
        if self.control_plane == "real":
            try:
                await self._start_under_real_control_plane()
            except BaseException:
                await self.stop()
                raise
            return
        self.world = World(Store() if self.history is None else Store(self.history), self.version, self.feature_gates,
                           pace=self.pace, seed=self.seed, names_seed=self.names_seed)
        # The first admission imports the kubernetes client's models (about a second): do it now,
        # not inside a learner's first kubectl apply.
        from ..sim.api import admit

        admit({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "warm-up"},
               "spec": {"containers": [{"name": "c", "image": "i"}]}}, self.world.behaviour)
        version = self.world.version
        self.api = Api(self.world, self.token, version_info={
            "major": str(version.major), "minor": str(version.minor),
            "gitVersion": f"v{version}{SIM_SUFFIX}", "gitCommit": "", "gitTreeState": "clean",
            "buildDate": "", "goVersion": "", "compiler": "labkit", "platform": "linux/amd64",
            "emulationMajor": str(version.major), "emulationMinor": str(version.minor)})
        app = self.api.app()
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        from .tls import make_certificate, server_context

        cert, key = make_certificate(self.host)
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=server_context(cert, key))
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise self._cannot_listen(exc) from None
        self.port = site._server.sockets[0].getsockname()[1]
        self.url = f"https://{self.host}:{self.port}"
        self.world.put_kubernetes_service(self.port)
        self.ca = cert
        write_kubeconfig(self.kubeconfig, self.url, self.token, cert)
        self._stopped = asyncio.Event()
        self._ticker = asyncio.create_task(self._tick())

    def _cannot_listen(self, exc: OSError) -> InvalidInput:
        return InvalidInput(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
                            + (" (another labkit serve, or another server, has it)" if exc.errno == errno.EADDRINUSE
                               else ""), field="--port")

    async def _start_under_real_control_plane(self) -> None:
        """etcd, kube-apiserver, the controllers and the scheduler (labkit node's builds), and the
        simulated kubelet registered as their node; the kubeconfig is the API server's."""
        import socket

        from .control_plane import ControlPlane
        from .kubelet import SimulatedKubelet
        from .store import Store
        from .world import NODE, World

        if self.port:   # a server already answers on --port: the same one line as without the real control plane
            with socket.socket() as probe:
                probe.settimeout(1.0)
                if probe.connect_ex((self.host, self.port)) == 0:
                    raise self._cannot_listen(OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE)))
        self.plane = ControlPlane(self.version.minor_str, node_name=NODE,
                                  feature_gates=self.feature_gates, port=self.port)
        starting = self.loop.run_in_executor(None, self.plane.start)
        try:
            await asyncio.shield(starting)
        except asyncio.CancelledError:   # Ctrl-C while it starts: let the start stop what it started
            self.plane.stopping = True
            with contextlib.suppress(BaseException):
                await starting
            raise
        except OSError as exc:
            raise LabkitError(f"the control plane could not start: {exc}") from None
        self.world = World(Store(), KubeVersion.parse(self.plane.version), self.feature_gates, pace=self.pace,
                           seed=self.seed, names_seed=self.names_seed)   # the release the plane was built from
        self.kubelet = SimulatedKubelet(self.world, self.plane.url, self.plane.client_ssl(), self.plane.ca,
                                        self.plane.version)
        await self.kubelet.start()
        self.url, self.port, self.ca, self.token = (self.plane.url, self.plane.layout.ports.apiserver, self.plane.ca,
                                                    self.plane.token)
        write_kubeconfig(self.kubeconfig, self.url, self.token, self.ca)

    def describe(self) -> str:
        """What this server is, in one line (printed at start; truthful about what is simulated)."""
        if self.control_plane == "real":
            return (f"labkit's simulated kubelet (a model: no container runs) as node labkit-sim-node under a real "
                    f"control plane {self.plane.version} (etcd, kube-apiserver, kube-controller-manager, "
                    f"kube-scheduler, built by labkit node), pace {self.pace:g}")
        return f"the labkit simulator (Kubernetes v{self.world.version}, simulated, pace {self.pace:g})"

    async def _tick(self) -> None:
        """Advance the simulator to the wall clock; sleep until its next event or a request wakes it."""
        import time

        api = self.api
        while not api.closing:
            api.wake.clear()
            nxt = self.world.advance()
            self.next_wakeup = nxt
            # nothing due: sleep until a request changes something (it sets api.wake)
            delay = None if nxt is None else max(nxt - time.time(), 0.001)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(api.wake.wait(), timeout=delay)

    async def stop(self) -> None:
        if self.kubelet is not None:
            await self.kubelet.stop()
            self.kubelet = None
        if self.plane is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.plane.stop)
            self.plane = None
        if self.api is not None:
            self.api.closing = True
            self.api.wake.set()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._runner is not None:
            await self._runner.cleanup()

    # -- from other threads --------------------------------------------------------------------------
    def call(self, fn, *args: Any) -> Any:
        """Run ``fn(*args)`` on the server's loop (the world is not thread-safe) and return its result."""
        async def run():
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=30)

    def trace(self, namespace: str):
        """The simulator's own trace of ``namespace`` (to compare with what a client recorded)."""
        return self.call(lambda: (self.world.advance(), self.world.trace(namespace))[1])

    @property
    def env(self) -> dict[str, str]:
        """The caller's environment with KUBECONFIG pointing at this server (for subprocesses), and
        kubectl's discovery cache beside that kubeconfig rather than in ~/.kube/cache."""
        return {**os.environ, "KUBECONFIG": os.fspath(self.kubeconfig),
                "KUBECACHEDIR": os.fspath(self.kubeconfig.parent / "kube-cache")}


@contextlib.contextmanager
def serve(k8s_version: str | KubeVersion = DEFAULT_K8S_VERSION, feature_gates: dict[str, bool] | None = None, *, port: int = 0,
          pace: float = 1.0, kubeconfig: str | os.PathLike | None = None, seed: int = 0,
          history: int | None = None, names_seed: int | None = None,
          control_plane: str = "simulated") -> Iterator[Server]:
    """Run a served simulator in a background thread; stopped (nothing left listening, no process
    left running) on exit. ``control_plane="real"``: the simulated kubelet under a real control
    plane (docs/serve.md)."""
    server = Server(k8s_version, feature_gates, port=port, pace=pace, kubeconfig=kubeconfig, seed=seed, names_seed=names_seed,
                    history=history, control_plane=control_plane)
    ready = threading.Event()
    failure: list[BaseException] = []
    loop = asyncio.new_event_loop()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(server.stop())
        loop.close()

    thread = threading.Thread(target=run, name="labkit-serve", daemon=True)
    thread.start()
    ready.wait()
    if failure:
        if isinstance(failure[0], InvalidInput):
            raise failure[0]
        raise LabkitError(f"labkit serve could not start: {failure[0]}") from failure[0]
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


def main(args) -> int:
    """``labkit serve``: serve until Ctrl-C or SIGTERM (also while it starts), then stop all it started."""
    import logging

    from ..sim.cli import parse_gate

    gates = dict(parse_gate(text) for text in args.feature_gates)
    if args.pace <= 0:
        raise InvalidInput(f"must be a positive number, got {args.pace}", field="--pace")
    if not 0 <= args.port <= 65535:
        raise InvalidInput(f"must be a port number (0-65535), got {args.port}", field="--port")
    logging.basicConfig(level=logging.WARNING, format="labkit serve: %(message)s", stream=sys.stderr)
    version, control_plane, why = choose_control_plane(args.control_plane, args.k8s_version)
    server = Server(version, gates or None, port=args.port, pace=args.pace, kubeconfig=args.kubeconfig,
                    control_plane=control_plane)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        starting = asyncio.create_task(server.start())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            print("labkit serve: stopped while starting", flush=True)
            return
        starting.result()        # a failed start has stopped what it started; its error is the message
        print(f"labkit serve: {server.describe()} on {server.url}; Ctrl-C stops it" + (f" ({why})" if why else ""),
              flush=True)
        print(f"export KUBECONFIG={server.kubeconfig}; kubectl get pods -w", flush=True)
        await stopped
        await server.stop()
        print("labkit serve: stopped", flush=True)

    asyncio.run(run())
    return 0


def choose_control_plane(asked: str, k8s_version: str | None) -> tuple[KubeVersion, str, str]:
    """(version, "real" or "simulated", why not real) for ``--control-plane auto|real|simulated``:
    auto takes the real control plane when labkit node's build of that version is here."""
    from ..node.build import available_minors
    from .control_plane import binaries

    if k8s_version is None and asked == "real":     # the newest version whose binaries are here
        built = [m for m in reversed(available_minors()) if binaries(m)[0] is not None]
        k8s_version = built[0] if built else (available_minors() or [DEFAULT_K8S_VERSION])[-1]
    version = KubeVersion.parse(k8s_version or DEFAULT_K8S_VERSION, field="--k8s-version")
    if asked == "simulated":
        return version, "simulated", ""
    folder, why = binaries(version.minor_str)
    if folder is not None:
        return version, "real", ""
    if asked == "real":
        raise InvalidInput(why, field="--control-plane real")
    return version, "simulated", f"no real control plane: {why}"


__all__ = ["Server", "serve", "is_served_simulator", "write_kubeconfig", "SIM_SUFFIX"]
