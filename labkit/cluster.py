"""The lab on any Kubernetes cluster you already have (a kubeconfig context).

labkit never creates or deletes such a cluster. It works in a namespace of its own
(``labkit-xxxxx``), made at the start and deleted at ``close()``, and refuses to work in a
namespace it did not create unless told to (``allow_existing_namespace=True``; then it
deletes only what it applied). Every call prints the kubectl command it stands for; the
pods are recorded with a watch (:mod:`labkit.recorder`) into a trace::

    with ClusterLab(context="my-cluster") as lab:
        lab.apply("manifests/job-sidecar.yaml")
        lab.wait("job/sidecar-job", "Complete", timeout=180)
        trace = lab.trace()

:class:`labkit.kind.KindLab` is this lab on a cluster labkit made itself.
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import string
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .contract import LabBody
from .errors import BackendUnavailable, InvalidInput, LabkitError, ToolError, WaitTimeout
from .kubectl import Kubectl, Runner, api_error
from .names import dns1123_label_errors
from .printers import describe_pods
from .refs import Ref
from .trace import Trace
from .versions import KubeVersion, behaviour

_APPLIED = re.compile(r"^(\S+/\S+) (created|configured|unchanged|serverside-applied)\b")
NAMESPACE_PREFIX = "labkit-"


def random_namespace() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return NAMESPACE_PREFIX + "".join(secrets.choice(alphabet) for _ in range(5))


class ClusterLab(LabBody):
    """The lab contract (:class:`labkit.contract.Lab`) against an existing kubeconfig context.

    ``k8s_version`` is what the notebook expects; the cluster's own version wins and a
    different minor is reported. ``feature_gates`` records what the cluster is known to run
    with (a cluster does not tell). ``runner`` runs every command (tests inject one);
    ``record=False`` skips the watch; ``watch_log(arrival, kind, event)`` is given every raw
    watch event, to save the stream.

    A server that says it is labkit's served simulator (``/version`` gitVersion ending in
    ``-labkit-sim``, ``labkit serve``) is named so, never a Kubernetes cluster, and its trace is
    marked (``served_simulator``, docs/trace.md). It runs ``pace`` simulated seconds per
    wall-clock second (its node says how many): this lab's seconds are then simulated ones, as
    on the simulator (``sleep``, ``timeout``, the seconds ``wait`` returns, the trace's ``t``).
    """

    backend = "cluster"
    POLL_S = 0.5
    WATCHED_POLL_S = 2.0   # while the recorder watches, a wait looks again on each change, and at least this often
    CATCH_UP_S = 10.0   # wall seconds a wait gives the recorder's watches to reach what it read

    def __init__(self, k8s_version: str | None = None, context: str | None = None, namespace: str | None = None,
                 kubeconfig: str | os.PathLike | None = None, allow_existing_namespace: bool = False,
                 feature_gates: dict[str, bool] | None = None, quiet: bool = False, *,
                 runner: Runner | None = None, record: bool = True, seed: Any = None, pace: Any = None,
                 watch_log: Callable[[float, str, dict], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time, **ignored_options: Any):
        # seed and pace are the simulator's options: a real cluster runs once, at wall-clock pace
        # (a served simulator says its own). ignored_options: other backends' options
        # (cluster_name, keep_cluster), so that one connect() call opens any backend.
        self._init_body()
        self.why = f"backend={self.backend!r} was asked for"  # connect() says why it picked it
        self.closed = False
        self.quiet = quiet
        self.sleep_fn, self.clock, self.wall_clock = sleep, clock, wall_clock
        self._applied: list[str] = []
        self._owns_namespace = False
        self._recorder = None
        self._looked_after = 0   # the recorder's change count before a wait's last look
        self._builder = None
        self._record = record
        self._watch_log = watch_log
        self.namespace: str | None = None
        if kubeconfig is not None and not Path(kubeconfig).is_file():
            raise InvalidInput("no such file", source=os.fspath(kubeconfig), field="kubeconfig")
        self.kubeconfig = os.fspath(kubeconfig) if kubeconfig is not None else None
        self.kubectl = Kubectl(self.kubeconfig, context, runner=runner, quiet=quiet)
        self.context = context or self._current_context()
        self.kubectl.context = self.context
        self.served_simulator: dict | None = None
        self.pace = 1.0
        self.kubernetes_version = self._server_version()
        self.feature_gates = self._gates(k8s_version, feature_gates)
        try:
            self._setup_namespace(namespace, allow_existing_namespace)
            atexit.register(self._atexit)
            where = f" (KUBECONFIG={self.kubeconfig})" if self.kubeconfig else ""
            what = (f"labkit's served simulator (a model of the kubelet, not a Kubernetes cluster; pace "
                    f"{self.pace:g}), " if self.served_simulator else "")
            self._say(f"# kubectl below runs against {what}context {self.context}{where}, "
                      f"Kubernetes {self.kubernetes_version}, in namespace {self.namespace}")
            self._start_recording()
        except BaseException:
            self.close()
            raise

    # -- setup ------------------------------------------------------------------------
    def _current_context(self) -> str:
        try:
            context = self.kubectl.run(["config", "current-context"], namespaced=False, show=False).stdout.strip()
        except ToolError as exc:
            raise BackendUnavailable(f"no current context in the kubeconfig ({exc.stderr.strip() or exc}); "
                                     "pass context= (see `kubectl config get-contexts`)") from None
        if not context:
            raise BackendUnavailable("the kubeconfig has no current context; pass context=")
        return context

    def _server_version(self) -> str:
        from .kubectl import parse_server_version
        from .served import CONTEXT, is_served_simulator

        try:
            git_version = self.kubectl.server_git_version()
        except ToolError as exc:
            raise BackendUnavailable(f"cannot reach the cluster of context {self.context!r}:\n{exc}") from None
        # labkit serve --control-plane real: a real /version, its node says what is simulated
        simulated_node = self._simulated_node() if self.context == CONTEXT and not is_served_simulator(git_version) \
            else None
        if is_served_simulator(git_version) or simulated_node:
            self.pace = self._served_pace()
            self.served_simulator = {"server_version": git_version, "pace": self.pace}
            if simulated_node:   # labkit serve --control-plane real: a real API server, a simulated kubelet
                self.served_simulator["node"] = simulated_node
        return parse_server_version(git_version)

    def _simulated_node(self) -> str | None:
        """What a node annotated ``labkit.dev/simulated`` (labkit.served) says it is (labkit serve's simulated kubelet
        under a real control plane: the API server's version is a real one, the pods' lives are not)."""
        try:
            nodes = self.kubectl.json(["get", "nodes"], namespaced=False) or {}
        except ToolError:
            return None
        from .served import SIMULATED_ANNOTATION

        for node in nodes.get("items") or []:
            said = ((node.get("metadata") or {}).get("annotations") or {}).get(SIMULATED_ANNOTATION)
            if said:
                return str(said)
        return None

    def _served_pace(self) -> float:
        """The served simulator's pace, from its node's annotation (labkit.served.PACE_ANNOTATION)."""
        from .served import PACE_ANNOTATION

        nodes = self.kubectl.json(["get", "nodes"], namespaced=False) or {}
        for node in nodes.get("items") or []:
            value = ((node.get("metadata") or {}).get("annotations") or {}).get(PACE_ANNOTATION)
            try:
                pace = float(value)
            except (TypeError, ValueError):
                continue
            if pace > 0:
                return pace
        return 1.0

    def _gates(self, k8s_version: str | None, feature_gates: dict[str, bool] | None) -> dict[str, bool]:
        server = KubeVersion.parse(self.kubernetes_version)
        asked = None if k8s_version is None else KubeVersion.parse(k8s_version)
        if asked is not None and asked.minor != server.minor:
            self._say(f"# note: Kubernetes {asked.minor_str} was asked for, but context "
                      f"{self.context} runs {self.kubernetes_version}; the lab uses the cluster's version")
        gates = dict(feature_gates or {})
        try:
            behaviour(server, gates)
        except InvalidInput as exc:
            self._say(f"# note: feature gates {gates} do not apply to {self.kubernetes_version} ({exc.message}); "
                      "recording none")
            gates = {}
        return gates

    def _setup_namespace(self, namespace: str | None, allow_existing: bool) -> None:
        if namespace is None:
            for _ in range(5):
                candidate = random_namespace()
                if self._namespace_exists(candidate):
                    continue
                self._create_namespace(candidate)
                return
            raise LabkitError("could not find a free labkit-xxxxx namespace name in 5 tries")
        problems = dns1123_label_errors(namespace)
        if problems:
            raise InvalidInput(f"invalid namespace name {namespace!r}: {'; '.join(problems)}", field="namespace")
        if self._namespace_exists(namespace):
            if not allow_existing:
                raise InvalidInput(
                    f"namespace {namespace!r} already exists and labkit did not create it, so labkit will not "
                    "work in it (reset() and close() would delete what is there). Leave namespace= out to get a "
                    "fresh one, or pass allow_existing_namespace=True (labkit then deletes only what it applied)",
                    field="namespace")
            self.namespace = namespace
            self.kubectl.namespace = namespace
            return
        self._create_namespace(namespace)

    def _namespace_exists(self, name: str) -> bool:
        return self.kubectl.json(["get", "namespace", name, "--ignore-not-found"], namespaced=False) is not None

    def _create_namespace(self, name: str) -> None:
        self.kubectl.run(["create", "namespace", name], namespaced=False)
        self.namespace = name
        self.kubectl.namespace = name
        self._owns_namespace = True
        self.kubectl.run(["label", "namespace", name, "app.kubernetes.io/managed-by=labkit"], namespaced=False,
                         show=False)
        # Pods are refused until the namespace's default ServiceAccount exists (made by a controller).
        deadline = self.clock() + 30.0
        while self.kubectl.json(["get", "serviceaccount", "default", "--ignore-not-found"]) is None:
            if self.clock() >= deadline:
                raise WaitTimeout(f"namespace {name}: the default ServiceAccount did not appear within 30s "
                                  "(is kube-controller-manager running?)")
            self.sleep_fn(self.POLL_S)

    # -- recording --------------------------------------------------------------------
    def _start_recording(self) -> None:
        from .recorder import Recorder, TraceBuilder

        self._builder = TraceBuilder(self.backend, self.kubernetes_version, self.feature_gates,
                                     since=self.wall_clock(), served_simulator=self.served_simulator)
        if not self._record:
            return
        self._recorder = Recorder(self._builder, namespace=self.namespace, kubeconfig=self.kubeconfig,
                                  context=self.context, on_events=self._notify, watch_log=self._watch_log).start()

    def _recorded(self, objects: list[dict]) -> None:
        """Hold until the recorder's watches have what a wait just read with kubectl (the trace
        taken right after a wait then has it, e.g. a Job's Complete); at most CATCH_UP_S each."""
        if self._recorder is None:
            return
        for obj in objects:
            meta = obj.get("metadata") or {}
            if obj.get("kind") and meta.get("name"):
                self._recorder.has_taken(obj["kind"], meta["name"], meta.get("resourceVersion"), self.CATCH_UP_S)

    def _stop_recording(self) -> None:
        if self._recorder is not None:
            self._recorder.stop()
            if self._recorder.errors and not self.quiet:
                print(f"labkit: the recorder had trouble: {self._recorder.errors[-1]}", file=sys.stderr)
            self._recorder = None

    # -- the transport under labkit.contract.LabBody -----------------------------------------
    def _show(self, argv: list[str]) -> None:
        self.kubectl.show(argv[1:])

    def _run(self, args: list[str], **options: Any):
        """One kubectl call the lab makes for the learner (shown as the body's line, not this
        one); an API error becomes labkit's typed error (:func:`labkit.kubectl.api_error`)."""
        try:
            return self.kubectl.run(args, show=False, **options)
        except ToolError as exc:
            raise api_error(exc) from exc

    def _apply(self, source: Any) -> list[str]:
        try:
            lines = self.kubectl.apply(source, show=False)
        except ToolError as exc:
            raise api_error(exc) from exc
        for line in lines:
            match = _APPLIED.match(line.strip())
            if match and match.group(1) not in self._applied:
                self._applied.append(match.group(1))
        return lines

    def _get(self, ref: Ref) -> dict | None:
        return self.kubectl.get(ref.args[0])

    def _select(self, ref: Ref) -> list[str]:
        found = self.kubectl.json(["get", "pods", "-l", ref.selector_text]) or {}
        return [pod["metadata"]["name"] for pod in found.get("items") or []]

    def _delete(self, ref: Ref, grace_period: int | None) -> list[str]:
        """A workload is deleted in the foreground, so waiting for it covers its pods;
        ``grace_period`` for a workload is given to its pods (deleting the pods themselves with
        ``--grace-period``, as a Deployment or Job does not pass it on)."""
        grace = [] if grace_period is None else [f"--grace-period={grace_period}"] + (["--force"] if grace_period == 0 else [])
        selector = ref.selector_text
        if grace_period is not None and ref.kind != "Pod":
            obj = self.kubectl.get(ref.args[0]) or {}
            labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items())) or None
        args = ["delete", *ref.args, "--wait=false"]
        if ref.kind != "Pod":
            args.append("--cascade=foreground")
        else:
            args += grace
        lines = self._run(args).stdout.splitlines()
        if selector and ref.kind != "Pod":
            lines += self._run(["delete", "pods", "-l", selector, *grace, "--wait=false"]).stdout.splitlines()
        return lines

    def _now(self) -> float:
        return self.clock() * self.pace

    def _pass(self, seconds: float, until: Callable[[], bool] | None) -> bool:
        """Sleep (in polls of POLL_S while ``until`` is given, the caller having just looked)."""
        end = self.clock() + seconds / self.pace
        while (left := end - self.clock()) > 0:
            if until is None:
                self.sleep_fn(left)
            elif self._recorder is not None:
                # look again as soon as a watched object changes: the count was taken before the
                # last look began, so nothing that changed after it is missed (at worst one look too many)
                self._recorder.wait_for_change(self._looked_after, min(self.WATCHED_POLL_S, left))
                self._looked_after = self._recorder.changes()
            else:
                self.sleep_fn(min(self.POLL_S, left))
            if until is not None and until():
                return True
        return until is None

    def _story(self, ref: Ref) -> str:
        try:
            return describe_pods(self.kubectl.get_pods(), self.kubectl.events())
        except LabkitError as exc:
            return f"(could not read the pods: {exc})"

    def _pod_list(self) -> tuple[list[dict], float]:
        return self.kubectl.get_pods(), self.wall_clock()

    def _logs(self, ref: Ref, container: str | None, previous: bool) -> str:
        try:
            return self.kubectl.logs(ref.args[0], container, previous=previous, show=False)
        except ToolError as exc:
            raise api_error(exc) from exc

    def _set_image(self, ref: Ref, container: str, image: str) -> list[str]:
        return self._run(["set", "image", *ref.args, f"{container}={image}"]).stdout.splitlines()

    def trace(self) -> Trace:
        """What was recorded since the lab started (or since ``reset()``)."""
        if self._builder is None:
            extra = {"served_simulator": dict(self.served_simulator)} if self.served_simulator else {}
            return Trace(self.backend, self.kubernetes_version, dict(self.feature_gates), extra=extra)
        return self._builder.trace()

    def _reset(self) -> None:
        """Delete everything the lab made and start a new trace (a fresh namespace when labkit owns it)."""
        self._stop_recording()
        if self._owns_namespace:
            self.kubectl.run(["delete", "namespace", self.namespace, "--wait=false"], namespaced=False)
            self._owns_namespace = False
            self._setup_namespace(None, False)
            self._say(f"# new namespace {self.namespace}")
        else:
            self._delete_applied()
        self._applied = []
        self._start_recording()

    def _close(self) -> None:
        """Stop recording and delete what labkit made here (its namespace, or what it applied)."""
        atexit.unregister(self._atexit)
        self._stop_recording()
        if self.namespace is None:
            return
        if self._owns_namespace:
            self.kubectl.run(["delete", "namespace", self.namespace, "--wait=false"], namespaced=False)
        else:
            self._delete_applied()

    def _delete_applied(self) -> None:
        for ref in reversed(self._applied):
            self.kubectl.run(["delete", ref, "--ignore-not-found", "--wait=false"])

    def _atexit(self) -> None:
        try:
            self.close()
        except Exception:  # the interpreter is going away; nothing left to report to
            pass

    def __repr__(self) -> str:
        served = " (labkit's served simulator)" if self.served_simulator else ""
        return (f"<ClusterLab context={self.context}{served} Kubernetes {self.kubernetes_version} "
                f"namespace={self.namespace}{' (closed)' if self.closed else ''}>")
