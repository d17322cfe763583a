"""The few exception types labkit raises.

Every error a user can cause says what is wrong and where: the file, the field path, or
the whole command that failed with its output. The CLI turns ``InvalidInput`` into exit
status 2 with a one-line message and no traceback.
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

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.message = message
        self.source = source
        self.field = field
        super().__init__(": ".join(part for part in (source, field, message) if part))


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


class CheckFailed(AssertionError):
    """A notebook self-check did not hold; the message explains what the trace showed."""

    def _render_traceback_(self) -> list[str]:
        """What IPython shows instead of a traceback (JupyterLab, and the error output papermill
        saves): a failed self-check is the learner's to fix, so only its message, in red."""
        return [f"\x1b[31m{type(self).__name__}\x1b[39m: {self}"]
