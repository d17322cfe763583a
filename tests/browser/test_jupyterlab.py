"""The lab in a real browser: JupyterLab in headless Chromium runs a notebook end to end.

Each test opens a notebook in JupyterLab, runs all cells from the Run menu, waits for the
kernel to finish, and checks what a learner would see: a timeline image, the self-checks'
"✓" lines, and no traceback. It leaves a screenshot in test-artifacts/ to look at.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
import pytest

from .conftest import ARTIFACTS, REPO

pytestmark = pytest.mark.browser

PAGE_TIMEOUT_MS = 30_000
KERNEL_START_TIMEOUT_S = 90  # beyond jupyter_server's 60 s for a kernel to start, so that it gives up first
RUN_TIMEOUT_MS = 90_000  # all cells of a notebook on the simulator, kernel start included
ERROR_OUTPUT = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'

# Done when no cell is queued or running and either every code cell has run or one failed
# (JupyterLab stops "Run All" at the first error and leaves the rest unnumbered).
_FINISHED_JS = r"""() => {
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
      .map(p => p.textContent.trim());
  if (prompts.length === 0 || prompts.some(p => p.includes('*'))) return false;
  const failed = [...document.querySelectorAll('%s')].some(o => o.textContent.includes('Traceback'));
  return failed || prompts.every(p => /\d/.test(p));
}""" % ERROR_OUTPUT


def blog_job_notebook() -> Path:
    """The notebook that walks through the blog's Job with a native sidecar."""
    notebooks = REPO / "notebooks"
    found = sorted(notebooks.glob("04-*job*.ipynb")) or sorted(notebooks.glob("*job*.ipynb"))
    assert found, f"no Job notebook in {notebooks} (expected notebooks/04-*job*.ipynb)"
    return found[0]


def display_notebook(root: Path) -> Path:
    """A small notebook of our own that uses every display: live view, trace summary, pods.

    The simulator is paced (4 virtual seconds per second) so that the timeline grows
    while JupyterLab watches, as it does for a learner.
    """
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# labkit display check\nThe blog's Job with a native sidecar, simulated."),
        nbformat.v4.new_code_cell('from labkit import checks, display\nfrom labkit.lab import connect\n'
                                  'lab = connect("sim", "1.29", pace=4)\nlab.apply("manifests/job-sidecar.yaml")'),
        nbformat.v4.new_code_cell('with display.live(lab, title="Job with a native sidecar", interval=0.5) as view:\n'
                                  '    lab.wait("job/sidecar-job", "Complete", timeout=120)\n'
                                  'print(f"live redraws: {view.updates} ({view.why})")'),
        nbformat.v4.new_code_cell("trace = lab.trace()\ntrace"),
        nbformat.v4.new_code_cell("lab.pods()"),
        nbformat.v4.new_code_cell('checks.report(checks.started_before(trace, "sws-init", "sidecar-job"),\n'
                                  '              checks.job_complete(trace, "sidecar-job"))'),
    ]
    path = root / "labkit-display-check.ipynb"
    nbformat.write(nb, path)
    return path


def open_notebook(browser, server, notebook: Path):
    """Open ``notebook`` (under the server root) in JupyterLab and wait for an idle kernel."""
    relative = notebook.relative_to(server.root).as_posix()
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    # A workspace of its own, so that no tab from an earlier test is restored beside it.
    page.goto(f"{server.url}/lab/workspaces/{notebook.stem}/tree/{relative}?token={server.token}")
    try:
        page.wait_for_selector(".jp-Notebook .jp-Cell")
        wait_for_idle_kernel(page, server, notebook)
    except Exception:
        save_screenshot(page, notebook, suffix="-failed")
        page.close()
        raise
    return page


def wait_for_idle_kernel(page, server, notebook: Path) -> None:
    """Wait until the notebook's kernel is idle and connected, taking the default in a kernel dialog
    whenever one shows.

    JupyterLab's execution indicator says "idle" before any kernel exists (then "initializing",
    "connecting", "unknown"), so the server is asked too: a session for this notebook whose kernel
    is idle with the page connected. A notebook without kernel metadata asks which kernel to use;
    on a loaded machine the dialog can show late, so it is looked for all along. The wait outlasts
    the server's own limit on a kernel start, so that a kernel that cannot start fails with the
    server's reason, shown with its log.
    """
    relative = notebook.relative_to(server.root).as_posix()
    indicator = page.locator(".jp-Notebook-ExecutionIndicator").first
    dialog = page.locator(".jp-Dialog")
    deadline = time.monotonic() + KERNEL_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if dialog.count() and dialog.first.is_visible():
            dialog.first.locator(".jp-mod-accept").click()
        kernel = _session_kernel(server, relative)
        if (kernel and kernel["execution_state"] == "idle" and kernel["connections"] > 0
                and indicator.count() and indicator.get_attribute("data-status") == "idle"):
            return
        page.wait_for_timeout(250)
    shown = indicator.get_attribute("data-status") if indicator.count() else "no execution indicator"
    dialogs = " | ".join(dialog.all_inner_texts()) or "none"
    raise AssertionError(f"the kernel of {relative} was not idle and connected after {KERNEL_START_TIMEOUT_S}s "
                         f"(JupyterLab shows: {shown}; dialogs: {dialogs}; the server's sessions: "
                         f"{server.api('/api/sessions')})\nJupyterLab's log ends:\n{server.log_tail()}")


