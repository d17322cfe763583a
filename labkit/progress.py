"""Progress for slow steps (creating a cluster, waiting for a node): a bar or one quiet line.

A person watching a notebook or a terminal gets a ``tqdm.auto`` bar. Everywhere else (papermill
and ``labkit run``, CI, a pipe) a bar would become one log line per refresh, so each stage
prints a single line to stderr when it ends instead. ``LABKIT_PROGRESS=0`` or ``1`` forces
either way.

>>> import io
>>> out = io.StringIO()
>>> with progress(total=2, desc="nodes Ready", interactive=False, file=out) as bar:
...     bar.update(2)
>>> out.getvalue().startswith("nodes Ready: done (2/2) in ")
True
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

_CI_VARIABLES = ("CI", "GITHUB_ACTIONS")


def is_interactive(env: Mapping[str, str] | None = None, stream: Any = None) -> bool:
    """True when a person is watching: a live Jupyter frontend or a terminal, and not CI.

    In a kernel, a cell run from JupyterLab/Notebook/VS Code is interactive and one run by
    nbclient (papermill, ``labkit run``) is not: see :func:`interactive_frontend`.
    ``LABKIT_PROGRESS=0``/``1`` wins over every guess; ``CI`` means nobody is watching.
    """
    env = os.environ if env is None else env
    forced = env.get("LABKIT_PROGRESS", "").strip().lower()
    if forced in ("0", "false", "no", "off"):
        return False
    if forced in ("1", "true", "yes", "on"):
        return True
    if any(env.get(name, "").strip().lower() not in ("", "0", "false") for name in _CI_VARIABLES):
        return False
    if _in_jupyter_kernel():
        return interactive_frontend()[0]  # JupyterLab asks with allow_stdin, nbclient does not
    stream = sys.stderr if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())


def interactive_frontend() -> tuple[bool, str]:
    """Whether a person is watching this kernel's output, and why (not).

    Yes only in an IPython kernel whose current request came from an interactive
    frontend: JupyterLab, Notebook and VS Code send ``allow_stdin: true`` with each
    execution, while nbclient (and so papermill and ``labkit run``) sends false.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False, "IPython is not installed"
    kernel = getattr(get_ipython(), "kernel", None)
    if kernel is None:
        return False, "not running in a Jupyter kernel"
    try:
        parent = kernel.get_parent()
    except Exception:  # an older or foreign kernel without get_parent()
        parent = getattr(kernel, "_parent_header", None) or {}
    content = (parent or {}).get("content") or {}
    if not content.get("allow_stdin", False):
        return False, "executed headless (nbclient/papermill): no one is watching"
    return True, "interactive Jupyter frontend"


def _in_jupyter_kernel() -> bool:
    if "ipykernel" not in sys.modules:
        return False
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - ipykernel always brings IPython
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class QuietProgress:
    """The non-interactive stand-in for a bar: remembers the count, prints one line at the end."""

    def __init__(self, total: int | None, desc: str, file: TextIO | None = None, *, silent: bool = False):
        self.total = total
        self.desc = desc
        self.n = 0
        self.note = ""
        self._file = file
        self._start = time.monotonic()
        self._closed = silent

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:  # tqdm's name
        self.note = text

    def close(self, failed: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        count = f"{self.n}/{self.total}" if self.total is not None else str(self.n)
        state = "stopped" if failed else "done"
        note = f", {self.note}" if self.note else ""
        print(f"{self.desc}: {state} ({count}) in {time.monotonic() - self._start:.1f}s{note}",
              file=self._file or sys.stderr, flush=True)

    def __enter__(self) -> "QuietProgress":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(failed=exc_type is not None)


class _BarProgress:
    """A tqdm.auto bar with the same small interface as :class:`QuietProgress`."""

    def __init__(self, total: int | None, desc: str, file: TextIO | None = None):
        import importlib.util

        if _in_jupyter_kernel() and importlib.util.find_spec("ipywidgets") is None:
            from tqdm.std import tqdm  # tqdm.auto would warn that IProgress is missing
        else:
            from tqdm.auto import tqdm
        self._bar = tqdm(total=total, desc=desc, file=file, leave=True)

    @property
    def n(self) -> int:
        return self._bar.n

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self._bar.set_postfix_str(text, refresh=refresh)

    def close(self, failed: bool = False) -> None:
        self._bar.close()

    def __enter__(self) -> "_BarProgress":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(failed=exc_type is not None)


def progress(total: int | None = None, desc: str = "", *, interactive: bool | None = None,
             file: TextIO | None = None, quiet: bool = False):
    """A progress reporter for one stage: use as a context manager, call ``update(n)``.

    ``quiet=True`` reports nothing at all (a caller asked for silence).
    """
    if quiet:
        return QuietProgress(total, desc, file, silent=True)
    if interactive is None:
        interactive = is_interactive()
    if interactive:
        return _BarProgress(total, desc, file)
    return QuietProgress(total, desc, file)
