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

from .errors import BackendUnavailable, InvalidInput, LabkitError, ToolError, WaitTimeout
from .kubectl import KIND_ALIASES, Kubectl, PodTable, Runner, describe_pods, split_ref
from .trace import Trace
from .versions import KubeVersion, behaviour

_CONDITIONS = {"job": ("Complete", "Failed", "Deleted"), "deployment": ("Available", "Deleted"),
               "pod": ("Ready", "Succeeded", "Failed", "Deleted")}
_APPLIED = re.compile(r"^(\S+/\S+) (created|configured|unchanged|serverside-applied)\b")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NAMESPACE_PREFIX = "labkit-"


def random_namespace() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return NAMESPACE_PREFIX + "".join(secrets.choice(alphabet) for _ in range(5))


class ClusterLab:
    """The lab API (see :mod:`labkit.lab`) against an existing kubeconfig context.

    ``k8s_version`` is what the notebook expects; the cluster's own version wins and a
    different minor is reported. ``feature_gates`` records what the cluster is known to run
    with (a cluster does not tell). ``runner`` runs every command (tests inject one);
    ``record=False`` skips the watch; ``watch_log(arrival, kind, event)`` is given every raw
    watch event, to save the stream.
    """

    backend = "cluster"
    POLL_S = 0.5

    def __init__(self, k8s_version: str | None = None, context: str | None = None, namespace: str | None = None,
                 kubeconfig: str | os.PathLike | None = None, allow_existing_namespace: bool = False,
                 feature_gates: dict[str, bool] | None = None, quiet: bool = False, *,
                 runner: Runner | None = None, record: bool = True, seed: Any = None, pace: Any = None,
                 watch_log: Callable[[float, str, dict], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time):
        # seed and pace are the simulator's options: a real cluster runs once, at wall-clock pace.
        self.why = ""
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
        self.kubernetes_version = self._server_version()
        self.feature_gates = self._gates(k8s_version, feature_gates)
        try:
            self._setup_namespace(namespace, allow_existing_namespace)
            atexit.register(self._atexit)
            where = f" (KUBECONFIG={self.kubeconfig})" if self.kubeconfig else ""
            self._say(f"# kubectl below runs against context {self.context}{where}, "
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
        try:
            return self.kubectl.server_version()
        except ToolError as exc:
            raise BackendUnavailable(f"cannot reach the cluster of context {self.context!r}:\n{exc}") from None

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
        if not _DNS_LABEL.match(namespace) or len(namespace) > 63:
            raise InvalidInput(f"invalid namespace name {namespace!r}: lowercase letters, digits and '-', "
                               "at most 63 characters", field="namespace")
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
                                     since=self.wall_clock())
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

    def add_listener(self, fn: Callable[[Trace], Any]) -> Callable[[], None]:
        """Call ``fn(trace)`` (from the recorder's thread) whenever new events arrive; returns an unsubscribe."""
        with self._listener_lock:
            self._listeners.append(fn)
        return lambda: self.remove_listener(fn)

    def remove_listener(self, fn: Callable[[Trace], Any]) -> None:
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

    def delete(self, ref: str, grace_period: int | None = None, wait: bool = True, timeout: float = 120.0) -> list[str]:
        """``kubectl delete``; a workload is deleted in the foreground, so waiting covers its pods.

        ``grace_period`` for a workload is given to its pods (deleting the pods themselves
        with ``--grace-period``, as a Deployment or Job does not pass it on).
        """
        self._check_open()
        kind, name = _ref(ref)
        selector = None
        if grace_period is not None and kind != "pod":
            obj = self.kubectl.get(f"{kind}/{name}") or {}
            labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items())) or None
        args = ["delete", f"{kind}/{name}", "--wait=false"]
        if kind != "pod":
            args.append("--cascade=foreground")
        elif grace_period is not None:
            args.append(f"--grace-period={grace_period}")
        lines = self.kubectl.run(args).stdout.splitlines()
        if selector:
            lines += self.kubectl.run(["delete", "pods", "-l", selector, f"--grace-period={grace_period}",
                                       "--wait=false"]).stdout.splitlines()
        if wait:
            self.wait(f"{kind}/{name}", "Deleted", timeout=timeout)
        return lines

    def wait(self, ref: str, condition: str, timeout: float = 120.0) -> None:
        """Wait until ``ref`` meets ``condition``; WaitTimeout (with the pods' story) if it does not."""
        self._check_open()
        kind, name = _ref(ref)
        if condition not in _CONDITIONS[kind]:
            raise InvalidInput(f"cannot wait for {condition!r} on a {kind} (choose {', '.join(_CONDITIONS[kind])})",
                               field="condition")
        target = f"{kind}/{name}"
        if condition == "Deleted":
            shown = ["wait", "--for=delete", target]
        elif kind == "pod" and condition in ("Succeeded", "Failed"):
            shown = ["wait", f"--for=jsonpath={{.status.phase}}={condition}", target]
        else:
            shown = ["wait", f"--for=condition={condition}", target]
        self.kubectl.show([*shown, f"--timeout={timeout:g}s"])
        deadline = self.clock() + timeout
        while True:
            obj = self.kubectl.get(target)
            done, impossible = _wait_state(kind, condition, obj)
            if done:
                return
            if impossible:
                raise LabkitError(f"{target} will not become {condition}: {impossible}\n{self._diagnose()}")
            if self.clock() >= deadline:
                missing = " (it does not exist)" if obj is None else ""
                raise WaitTimeout(f"{target} not {condition} after {timeout:g}s{missing}\n{self._diagnose()}")
            self.sleep_fn(self.POLL_S)

    def _diagnose(self) -> str:
        try:
            return describe_pods(self.kubectl.get_pods(), self.kubectl.events())
        except LabkitError as exc:
            return f"(could not read the pods: {exc})"

    def sleep(self, seconds: float) -> None:
        """Let wall-clock time pass while the recorder keeps watching."""
        self.sleep_fn(seconds)

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
        """``kubectl set image deployment/NAME CONTAINER=IMAGE``."""
        self._check_open()
        kind, name = _ref(ref)
        return self.kubectl.run(["set", "image", f"{kind}/{name}", f"{container}={image}"]).stdout.splitlines()

    def trace(self) -> Trace:
        """What was recorded since the lab started (or since ``reset()``)."""
        if self._builder is None:
            return Trace(self.backend, self.kubernetes_version, dict(self.feature_gates))
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

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.close()
        except Exception as cleanup:
            if exc_type is None:
                raise
            print(f"labkit: cleaning up after the error failed too: {cleanup}", file=sys.stderr)

    def _say(self, message: str) -> None:
        if not self.quiet:
            print(message, flush=True)

    def __repr__(self) -> str:
        return (f"<ClusterLab context={self.context} Kubernetes {self.kubernetes_version} "
                f"namespace={self.namespace}{' (closed)' if self.closed else ''}>")


