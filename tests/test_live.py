"""The live timeline: redrawn in place while someone watches, one final figure otherwise.

A replayed trace stands in for a running backend (it calls listeners one event at a time),
a fake clock stands in for the wall clock, and a recorder stands in for IPython's display,
so what is checked is exactly what would be sent to the notebook. One test runs the same
code in a real IPython kernel, once as JupyterLab executes cells and once as nbclient
(papermill) does.
"""

from __future__ import annotations

import base64
import io
import os
import re
from pathlib import Path

import pytest

from labkit.display import LiveView, live, live_updates_supported, timeline_png, trace_text
from labkit.plot import ROLE_COLOURS
from labkit.trace import Trace, load_trace

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
BLOG_JOB = TESTS / "data" / "blog-job-trace.json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Pixels of a role's colour that mean its bar was drawn (the blog app's short run is ~300).
MIN_BAR_PIXELS = 100


def drawn_roles(png: bytes) -> set[str]:
    """The roles whose bars are in a PNG, found by decoding it and counting each role's colour.

    Checks what a figure shows without comparing bytes drawn in another process, whose fonts
    or matplotlib could differ by a pixel.
    """
    from PIL import Image

    assert png.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    width, height = image.size
    assert width >= 600 and height >= 200, image.size  # a timeline, not an icon
    counts = {"#%02X%02X%02X" % rgb: n for n, rgb in image.getcolors(width * height)}
    return {role for role, colour in ROLE_COLOURS.items() if counts.get(colour.upper(), 0) >= MIN_BAR_PIXELS}


def html_png(html: str) -> bytes:
    """The PNG embedded in a live frame's HTML."""
    return base64.b64decode(re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1))


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ReplayLab:
    """Plays a recorded trace to listeners one event at a time, as a running backend does.

    Each event takes ``step`` seconds of (fake) wall time.
    """

    def __init__(self, trace: Trace, clock: Clock, step: float = 0.25):
        self.full, self.clock, self.step = trace, clock, step
        self.listeners: list = []
        self.shown = 0

    def add_listener(self, fn):
        self.listeners.append(fn)
        return lambda: self.listeners.remove(fn)

    def prefix(self, count: int) -> Trace:
        full = self.full
        return Trace(full.backend, full.kubernetes_version, dict(full.feature_gates), full.origin, full.pods,
                     full.events[:count], dict(full.extra))

    def run(self) -> None:
        for count in range(1, len(self.full.events) + 1):
            self.shown = count
            self.clock.now += self.step
            for listener in list(self.listeners):
                listener(self.prefix(count))

    def trace(self) -> Trace:
        return self.prefix(self.shown)


class Recorder:
    """Stands in for IPython.display.display: records what was shown and updated."""

    def __init__(self):
        self.shown: list = []
        self.handles: list = []

    def __call__(self, obj, display_id=None):
        self.shown.append(obj)
        if display_id:
            handle = Handle()
            self.handles.append(handle)
            return handle
        return None


class Handle:
    def __init__(self):
        self.updates: list = []

    def update(self, obj):
        self.updates.append(obj)


def test_live_view_redraws_at_most_once_per_interval_with_growing_content_then_shows_the_final_figure():
    clock, recorder = Clock(), Recorder()
    lab = ReplayLab(load_trace(BLOG_JOB), clock, step=0.25)  # 12 events over 3 s of wall time
    with live(lab, title="blog job", live=True, interval=1.0, display=recorder, clock=clock) as view:
        assert len(lab.listeners) == 1
        lab.run()
    assert lab.listeners == []  # stopped listening when the block ended
    assert len(recorder.handles) == 1 and len(recorder.shown) == 1  # one output, updated in place
    *frames, final = recorder.handles[0].updates
    # 3 s of wall time at one redraw per second: after events 4, 8 and 12.
    assert len(frames) == 3 == view.updates
    assert [frame.spans for frame in frames] == [1, 2, 2]  # the app's run appears in the second frame
    assert ["t = 10.1s" in frames[0].status, "t = 11.7s" in frames[1].status, "t = 12.9s" in frames[2].status] == [True] * 3
    pngs = [frame.png for frame in frames]
    assert all(png.startswith(PNG_SIGNATURE) for png in pngs)
    assert len(set(pngs)) == 3  # each redraw shows more of the timeline
    assert "data:image/png;base64," in frames[0]._repr_html_()
    # It settles on the final figure: the whole trace, as a plain PNG image output.
    assert final._repr_png_() == timeline_png(load_trace(BLOG_JOB), title="blog job")
    assert repr(final).splitlines()[0] == "blog job"  # logs get the title and the text summary
    assert "sidecar-job-x7k2p   Succeeded   sws-init      sidecar   terminated" in repr(final)


