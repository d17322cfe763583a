"""The few exception types labkit raises, the same class and wording on every backend.

Every error a user can cause says what is wrong and where: the file, the field path, or
the whole command that failed with its output. The CLI turns ``InvalidInput`` (and so
``NotFound`` and ``Invalid``) into exit status 2 with a one-line message and no traceback.
Code tells errors apart by class, never by matching their messages; where the API server
answered with a ``metav1.Status``, the error carries it as ``status``. The table of which
lab call raises what is in docs/architecture.md ("Errors").
"""

from __future__ import annotations

from collections.abc import Sequence


class LabkitError(Exception):
    """Base class of every error labkit raises on purpose."""


class InvalidInput(LabkitError):
    """Bad input: a file, a manifest, a flag value. Exit status 2 in the CLI.

    >>> str(InvalidInput("Unsupported value: \\"OnFailure\\"", source="job.yaml",
    ...                  field="spec.initContainers[0].restartPolicy"))
    'job.yaml: spec.initContainers[0].restartPolicy: Unsupported value: "OnFailure"'
    """

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None,
                 status: dict | None = None):
        self.message = message
        self.source = source
        self.field = field
        self.status = status
        super().__init__(": ".join(part for part in (source, field, message) if part))


class NotFound(InvalidInput):
    """The object a call names does not exist (the API server's ``404 NotFound``), or no pod
    matches a selector.

    >>> error = NotFound.of("Job", "nope")
    >>> str(error)
    'ref: Error from server (NotFound): jobs.batch "nope" not found'
    >>> error.status["details"]
    {'name': 'nope', 'group': 'batch', 'kind': 'jobs'}
    """

    # The kinds labkit handles, as (resource, group): what the API server names them by.
    RESOURCES = {"Pod": ("pods", ""), "Job": ("jobs", "batch"), "Deployment": ("deployments", "apps")}

    @classmethod
    def of(cls, kind: str, name: str) -> "NotFound":
        """What the API server answers (``apimachinery/pkg/api/errors.NewNotFound``) and kubectl
        prints (``Error from server (NotFound): ...``, kubectl ``cmd/util.StandardErrorMessage``)."""
        resource, group = cls.RESOURCES[kind]
        qualified = f"{resource}.{group}" if group else resource
        message = f'{qualified} "{name}" not found'
        details = {"name": name, "group": group, "kind": resource} if group else {"name": name, "kind": resource}
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
                  "reason": "NotFound", "details": details, "code": 404}
        return cls(f"Error from server (NotFound): {message}", field="ref", status=status)


class Invalid(InvalidInput):
    """The API server refused an object (``422 Invalid``); ``causes`` lists every
    ``(field path, what is wrong)``, in the server's order. The message is the first one and
    how many more there are.

    >>> error = Invalid("Required value", source="job.yaml", field="spec.template", causes=[("spec.template", "Required value")])
    >>> str(error), error.causes
    ('job.yaml: spec.template: Required value', [('spec.template', 'Required value')])
    """

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None,
                 causes: list[tuple[str, str]] | None = None, status: dict | None = None):
        super().__init__(message, source=source, field=field, status=status)
        self.causes = list(causes) if causes else [(field or "", message)]


class TraceError(InvalidInput):
    """A trace file that does not follow the ``labkit.trace/v1`` contract."""


class ToolError(LabkitError):
    """An external command (kind, kubectl, docker) failed; carries the whole story."""

    def __init__(self, command: Sequence[str], returncode: int, stdout: str = "", stderr: str = ""):
        self.command = list(command)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        lines = [f"command failed with exit status {returncode}: {' '.join(self.command)}"]
        if stdout.strip():
            lines.append("stdout:\n" + stdout.rstrip())
        if stderr.strip():
            lines.append("stderr:\n" + stderr.rstrip())
        super().__init__("\n".join(lines))


class BackendUnavailable(LabkitError):
    """A backend cannot run here (no Docker, no kind); the message says how to fix it."""


class WaitTimeout(LabkitError, TimeoutError):
    """A wait ran out of time; the message shows what the objects looked like then."""


class WillNeverHappen(LabkitError):
    """A wait for a condition that can no longer hold (the Job Failed while waiting for
    Complete, a finished pod waited on for Ready); the message says why and shows the pods."""


class CheckFailed(AssertionError):
    """A notebook self-check did not hold; the message explains what the trace showed."""

    def _render_traceback_(self) -> list[str]:
        """What IPython shows instead of a traceback (JupyterLab, and the error output papermill
        saves): a failed self-check is the learner's to fix, so only its message, in red."""
        return [f"\x1b[31m{type(self).__name__}\x1b[39m: {self}"]
