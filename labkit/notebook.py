"""Small helpers the lab's notebooks import: find the repository's files, save and show timelines.

A notebook runs with its own folder as the working directory (Jupyter and papermill
both do that), so manifests are found from the repository root, not from the cwd::

    from labkit.notebook import Figures, repo_path, show_manifest
    show_manifest(repo_path("manifests/job-sidecar.yaml"))
    figures = Figures(output_dir, "04-native-sidecar-job")
    with figures.live(lab, "job", title="A Job with a native sidecar", pace=1.0):
        lab.apply(repo_path("manifests/job-sidecar.yaml"))   # the timeline grows meanwhile
        lab.wait("job/sidecar-job", "Complete", timeout=120)
    figures.timeline(lab.trace(), "job-later", title="A trace drawn when it is complete")

``Figures`` writes ``<output_dir>/<notebook>/<name>.png`` and ``<name>.trace.json``;
``labkit run`` puts the PNGs in its HTML report.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .errors import CheckFailed, InvalidInput

_MARKERS = ("manifests", "notebooks")


def repo_root(start: str | Path | None = None) -> Path:
    """The Sidecar Lab checkout: the first of ``start`` (default cwd) and its parents that
    holds ``manifests/`` and ``notebooks/``, else the folder above the installed package."""
    here = Path(start or Path.cwd()).resolve()
    package_parent = Path(__file__).resolve().parent.parent
    for folder in (here, *here.parents, package_parent):
        if all((folder / marker).is_dir() for marker in _MARKERS):
            return folder
    raise InvalidInput(f"cannot find the Sidecar Lab files (folders {' and '.join(_MARKERS)}) in {here} "
                       "or its parents; run from inside a checkout of the repository")


def repo_path(relative: str | Path) -> Path:
    """A file of the repository, e.g. ``repo_path("manifests/job-sidecar.yaml")``; it must exist.

    The path is relative to the working directory when it can be (``../manifests/...`` from a
    notebook), so the kubectl commands a lab prints can be typed as they are shown.
    """
    path = repo_root() / relative
    if not path.exists():
        raise InvalidInput("no such file in the repository", source=str(path))
    try:
        return Path(os.path.relpath(path))
    except ValueError:  # another drive (Windows): keep it absolute
        return path


class Figures:
    """Where one notebook saves its timelines: ``<output_dir>/<notebook>/``."""

    def __init__(self, output_dir: str | Path, notebook: str):
        self.folder = Path(output_dir) / notebook

    def timeline(self, trace, name: str, *, title: str | None = None, table: bool = True, legend: str = "compact",
                 show_probe_runs: bool = False) -> None:
        """Plot one trace, save ``<name>.png`` and ``<name>.trace.json``, show the picture and the containers' table.

        ``legend="full"`` draws the full key (notebook 1); ``show_probe_runs``: a tick per probe
        execution (the simulator records them); see :func:`labkit.plot.plot_trace`."""
        from .plot import plot_trace

        self.folder.mkdir(parents=True, exist_ok=True)
        trace.save(self.folder / f"{name}.trace.json")
        self._show(plot_trace(trace, title=title, legend=legend, show_probe_runs=show_probe_runs), name)
        if table:
            from .display import TraceView

            _display(TraceView(trace, image=False))

    @contextmanager
    def live(self, lab, name: str, *, title: str | None = None, pace: float | None = None,
             table: bool = True) -> Iterator[None]:
        """Show ``lab``'s timeline growing while the block runs, then save it like :meth:`timeline`.

        The view is :func:`labkit.display.live`: redrawn in place where someone watches,
        only the final figure when run headless. ``pace`` is virtual seconds per wall-clock
        second for the simulator during the block, so that there is something to watch; it
        applies only while the view is live, so headless runs never wait for the clock.
        """
        from .display import live

        if pace is not None and (isinstance(pace, bool) or not isinstance(pace, (int, float)) or pace <= 0):
            raise InvalidInput(f"expected a positive number of virtual seconds per second, or None; got {pace!r}",
                               field="pace")
        view = live(lab, title=title)
        paced = bool(pace) and view.live and lab.backend == "sim"
        before = getattr(lab, "pace", None)
        if paced:
            lab.pace = pace
        try:
            with view:
                yield
        finally:
            if paced:
                lab.pace = before
        trace = lab.trace()
        self.folder.mkdir(parents=True, exist_ok=True)
        trace.save(self.folder / f"{name}.trace.json")
        from .plot import plot_trace, save_figure

        save_figure(plot_trace(trace, title=title), self.folder / f"{name}.png")  # shown by the view already
        if table:
            from .display import TraceView

            _display(TraceView(trace, image=False))

    def compare(self, traces: Sequence, labels: Sequence[str], name: str, *, title: str | None = None,
                decorate: Callable | None = None) -> None:
        """Plot traces one above the other on a shared time axis; save ``<name>.png`` and each trace's JSON.

        ``decorate(axes)``, if given, draws on the figure's Axes (one per trace, top first) before it is
        saved: a notebook marks what its text points at, e.g. a deadline.
        """
        from .plot import plot_compare

        self.folder.mkdir(parents=True, exist_ok=True)
        for trace, label in zip(traces, labels):
            trace.save(self.folder / f"{name}-{_slug(label)}.trace.json")
        figure = plot_compare(list(traces), list(labels), title=title)
        if decorate is not None:
            decorate(list(figure.axes[:len(traces)]))
        self._show(figure, name)

    def _show(self, figure, name: str) -> None:
        from .plot import save_figure

        path = self.folder / f"{name}.png"
        save_figure(figure, path)
        try:
            from IPython.display import Image
        except ImportError:  # plain Python: the file is the result
            print(f"saved {path}")
            return
        _display(Image(filename=str(path)))


@contextmanager
def expected(why: str) -> Iterator[None]:
    """Add *why* a self-check expected what it did to its failure message.

    Checks compute their expectations from the notebook's parameters; when a learner
    changed one, the failure should say which rule and which value led to it::

        with expected(f"grace_period_s = {grace_period_s}: SIGKILL comes that long after SIGTERM"):
            checks.report(checks.took(trace, "app SIGTERM", "app Killed", approx=grace_period_s))
    """
    try:
        yield
    except CheckFailed as exc:
        raise CheckFailed(f"{exc}\nWhy this was expected: {why}") from None


def show_manifest(source: str | Path | dict, *, lines: tuple[int, int] | None = None) -> None:
    """Show a manifest as the learner would read it: a file (with its path), YAML text, or an object.

    ``lines`` (1-based, inclusive) shows part of it.
    """
    if isinstance(source, dict):
        import yaml

        shown, text = "", yaml.safe_dump(source, sort_keys=False)
    elif isinstance(source, str) and "\n" in source:
        shown, text = "", source
    else:
        path = Path(source)
        text = path.read_text(encoding="utf-8")
        try:
            shown = str(path.resolve().relative_to(repo_root()))
        except (ValueError, InvalidInput):
            shown = str(path)
    if lines:
        text = "\n".join(text.splitlines()[lines[0] - 1:lines[1]])
    heading = f"`{shown}`\n\n" if shown else ""
    _display_markdown(f"{heading}```yaml\n{text.rstrip()}\n```", plain=(f"# {shown}\n" if shown else "") + text)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-") or "trace"


def _display(obj) -> None:
    try:
        from IPython.display import display
    except ImportError:
        print(repr(obj))
        return
    display(obj)


def _display_markdown(markdown: str, *, plain: str) -> None:
    try:
        from IPython.display import display
    except ImportError:
        print(plain)
        return
    display({"text/markdown": markdown, "text/plain": plain}, raw=True)
