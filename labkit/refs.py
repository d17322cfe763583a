"""How a lab call names its objects, and the kubectl command it stands for.

Every backend reads a reference (``job/sidecar-job``, ``deploy/x``, ``pod-name``, ``pods -l
app=x``) with :func:`parse_ref`, and prints the same kubectl line for the same call
(:func:`wait_args`, :func:`show_command`), so a learner reads one command whatever runs it.

>>> parse_ref("deploy/sidecar-deploy")
Ref(kind='Deployment', name='sidecar-deploy', selector=None)
>>> parse_ref("pods -l app=sidecar").args
['pods', '-l', 'app=sidecar']
>>> wait_args(parse_ref("job/sidecar-job"), "Complete", 120)
['wait', 'job/sidecar-job', '--for=condition=Complete', '--timeout=120s']
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from typing import NamedTuple

from .errors import InvalidInput
from .objects import POD_PHASES, WAIT_CONDITIONS

# The resource names kubectl accepts for the kinds labkit handles, and the kind each names.
KIND_ALIASES = {"pod": "Pod", "pods": "Pod", "po": "Pod",
                "job": "Job", "jobs": "Job", "job.batch": "Job",
                "deployment": "Deployment", "deployments": "Deployment", "deploy": "Deployment",
                "deployment.apps": "Deployment"}
# How kubectl prints each kind in its result lines (``job.batch/x created``).
KIND_PLURALS = {"Pod": "pod", "Job": "job.batch", "Deployment": "deployment.apps"}


class Ref(NamedTuple):
    """One object (``name`` set) or the pods a label ``selector`` matches."""

    kind: str
    name: str | None
    selector: dict[str, str] | None = None

    @property
    def args(self) -> list[str]:
        """How kubectl is told about it: ``["job/x"]`` or ``["pods", "-l", "app=x"]``."""
        if self.selector is not None:
            return ["pods", "-l", ",".join(f"{k}={v}" for k, v in self.selector.items())]
        return [f"{self.kind.lower()}/{self.name}"]

    @property
    def selector_text(self) -> str | None:
        return None if self.selector is None else self.args[2]


def parse_ref(ref: str) -> Ref:
    """``job/x``, ``deploy/x``, ``pod/x`` or a bare pod name, or ``pods -l key=value[,...]``."""
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInput(f"expected a reference like job/sidecar-job or 'pods -l app=x', got {ref!r}", field="ref")
    words = shlex.split(ref)
    if len(words) == 3 and words[1] in ("-l", "--selector"):
        if KIND_ALIASES.get(words[0].lower()) != "Pod":
            raise InvalidInput(f"label selectors work on pods here, not {words[0]!r} (in {ref!r})", field="ref")
        selector = {}
        for part in words[2].split(","):
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise InvalidInput(f"expected key=value in the selector, got {part!r} (in {ref!r})", field="ref")
            selector[key.strip()] = value.strip().lstrip("=")
        return Ref("Pod", None, selector)
    if len(words) == 1 and "/" in words[0]:
        kind_text, name = words[0].split("/", 1)
        kind = KIND_ALIASES.get(kind_text.lower())
        if kind is None:
            raise InvalidInput(f"labkit handles pods, Jobs and Deployments, not {kind_text!r} (in {ref!r})",
                               field="ref")
        if not name or "/" in name:
            raise InvalidInput(f"expected KIND/NAME such as job/sidecar-job, got {ref!r}", field="ref")
        return Ref(kind, name)
    if len(words) == 1:
        return Ref("Pod", words[0])
    raise InvalidInput(f"cannot read the reference {ref!r}: use KIND/NAME or 'pods -l key=value'", field="ref")


def check_condition(ref: Ref, condition: str) -> None:
    """InvalidInput unless ``condition`` is one ``lab.wait`` knows for ``ref``'s kind."""
    if condition not in WAIT_CONDITIONS[ref.kind]:
        raise InvalidInput(f"cannot wait for {condition!r} on a {ref.kind.lower()} "
                           f"(choose one of {', '.join(WAIT_CONDITIONS[ref.kind])})", field="condition")


def wait_args(ref: Ref, condition: str, timeout: float) -> list[str]:
    """The ``kubectl wait`` arguments that stand for ``lab.wait(ref, condition, timeout)``."""
    if condition == "Deleted":
        how = "--for=delete"
    elif ref.kind == "Pod" and condition in POD_PHASES:
        how = f"--for=jsonpath={{.status.phase}}={condition}"
    else:
        how = f"--for=condition={condition}"
    return ["wait", *ref.args, how, f"--timeout={timeout:g}s"]


# The resource names kubectl's wait errors use (``Mapping.Resource.Resource``).
KIND_RESOURCES = {"Pod": "pods", "Job": "jobs", "Deployment": "deployments"}


def wait_timeout_message(ref: Ref) -> str:
    """What ``kubectl wait`` prints when its ``--timeout`` runs out, so a lab can show it apart
    from labkit's own explanation: ``error: timed out waiting for the condition on pods/x``
    (kubectl v0.37.2, pkg/cmd/wait/condition.go ``extendErrWaitTimeout``)."""
    if ref.name is None:
        return "error: timed out waiting for the condition"
    return f"error: timed out waiting for the condition on {KIND_RESOURCES[ref.kind]}/{ref.name}"


def show_command(argv: Sequence[str], *, file=None) -> str:
    """Print the kubectl/kind command a lab call stands for, as a learner would type it."""
    line = "$ " + shlex.join(argv)
    print(line, file=file or sys.stdout, flush=True)
    return line