def _session_kernel(server, path: str) -> dict | None:
    """The kernel of the server's session for the notebook at ``path`` (under its root), if any."""
    return next((s["kernel"] for s in server.api("/api/sessions") if s["path"] == path), None)


def run_all_cells(page) -> None:
    """Run > Run All Cells, as a learner does."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()


def wait_until_finished(page) -> None:
    page.wait_for_function(_FINISHED_JS, timeout=RUN_TIMEOUT_MS, polling=250)
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]')


def run_in_jupyterlab(browser, server, notebook: Path):
    """Open ``notebook``, run all cells, wait for the end; the caller checks the page and closes it."""
    page = open_notebook(browser, server, notebook)
    try:
        run_all_cells(page)
        wait_until_finished(page)
    except Exception:
        save_screenshot(page, notebook, suffix="-failed")
        page.close()
        raise
    return page


def error_outputs(page) -> list[str]:
    return [text for text in page.locator(ERROR_OUTPUT).all_inner_texts()
            if "Traceback" in text or "Error" in text]


def output_images(page) -> list[dict]:
    """Every decoded image in an output area: its source kind and natural size."""
    return page.eval_on_selector_all(
        ".jp-OutputArea-output img",
        "imgs => imgs.map(i => ({src: i.src.slice(0, 22), width: i.naturalWidth, height: i.naturalHeight,"
        " cls: i.className}))")


def output_text(page) -> str:
    return "\n".join(page.locator(".jp-OutputArea-output").all_inner_texts())


def save_screenshot(page, notebook: Path, suffix: str = "") -> Path:
    """Scroll the first timeline into view and save the page as a test artifact."""
    ARTIFACTS.mkdir(exist_ok=True)
    images = page.locator(".jp-OutputArea-output img")
    if images.count():
        images.first.evaluate("img => img.scrollIntoView({block: 'center'})")
        # Cells off screen are skipped by content-visibility: let two frames paint the new view.
        page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    path = ARTIFACTS / f"jupyterlab-{notebook.stem}{suffix}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_labkit_displays_render_in_jupyterlab(chromium, jupyterlab):
    notebook = display_notebook(jupyterlab.root)
    page = open_notebook(chromium, jupyterlab, notebook)
    try:
        run_all_cells(page)
        # While the Job runs, the output cell shows a live frame: a status line and the timeline so far.
        status = page.wait_for_function(
            "() => document.querySelector('.jp-OutputArea-output .labkit-live')?.textContent",
            timeout=RUN_TIMEOUT_MS, polling="raf").json_value()
        assert status.startswith("Job with a native sidecar:"), status
        wait_until_finished(page)
        assert page.locator(".jp-OutputArea-output .labkit-live").count() == 0  # settled on the final figure
        shot = save_screenshot(page, notebook)
        assert error_outputs(page) == [], f"error output in the notebook; see {shot}"
        text = output_text(page)
        # JupyterLab is a frontend someone watches: the timeline was redrawn while the Job ran.
        redraws = re.search(r"live redraws: (\d+) \((.*)\)", text)
        assert redraws, text
        assert int(redraws.group(1)) >= 2 and redraws.group(2) == "interactive Jupyter frontend", redraws.group(0)
        images = [i for i in output_images(page) if i["src"] == "data:image/png;base64," and i["width"] > 300]
        assert len(images) == 2, output_images(page)  # the live view's final figure and the summary's
        summary = page.locator(".jp-OutputArea-output .labkit-trace")
        assert summary.count() == 1
        assert "simulated" in summary.inner_text()
        assert summary.locator(".labkit-container").all_inner_texts() == ["sws-init", "sidecar-job"]
        assert summary.locator(".labkit-role-sidecar").all_inner_texts() == ["sidecar"]
        pods = page.locator(".jp-OutputArea-output table.labkit-pods")
        assert pods.locator("th").all_inner_texts() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        assert pods.locator("td").all_inner_texts()[1:3] == ["0/2", "Completed"]
        assert len(re.findall(r"^✓ ", text, re.MULTILINE)) == 2, text
    finally:
        page.close()


def test_blog_job_notebook_runs_in_jupyterlab(chromium, jupyterlab):
    notebook = jupyterlab.root / blog_job_notebook().relative_to(REPO)
    page = run_in_jupyterlab(chromium, jupyterlab, notebook)
    try:
        shot = save_screenshot(page, notebook)
        assert error_outputs(page) == [], f"error output in the notebook; see {shot}"
        images = output_images(page)
        assert any(i["width"] > 300 and i["height"] > 100 for i in images), f"no timeline image: {images}"
        text = output_text(page)
        assert re.search(r"^✓ ", text, re.MULTILINE), f"no passing self-check line in the outputs:\n{text[-2000:]}"
    finally:
        page.close()
