"""The kind backend: a local Kubernetes cluster in Docker, made for the lab and removed after.

``labkit up`` / :func:`create_cluster` create (or reuse) a kind cluster whose config comes
from the version table (:data:`labkit.versions.KIND_NODE_IMAGES`): the node image pinned by
the digest that the *installed* kind release lists, and the ``SidecarContainers`` gate only
where it must or may be set (on for 1.28, where sidecars are alpha; never from 1.33, where it
is locked on, nor from 1.37, which removed it and where setting it breaks the kubelet). The cluster gets labkit's
own kubeconfig file (``~/.cache/labkit/clusters/NAME/kubeconfig``), passed to kind and
kubectl explicitly; the user's ``~/.kube/config`` is never touched.

labkit deletes only clusters it created: a marker file next to the kubeconfig says so, and
a kind cluster of the same name without it is left alone. A half-made cluster is deleted
on error and on Ctrl-C; kind's known transient start failures are retried once.

>>> print(render_config(KubeVersion.parse("1.28"), kind_release="v0.20.0"), end="")
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
featureGates:
  SidecarContainers: true
nodes:
- role: control-plane
  image: kindest/node:v1.28.0@sha256:b7a4cad12c197af3ba43202d3efe03246b3f0793f162afb40a33c923952d5b31
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .cluster import ClusterLab
from .errors import BackendUnavailable, InvalidInput, LabkitError, ToolError, WaitTimeout
from .kubectl import Kubectl, Runner, run_tool, tool_env
from .objects import condition_true
from .progress import progress
from .refs import show_command
from .tools import check_docker, check_kind, node_image
from .versions import (DEFAULT_K8S_VERSION, KIND_NODE_IMAGES, OTHER_GATES, SIDECAR_GATE, KubeVersion, behaviour,
                       gate_default, lab_feature_gates, recommended_kind_release)

DEFAULT_CLUSTER_NAME = "sidecar-lab"
# kind: names match ^[a-z0-9.-]+$ (pkg/internal/apis/config/validate.go) and are at most 50
# characters, since "-control-plane" is appended to make the node's host name.
CLUSTER_NAME_MAX = 50
_NAME_RE = re.compile(r"^[a-z0-9.-]+$")
# kind create failures that a second try usually fixes (host pressure, parallel CI jobs):
# the node's systemd missing its boot deadline, kubeadm or kind timing out waiting for the
# control plane, etcd timing out.
TRANSIENT_CREATE_ERRORS = re.compile(
    r"could not find a log line that matches|timed out waiting for|etcdserver: request timed out",
    re.IGNORECASE)
CREATE_TIMEOUT_S = 900.0
MARKER = "cluster.json"


def kind_feature_gates(version: KubeVersion, feature_gates: dict[str, bool] | None = None) -> dict[str, bool]:
    """The gates to write into the kind config: SidecarContainers only where it changes something.

    It is written when its value differs from the version's default and the minor is below
    1.33 (1.28: needed to turn sidecars on; 1.29-1.32: allowed, to turn them off). From 1.33
    the gate is locked on (setting it only adds a deprecation warning) and 1.37 removed it.
    ``feature_gates=None`` means labkit's default for the version (on in 1.28).
    """
    gates = lab_feature_gates(version, feature_gates)
    stage = behaviour(version, gates).sidecar_gate  # unknown gates, a removed gate, false on GA: InvalidInput
    result = {}
    if SIDECAR_GATE in gates and stage in ("alpha", "beta") and gates[SIDECAR_GATE] != gate_default(version.minor):
        result[SIDECAR_GATE] = bool(gates[SIDECAR_GATE])
    # Other modelled gates (ContainerStopSignals) are written as given: kind sets featureGates
    # on every component, the API server and the kubelet both need it.
    result.update({name: bool(value) for name, value in gates.items() if name in OTHER_GATES})
    return result


def render_config(version: KubeVersion, *, kind_release: str | None = None, image: str | None = None,
                  feature_gates: dict[str, bool] | None = None) -> str:
    """The kind cluster config (YAML) for a version: one control-plane node, image pinned, gates as needed."""
    import yaml

    if image is None:
        release = kind_release or recommended_kind_release(version)
        if release is None:
            raise BackendUnavailable(f"no kind release in labkit's table lists Kubernetes {version.minor_str}")
        image = node_image(version, release)
    config: dict[str, Any] = {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4"}
    gates = kind_feature_gates(version, feature_gates)
    if gates:
        config["featureGates"] = gates
    config["nodes"] = [{"role": "control-plane", "image": image}]
    return yaml.safe_dump(config, sort_keys=False)


def validate_cluster_name(name: str, *, field: str = "cluster_name") -> str:
    """kind's rule for cluster names, checked before anything runs."""
    if not isinstance(name, str) or not name:
        raise InvalidInput("a cluster name must not be empty", field=field)
    if not _NAME_RE.match(name):
        raise InvalidInput(f"invalid kind cluster name {name!r}: use only lowercase letters, digits, '.' and '-' "
                           "(kind's rule ^[a-z0-9.-]+$)", field=field)
    if len(name) > CLUSTER_NAME_MAX:
        raise InvalidInput(f"kind cluster name {name!r} is {len(name)} characters long; kind allows at most "
                           f"{CLUSTER_NAME_MAX}", field=field)
    return name