def test_redraws_follow_the_wall_clock_not_the_number_of_events():
    clock, recorder = Clock(), Recorder()
    lab = ReplayLab(load_trace(BLOG_JOB), clock, step=0.05)  # all 12 events within 0.6 s
    with live(lab, live=True, interval=1.0, display=recorder, clock=clock):
        lab.run()
    updates = recorder.handles[0].updates
    assert len(updates) == 1  # no redraw in between, only the final figure
    assert updates[0]._repr_png_() == timeline_png(load_trace(BLOG_JOB))


def test_without_a_watcher_exactly_one_final_figure_is_shown():
    clock, recorder = Clock(), Recorder()
    lab = ReplayLab(load_trace(BLOG_JOB), clock)
    with live(lab, live=False, display=recorder, clock=clock) as view:
        lab.run()
    assert lab.listeners == [] and recorder.handles == [] and view.updates == 0
    assert len(recorder.shown) == 1
    assert recorder.shown[0]._repr_png_() == timeline_png(load_trace(BLOG_JOB))


def test_the_final_figure_is_shown_even_when_the_block_fails_and_the_error_is_kept():
    clock, recorder = Clock(), Recorder()
    lab = ReplayLab(load_trace(BLOG_JOB), clock)
    with pytest.raises(RuntimeError, match="wait ran out"):
        with live(lab, live=False, display=recorder, clock=clock):
            lab.run()
            raise RuntimeError("wait ran out")
    assert recorder.shown[0]._repr_png_().startswith(PNG_SIGNATURE)


def test_an_empty_run_shows_the_summary_instead_of_an_empty_figure():
    clock, recorder = Clock(), Recorder()
    lab = ReplayLab(Trace("sim", "1.29.0"), clock)
    with live(lab, live=False, display=recorder, clock=clock):
        lab.run()
    assert "0 pod(s), 0 events" in repr(recorder.shown[0])


def test_live_view_follows_a_simulated_job():
    """SimLab calls listeners as virtual time advances; its virtual clock drives the throttle here."""
    from labkit.lab import connect

    lab = connect("sim", "1.29", quiet=True)
    lab.apply(REPO / "manifests" / "job-sidecar.yaml")
    recorder = Recorder()
    with live(lab, title="sidecar-job", live=True, interval=1.0, display=recorder, clock=lambda: lab.now):
        lab.wait("job/sidecar-job", "Complete", timeout=120)
    *frames, final = recorder.handles[0].updates
    assert len(frames) >= 2, [frame.status for frame in frames]
    counts = [frame.spans for frame in frames]
    assert counts == sorted(counts) and counts[-1] > counts[0]  # the app's run appears while we watch
    assert len({frame.png for frame in frames}) == len(frames)
    assert final._repr_png_() == timeline_png(lab.trace(), title="sidecar-job")
    lab.sleep(5)  # the view stopped listening when the block ended
    assert len(recorder.handles[0].updates) == len(frames) + 1


class _Kernel:
    def __init__(self, allow_stdin):
        self.allow_stdin = allow_stdin

    def get_parent(self):
        return {"content": {"allow_stdin": self.allow_stdin}}


class _Shell:
    def __init__(self, allow_stdin):
        self.kernel = _Kernel(allow_stdin)


@pytest.mark.parametrize("shell, env, expected", [
    (None, None, False),                    # plain Python, a script, pytest
    (_Shell(True), None, True),             # JupyterLab / Notebook / VS Code run the cell
    (_Shell(False), None, False),           # nbclient, papermill, labkit run
    (_Shell(True), "0", False),             # switched off by the user
    (_Shell(True), "1", True),
])
def test_auto_mode_updates_live_only_for_an_interactive_frontend(monkeypatch, shell, env, expected):
    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    env = {} if env is None else {"LABKIT_LIVE": env}
    supported, why = live_updates_supported(env)
    assert supported is expected, why
    assert LiveView(ReplayLab(load_trace(BLOG_JOB), Clock()), env=env).live is expected


def test_live_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match="live must be True, False or 'auto'"):
        live(ReplayLab(load_trace(BLOG_JOB), Clock()), live="yes")


# -- in a real kernel ---------------------------------------------------------------------
KERNEL_CODE = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
from test_live import Clock, ReplayLab
from labkit.display import live
from labkit.trace import load_trace
clock = Clock()
lab = ReplayLab(load_trace({str(BLOG_JOB)!r}), clock, step=0.25)
with live(lab, title="blog job", interval=1.0, clock=clock):
    lab.run()
