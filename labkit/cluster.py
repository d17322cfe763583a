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
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .contract import DEFAULT_TIMEOUT_S, SELECTOR_GRACE_S, Listener
from .errors import BackendUnavailable, InvalidInput, LabkitError, ToolError, WaitTimeout
from .kubectl import Kubectl, Runner
from .names import dns1123_label_errors
from .objects import wait_state
from .printers import PodTable, describe_pods
from .refs import Ref, check_condition, parse_ref, wait_args
from .trace import Trace
from .versions import KubeVersion, behaviour

_APPLIED = re.compile(r"^(\S+/\S+) (created|configured|unchanged|serverside-applied)\b")
NAMESPACE_PREFIX = "labkit-"


def random_namespace() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return NAMESPACE_PREFIX + "".join(secrets.choice(alphabet) for _ in range(5))


class ClusterLab:
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
        self.why = f"backend={self.backend!r} was asked for"  # connect() says why it picked it
        self.closed = False
        self.quiet = quiet
        self.sleep_fn, self.clock, self.wall_clock = sleep, clock, wall_clock
        self._listeners: list[Callable[[Trace], Any]] = []
        self._listener_lock = threading.Lock()
        self._applied: list[str] = []
        self._owns_namespace = False
        self._recorder = None
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
        if k8s_version is not None and KubeVersion.parse(k8s_version).minor != server.minor:
            self._say(f"# note: Kubernetes {KubeVersion.parse(k8s_version).minor_str} was asked for, but context "
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

    def _stop_recording(self) -> None:
        if self._recorder is not None:
            self._recorder.stop()
            if self._recorder.errors and not self.quiet:
                print(f"labkit: the recorder had trouble: {self._recorder.errors[-1]}", file=sys.stderr)
            self._recorder = None

    def _notify(self) -> None:
        with self._listener_lock:
            listeners = list(self._listeners)
        if not listeners:
            return
        trace = self.trace()
        for listener in listeners:
            try:
                listener(trace)
            except Exception as exc:  # a broken display must not stop the recording
                print(f"labkit: a trace listener failed: {type(exc).__name__}: {exc}", file=sys.stderr)

    def add_listener(self, fn: Listener) -> Callable[[], None]:
        """Call ``fn(trace)`` (from the recorder's thread) whenever new events arrive; returns an unsubscribe."""
        with self._listener_lock:
            self._listeners.append(fn)
        return lambda: self.remove_listener(fn)

    def remove_listener(self, fn: Listener) -> None:
        with self._listener_lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    # -- the lab API ------------------------------------------------------------------
    def apply(self, source: Any) -> list[str]:
        """``kubectl apply -f``: a path, YAML text, or objects; returns kubectl's lines."""
        self._check_open()
        lines = self.kubectl.apply(source)
        for line in lines:
            match = _APPLIED.match(line.strip())
            if match and match.group(1) not in self._applied:
                self._applied.append(match.group(1))
        return lines

    def delete(self, ref: str, grace_period: int | None = None, wait: bool = True,
               timeout: float = DEFAULT_TIMEOUT_S) -> list[str]:
        """``kubectl delete``; a workload is deleted in the foreground, so waiting covers its pods.

        ``grace_period`` for a workload is given to its pods (deleting the pods themselves
        with ``--grace-period``, as a Deployment or Job does not pass it on).
        """
        self._check_open()
        target = parse_ref(ref)
        grace = [] if grace_period is None else [f"--grace-period={grace_period}"] + (["--force"] if grace_period == 0 else [])
        selector = target.selector_text
        if grace_period is not None and target.kind != "Pod":
            obj = self.kubectl.get(target.args[0]) or {}
            labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items())) or None
        args = ["delete", *target.args, "--wait=false"]
        if target.kind != "Pod":
            args.append("--cascade=foreground")
        else:
            args += grace
        lines = self.kubectl.run(args).stdout.splitlines()
        if selector and target.kind != "Pod":
            lines += self.kubectl.run(["delete", "pods", "-l", selector, *grace, "--wait=false"]).stdout.splitlines()
        if wait:
            self._wait(target, "Deleted", timeout)
        return lines

    def wait(self, ref: str, condition: str, timeout: float = DEFAULT_TIMEOUT_S) -> float:
        """Wait until ``ref`` meets ``condition`` (``labkit.objects.wait_state``); returns the seconds
        waited. WaitTimeout (with the pods' story) if it does not."""
        self._check_open()
        target = parse_ref(ref)
        check_condition(target, condition)
        return self._wait(target, condition, timeout)

    def _wait(self, target: Ref, condition: str, timeout: float, *, show: bool = True) -> float:
        if show:
            self.kubectl.show(wait_args(target, condition, timeout))
        start, first = self.clock(), True
        while True:
            objects = self._objects(target)
            if condition != "Deleted":
                if objects == [None] and first:
                    raise InvalidInput(f"Error from server (NotFound): {target.args[0]} not found", field="ref")
                if not objects and self.clock() - start >= min(SELECTOR_GRACE_S, timeout / self.pace):
                    raise InvalidInput(f"no matching resources found for {' '.join(target.args)!r}", field="ref")
            states = [wait_state(target.kind, condition, obj) for obj in objects] or [(False, None)]
            waited = (self.clock() - start) * self.pace
            never = next((why for _, why in states if why), None)
            if never:
                raise LabkitError(f"{' '.join(target.args)} will not become {condition}: {never}\n{self._diagnose()}")
            if all(done for done, _ in states):  # held at the first look: nothing was waited for
                return 0.0 if first else round(waited, 3)
            if waited >= timeout:
                missing = " (it does not exist)" if objects == [None] else ""
                raise WaitTimeout(f"{' '.join(target.args)} not {condition} after {timeout:g}s{missing}\n"
                                  f"{self._diagnose()}")
            first = False
            self.sleep_fn(self.POLL_S)

    def _objects(self, target: Ref) -> list[dict | None]:
        """The object ``target`` names (None if it does not exist), or the pods its selector matches."""
        if target.selector is None:
            return [self.kubectl.get(target.args[0])]
        found = self.kubectl.json(["get", "pods", "-l", target.selector_text]) or {}
        return list(found.get("items") or [])

    def _diagnose(self) -> str:
        try:
            return describe_pods(self.kubectl.get_pods(), self.kubectl.events())
        except LabkitError as exc:
            return f"(could not read the pods: {exc})"

    def sleep(self, seconds: float) -> None:
        """Let time pass while the recorder keeps watching (simulated seconds on a served simulator)."""
        self.sleep_fn(seconds / self.pace)

    def pods(self) -> PodTable:
        """The pods as ``kubectl get pods`` shows them."""
        self._check_open()
        self.kubectl.show(["get", "pods"])
        return PodTable.from_pods(self.kubectl.get_pods(), now=self.wall_clock(), namespace=self.namespace)

    def logs(self, pod: str, container: str | None = None, *, previous: bool = False) -> str:
        """``kubectl logs POD [-c CONTAINER]``; ``pod`` may also be ``job/NAME`` or ``deployment/NAME``."""
        self._check_open()
        return self.kubectl.logs(pod, container, previous=previous)

    def set_image(self, ref: str, container: str, image: str) -> list[str]:
        """``kubectl set image pod/NAME|deployment/NAME CONTAINER=IMAGE``."""
        self._check_open()
        target = parse_ref(ref)
        if target.selector is not None or target.kind == "Job":
            raise InvalidInput(f"set image takes pod/NAME or deployment/NAME, not {ref!r} (a Job's template "
                               "cannot change)", field="ref")
        return self.kubectl.run(["set", "image", *target.args, f"{container}={image}"]).stdout.splitlines()

    def trace(self) -> Trace:
        """What was recorded since the lab started (or since ``reset()``)."""
        if self._builder is None:
            extra = {"served_simulator": dict(self.served_simulator)} if self.served_simulator else {}
            return Trace(self.backend, self.kubernetes_version, dict(self.feature_gates), extra=extra)
        return self._builder.trace()

    def reset(self) -> None:
        """Delete everything the lab made and start a new trace (a fresh namespace when labkit owns it)."""
        self._check_open()
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

    def close(self) -> None:
        """Stop recording and delete what labkit made here (its namespace, or what it applied)."""
        if self.closed:
            return
        self.closed = True
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

    def _check_open(self) -> None:
        if self.closed:
            raise LabkitError("this lab is closed; open a new one with labkit.connect()")

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.close()
        except Exception as cleanup:
            if exc[0] is None:
                raise
            print(f"labkit: cleaning up after the error failed too: {cleanup}", file=sys.stderr)

    def _say(self, message: str) -> None:
        if not self.quiet:
            print(message, flush=True)

    def __repr__(self) -> str:
        served = " (labkit's served simulator)" if self.served_simulator else ""
        return (f"<ClusterLab context={self.context}{served} Kubernetes {self.kubernetes_version} "
                f"namespace={self.namespace}{' (closed)' if self.closed else ''}>")