# -- where labkit keeps its files ------------------------------------------------------
def state_dir(env: dict[str, str] | None = None) -> Path:
    """labkit's own folder: ``$XDG_CACHE_HOME/labkit`` or ``~/.cache/labkit`` (:func:`labkit.paths.cache_dir`)."""
    from .paths import cache_dir

    return cache_dir(env)


class KindCluster:
    """One kind cluster named ``name`` for ``k8s_version``; nothing runs until a method is called.

    ``runner`` runs every command (tests inject one that records argv), ``sleep`` waits
    between retries and polls, ``state`` is labkit's folder (default :func:`state_dir`).
    """

    def __init__(self, name: str = DEFAULT_CLUSTER_NAME, k8s_version: str | KubeVersion = DEFAULT_K8S_VERSION, *,
                 feature_gates: dict[str, bool] | None = None, image: str | None = None,
                 runner: Runner | None = None, quiet: bool = False, state: str | os.PathLike | None = None,
                 keep_failed: bool = False, ready_timeout: float = 300.0, retry_delay: float = 10.0,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        self.name = validate_cluster_name(name)
        self.version = KubeVersion.parse(k8s_version)
        self.feature_gates = lab_feature_gates(self.version, feature_gates)
        behaviour(self.version, self.feature_gates)
        self.image = image
        self.runner = runner
        self.quiet = quiet
        self.keep_failed = keep_failed
        self.ready_timeout = ready_timeout
        self.retry_delay = retry_delay
        self.sleep = sleep
        self.clock = clock
        self.dir = Path(state) / "clusters" / self.name if state is not None else state_dir() / "clusters" / self.name
        self.kind_release: str | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def config_path(self) -> Path:
        return self.dir / "kind-config.yaml"

    @property
    def context(self) -> str:
        return f"kind-{self.name}"

    # -- commands -------------------------------------------------------------------
    def _kind(self, args: list[str], *, timeout: float = 120.0, show: bool = False):
        argv = ["kind", *args]
        if show and not self.quiet:
            show_command(argv)
        return run_tool(argv, env=tool_env(self.kubeconfig), timeout=timeout, runner=self.runner)

    def create_argv(self) -> list[str]:
        argv = ["kind", "create", "cluster", "--name", self.name, "--config", str(self.config_path),
                "--kubeconfig", str(self.kubeconfig)]
        if self.keep_failed:
            argv.append("--retain")
        return argv

    def preflight(self, *, image: bool = True) -> str:
        """Fail fast, before touching anything, unless a Docker engine, kind and (``image``) a node image are there."""
        docker = check_docker(self.runner)
        if not docker.usable:
            what = "no Docker engine" if docker.found else "no Docker"
            raise BackendUnavailable(f"{what}: {docker.detail}\nFix: {docker.fix}\n"
                                     "(the simulator needs no Docker: `labkit run --backend sim`)")
        kind = check_kind(self.runner)
        if not kind.usable:
            raise BackendUnavailable(f"kind is not usable: {kind.detail}\nFix: {kind.fix}")
        self.kind_release = kind.version
        if image and self.image is None:
            self.image = node_image(self.version, kind.version)
        return kind.version

    def config_text(self) -> str:
        return render_config(self.version, kind_release=self.kind_release, image=self.image,
                             feature_gates=self.feature_gates)

    def clusters(self) -> list[str]:
        """``kind get clusters`` (it prints 'No kind clusters found.' on stderr when empty)."""
        out = self._kind(["get", "clusters"], timeout=60).stdout
        return [line.strip() for line in out.splitlines() if line.strip()]

    def marker(self) -> dict | None:
        try:
            return json.loads((self.dir / MARKER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _write_marker(self, status: str) -> None:
        data = {"name": self.name, "k8s_version": self.version.minor_str, "image": self.image,
                "feature_gates": self.feature_gates, "kind_release": self.kind_release, "status": status,
                "created_by": "labkit", "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (self.dir / MARKER).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")

    def _forget(self) -> None:
        for path in (self.dir / MARKER, self.kubeconfig, self.config_path):
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        try:
            self.dir.rmdir()
        except OSError:
            pass

    # -- lifecycle ------------------------------------------------------------------
    def ensure(self) -> bool:
        """Create the cluster, or reuse the one labkit made earlier; True when it was created now.

        A cluster labkit made is reused after a kind upgrade too, even when the new release lists
        no image for its version: what counts is the version its node runs.
        """
        self.preflight(image=False)
        no_image = None
        if self.image is None:
            try:
                self.image = node_image(self.version, self.kind_release)
            except BackendUnavailable as exc:  # fatal only if a cluster must be made
                no_image = exc
        existing = self.name in self.clusters()
        marker = self.marker()
        if existing:
            if marker is None:
                raise BackendUnavailable(
                    f"a kind cluster named {self.name!r} exists but labkit did not create it, so labkit will "
                    f"neither use nor delete it.\nFix: choose another name (`--name`, cluster_name=) or delete it "
                    f"yourself with `kind delete cluster --name {self.name}`")
            if marker.get("status") == "ready":
                self._check_reusable(marker)
                self._say(f"reusing kind cluster {self.name!r} (Kubernetes {marker.get('k8s_version')}, "
                          f"made by labkit earlier)")
                self._kind(["export", "kubeconfig", "--name", self.name, "--kubeconfig", str(self.kubeconfig)])
                self._check_node_version(self.wait_ready())
                return False
            self._say(f"kind cluster {self.name!r} was left half-made by an earlier run: deleting it first")
            self.delete()
        elif marker is not None:
            self._forget()  # the cluster was deleted behind labkit's back
        if no_image is not None:
            raise no_image
        self.create()
        return True

    def _check_reusable(self, marker: dict) -> None:
        asked = {"k8s_version": self.version.minor_str, "feature_gates": self.feature_gates}
        had = {"k8s_version": marker.get("k8s_version"), "feature_gates": marker.get("feature_gates") or {}}
        if asked != had:
            raise BackendUnavailable(
                f"kind cluster {self.name!r} runs Kubernetes {had['k8s_version']} with gates {had['feature_gates']}, "
                f"but Kubernetes {asked['k8s_version']} with gates {asked['feature_gates']} was asked for.\n"
                f"Fix: `labkit down --name {self.name}` first, or use another cluster name")

    def _check_node_version(self, nodes: list[dict]) -> None:
        """The node's kubelet (``status.nodeInfo.kubeletVersion``) must run the minor asked for."""
        running = sorted({_node_minor(node) for node in nodes})
        if running != [self.version.minor_str]:
            raise BackendUnavailable(
                f"kind cluster {self.name!r} has nodes running Kubernetes {', '.join(running)}, but "
                f"{self.version.minor_str} was asked for.\nFix: `labkit down --name {self.name}` first, or use "
                "another cluster name")

    def create(self) -> None:
        """Make the cluster (retrying once on a known transient failure) and wait for the node."""
        if self.kind_release is None:
            self.preflight()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text(), encoding="utf-8")
        self._write_marker("creating")
        try:
            self._create_with_retry()
            self.wait_ready()
            # only now: a run killed while waiting leaves "creating", and the next run starts afresh
            self._write_marker("ready")
        except BaseException as exc:  # error or Ctrl-C: take the half-made cluster away
            if self.keep_failed:
                self._say(f"kept the failed cluster {self.name!r} for debugging (`kind export logs --name {self.name}`)")
            else:
                self._cleanup_after(exc)
            raise

    def _cleanup_after(self, exc: BaseException) -> None:
        why = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        self._say(f"creating kind cluster {self.name!r} {why}: deleting what was made")
        try:
            self.delete()
        except LabkitError as cleanup:  # report, but keep the original error
            print(f"labkit: could not delete kind cluster {self.name!r}: {cleanup}", file=sys.stderr)

    def _create_with_retry(self) -> None:
        argv = self.create_argv()
        if not self.quiet:
            show_command(argv)
        for attempt in (1, 2):
            try:
                with progress(desc=f"creating kind cluster {self.name} (Kubernetes {self.version.minor_str})",
                              quiet=self.quiet):
                    run_tool(argv, env=tool_env(self.kubeconfig), timeout=CREATE_TIMEOUT_S, runner=self.runner)
                return
            except ToolError as exc:
                transient = TRANSIENT_CREATE_ERRORS.search(f"{exc.stdout}\n{exc.stderr}")
                if attempt == 2 or not transient:
                    raise
                self._say(f"kind create failed with a known transient error ({transient.group(0)!r}); "
                          f"deleting and trying once more in {self.retry_delay:g}s")
                self._delete_quietly()
                self.sleep(self.retry_delay)

    def _delete_quietly(self) -> None:
        try:
            self._kind(["delete", "cluster", "--name", self.name, "--kubeconfig", str(self.kubeconfig)])
        except LabkitError:
            pass

    def delete(self) -> None:
        """``kind delete cluster`` and forget labkit's files for it."""
        self._kind(["delete", "cluster", "--name", self.name, "--kubeconfig", str(self.kubeconfig)],
                   timeout=300, show=True)
        self._forget()

    def wait_ready(self) -> list[dict]:
        """Until every node reports Ready (``kubectl wait --for=condition=Ready node --all``); returns the nodes."""
        kubectl = Kubectl(self.kubeconfig, self.context, runner=self.runner, quiet=True)
        if not self.quiet:
            show_command(["kubectl", "wait", "--for=condition=Ready", "node", "--all",
                          f"--timeout={self.ready_timeout:g}s"])
        deadline = self.clock() + self.ready_timeout
        nodes: list[dict] = []
        with progress(total=None, desc="waiting for the node to be Ready", quiet=self.quiet) as bar:
            while True:
                data = kubectl.json(["get", "nodes"], namespaced=False) or {}
                nodes = data.get("items", [])
                ready = [n for n in nodes if condition_true((n.get("status") or {}).get("conditions"), "Ready")]
                if nodes and len(ready) == len(nodes):
                    bar.update(len(ready))
                    return nodes
                if self.clock() >= deadline:
                    break
                self.sleep(1.0)
        if not nodes:
            raise WaitTimeout(f"kind cluster {self.name!r}: no node registered after {self.ready_timeout:g}s")
        raise WaitTimeout(f"kind cluster {self.name!r}: node not Ready after {self.ready_timeout:g}s\n"
                          + "\n".join(_node_text(n) for n in nodes))

    def _say(self, message: str) -> None:
        if not self.quiet:
            print(f"labkit: {message}", file=sys.stderr, flush=True)


def _node_minor(node: dict) -> str:
    """``v1.29.14`` (or ``v1.37.0-rc.1``) -> ``1.29``, from the node's own report."""
    version = ((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion") or ""
    match = re.match(r"v?(\d+)\.(\d+)", version)
    return f"{match.group(1)}.{match.group(2)}" if match else f"unknown ({version!r})"


def _node_text(node: dict) -> str:
    conditions = "; ".join(f"{c.get('type')}={c.get('status')} ({c.get('reason', '')}: {c.get('message', '')})"
                           for c in (node.get("status") or {}).get("conditions") or [])
    return f"node {(node.get('metadata') or {}).get('name')}: {conditions}"


# -- the functions labkit run and the CLI use -------------------------------------------
def print_config(k8s_version: str, name: str = DEFAULT_CLUSTER_NAME, *, image: str | None = None,
                 runner: Runner | None = None) -> str:
    """``labkit up --print-config``: the config for the installed kind (or the release to install), no Docker needed."""
    validate_cluster_name(name, field="--name")
    version = KubeVersion.parse(k8s_version, field="--k8s-version")
    installed = check_kind(runner)
    release = installed.version if installed.usable else None
    note = ""
    if image is None and (release is None or version.minor_str not in KIND_NODE_IMAGES.get(release, {})):
        wanted = recommended_kind_release(version)
        note = (f"# kind {release} lists no image for {version.minor_str}: install kind {wanted}\n" if release
                else f"# kind is not installed; this is the image kind {wanted} lists\n")
        release = wanted
    source = f"the node image listed by kind {release}" if image is None else "the node image given with --image"
    header = (f"# labkit's kind config for Kubernetes {version.minor_str} ({source}).\n{note}"
              f"# kind create cluster --name {name} --config FILE\n")
    return header + render_config(version, kind_release=release, image=image)



def create_cluster(name: str = DEFAULT_CLUSTER_NAME, k8s_version: str | KubeVersion = DEFAULT_K8S_VERSION, **options: Any) -> bool:
    """Create (or reuse) a labkit kind cluster and leave it running; True if it was created now."""
    return KindCluster(name, k8s_version, **options).ensure()


def delete_cluster(name: str = DEFAULT_CLUSTER_NAME, **options: Any) -> bool:
    """Delete a kind cluster labkit created; False when there was none. Never deletes other clusters."""
    cluster = KindCluster(name, **options)
    marker = cluster.marker()
    docker = check_docker(cluster.runner)
    if not docker.usable:
        if marker is None:  # labkit made no such cluster: nothing to do, Docker or not
            return False
        raise BackendUnavailable(f"cannot delete kind cluster {name!r}: {docker.detail}\nFix: {docker.fix}")
    exists = name in cluster.clusters()
    if exists and marker is None:
        raise BackendUnavailable(
            f"kind cluster {name!r} was not created by labkit, so labkit will not delete it "
            f"(`kind delete cluster --name {name}` does, if you mean it)")
    if not exists:
        cluster._forget()
        return False
    cluster.delete()
    return True


# -- the lab ----------------------------------------------------------------------------
class KindLab(ClusterLab):
    """The lab on a local kind cluster: :class:`~labkit.cluster.ClusterLab` on a cluster labkit made.

    It reuses a labkit cluster of that name when one runs (``labkit run`` makes one and
    passes ``keep_cluster=True`` to each notebook), and deletes the cluster at ``close()``
    only if it created it and ``keep_cluster`` is false.
    """

    backend = "kind"

    def __init__(self, k8s_version: str | KubeVersion = DEFAULT_K8S_VERSION, cluster_name: str = DEFAULT_CLUSTER_NAME,
                 keep_cluster: bool = False, feature_gates: dict[str, bool] | None = None, quiet: bool = False,
                 *, image: str | None = None, namespace: str | None = None, runner: Runner | None = None,
                 state: str | os.PathLike | None = None, ready_timeout: float = 300.0,
                 seed: Any = None, pace: Any = None, **cluster_options: Any):
        # seed and pace are the simulator's: a real cluster runs once, at wall-clock pace.
        self.cluster = KindCluster(cluster_name, k8s_version, feature_gates=feature_gates, image=image,
                                   runner=runner, quiet=quiet, state=state, ready_timeout=ready_timeout)
        self.keep_cluster = keep_cluster
        self.created_cluster = self.cluster.ensure()
        try:
            super().__init__(k8s_version=k8s_version, kubeconfig=self.cluster.kubeconfig,
                             context=self.cluster.context, namespace=namespace,
                             feature_gates=self.cluster.feature_gates, quiet=quiet, runner=runner, **cluster_options)
        except BaseException:
            self._delete_cluster_if_ours()
            raise

    def _delete_cluster_if_ours(self) -> None:
        if self.created_cluster and not self.keep_cluster:
            self.created_cluster = False
            self.cluster.delete()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._delete_cluster_if_ours()

    def __repr__(self) -> str:
        return (f"<KindLab cluster={self.cluster.name} Kubernetes {self.kubernetes_version} "
                f"namespace={self.namespace}{' (closed)' if self.closed else ''}>")