"""


def _execute(client, code: str, allow_stdin: bool) -> list[dict]:
    """Run code in the kernel; return its iopub messages up to idle."""
    msg_id = client.execute(code, allow_stdin=allow_stdin)
    messages = []
    while True:
        msg = client.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return messages


@pytest.fixture(scope="module")
def kernel():
    from jupyter_client.manager import start_new_kernel

    env = {key: value for key, value in os.environ.items() if key not in ("LABKIT_LIVE", "LABKIT_PROGRESS")}
    manager, client = start_new_kernel(kernel_name="python3", startup_timeout=60, cwd=str(TESTS.parent), env=env)
    try:
        yield client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def _outputs(messages):
    return [(m["msg_type"], m["content"]) for m in messages
            if m["msg_type"] in ("display_data", "update_display_data", "stream", "error", "execute_result")]


def test_in_a_kernel_run_by_jupyterlab_the_output_is_updated_in_place(kernel):
    outputs = _outputs(_execute(kernel, KERNEL_CODE, allow_stdin=True))
    assert [kind for kind, _ in outputs] == ["display_data"] + ["update_display_data"] * 4, outputs
    display_id = outputs[0][1]["transient"]["display_id"]
    assert all(content["transient"]["display_id"] == display_id for _, content in outputs)
    frames = [content["data"] for _, content in outputs[1:-1]]
    assert all("text/html" in frame and "data:image/png;base64," in frame["text/html"] for frame in frames)
    # The timeline grows: the sidecar first, then the app's run too (after events 4, 8, 12).
    pngs = [html_png(frame["text/html"]) for frame in frames]
    assert [drawn_roles(png) for png in pngs] == [{"sidecar"}, {"sidecar", "app"}, {"sidecar", "app"}]
    # It settles on a plain image of the whole trace: the last frame's picture, and its summary for logs.
    final = outputs[-1][1]["data"]
    assert "text/html" not in final
    assert base64.b64decode(final["image/png"]) == pngs[-1]  # both drawn in the kernel, from all 12 events
    assert final["text/plain"] == "blog job\n" + trace_text(load_trace(BLOG_JOB))


def test_in_a_kernel_run_by_nbclient_or_papermill_only_the_final_figure_is_shown(kernel):
    outputs = _outputs(_execute(kernel, KERNEL_CODE, allow_stdin=False))
    assert [kind for kind, _ in outputs] == ["display_data"], outputs
    assert "transient" not in outputs[0][1] or not outputs[0][1]["transient"].get("display_id")
    final = outputs[0][1]["data"]
    assert drawn_roles(base64.b64decode(final["image/png"])) == {"sidecar", "app"}
    assert final["text/plain"] == "blog job\n" + trace_text(load_trace(BLOG_JOB))  # the whole trace was drawn



# -- headless, as papermill runs a notebook -------------------------------------------------
def _papermill_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("steps = 40", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "import time\n"
            "from labkit.progress import progress\n"
            "with progress(total=steps, desc='pods Ready') as bar:\n"
            "    for _ in range(steps):\n"
            "        time.sleep(0.02)\n"
            "        bar.update(1)\n"
            "with progress(total=3, desc='node image pulled') as bar:\n"
            "    bar.update(3)\n"),
        nbformat.v4.new_code_cell(
            f"import sys\nsys.path.insert(0, {str(TESTS)!r})\n"
            "from test_live import Clock, ReplayLab\n"
            "from labkit.display import live\n"
            "from labkit.trace import load_trace\n"
            "clock = Clock()\n"
            f"lab = ReplayLab(load_trace({str(BLOG_JOB)!r}), clock, step=0.25)\n"
            "with live(lab, title='blog job', interval=1.0, clock=clock):\n"
            "    lab.run()\n"),
    ]
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def papermill_cells(tmp_path_factory):
    """Plain ``papermill in.ipynb out.ipynb``, as a CI job would call it, outside CI."""
    import os
    import subprocess
    import sys

    import nbformat

    tmp = tmp_path_factory.mktemp("papermill")
    source, executed = tmp / "in.ipynb", tmp / "out.ipynb"
    _papermill_notebook(source)
    env = {key: value for key, value in os.environ.items()
           if key not in ("CI", "GITHUB_ACTIONS", "LABKIT_PROGRESS", "LABKIT_LIVE")}
    subprocess.run([sys.executable, "-m", "papermill", str(source), str(executed), "--kernel", "python3",
                    "--no-progress-bar", "--cwd", str(tmp)],
                   env=env, check=True, capture_output=True, text=True, timeout=120)
    return nbformat.read(executed, as_version=4).cells


def test_papermill_output_has_one_short_line_per_progress_stage_and_no_bar(papermill_cells):
    outputs = papermill_cells[1].outputs
    text = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    assert "\r" not in text, f"a progress bar was written into the notebook: {text[:300]!r}"
    assert "it/s" not in text and "|" not in text, text[:300]
    lines = text.splitlines()
    assert [line.split(":")[0] for line in lines] == ["pods Ready", "node image pulled"], lines
    assert all(len(line) < 100 for line in lines), lines


def test_papermill_output_has_the_final_figure_once_and_no_live_frames(papermill_cells):
    outputs = papermill_cells[2].outputs
    assert [out.output_type for out in outputs] == ["display_data"], outputs
    assert "text/html" not in outputs[0].data  # no live frame: the image itself
    assert outputs[0].data["text/plain"] == "blog job\n" + trace_text(load_trace(BLOG_JOB))  # for --log-output
    assert drawn_roles(base64.b64decode(outputs[0].data["image/png"])) == {"sidecar", "app"}