def _ref(ref: str) -> tuple[str, str]:
    kind, name = split_ref(ref)
    if kind not in KIND_ALIASES:
        raise InvalidInput(f"labkit handles pods, Jobs and Deployments, not {kind!r} (in {ref!r})", field="ref")
    return KIND_ALIASES[kind].lower(), name


def _wait_state(kind: str, condition: str, obj: dict | None) -> tuple[bool, str | None]:
    """(done, why it can no longer happen) for one poll."""
    if condition == "Deleted":
        return obj is None, None
    if obj is None:
        return False, None
    status = obj.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}

    def true(name: str) -> bool:
        return (conditions.get(name) or {}).get("status") == "True"

    def because(name: str) -> str:
        c = conditions.get(name) or {}
        return ": ".join(part for part in (c.get("reason"), c.get("message")) if part) or name

    if kind == "job":
        other = "Failed" if condition == "Complete" else "Complete"
        if true(condition):
            return True, None
        if true(other):
            return False, f"the Job is {other} ({because(other)})"
        return False, None
    if kind == "deployment":
        return true("Available"), None
    phase = status.get("phase")
    if condition == "Ready":
        if true("Ready"):
            return True, None
        if phase in ("Succeeded", "Failed"):
            return False, (f"the pod already finished (phase {phase}) without being Ready; a fast Job pod can "
                           "skip Ready entirely, so wait for job/NAME Complete instead")
        return False, None
    if phase == condition:
        return True, None
    if phase in ("Succeeded", "Failed"):
        return False, f"the pod finished with phase {phase}"
    return False, None
