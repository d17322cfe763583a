"""``labkit run`` end to end on small notebooks: outputs, report, failures, bad input.

The notebooks here are written by the tests and do not need the simulator: they save a
PNG and a trace where the lab's notebooks would, so these tests check labkit run alone.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from labkit.cli import main
from labkit.errors import InvalidInput
import labkit.run as run_module
from labkit.run import headless_parameters, parse_parameter, run_notebooks
from labkit.run_report import summary
from labkit.versions import KubeVersion

PARAMETERS = '''backend = "auto"
k8s_version = "1.29"
cluster_name = "sidecar-lab"
keep_cluster = False
timeout_s = 300
output_dir = "build"
grace_period_s = 30
'''

SAVE_OUTPUTS = '''
import os
from pathlib import Path
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from labkit.trace import Trace
folder = Path(output_dir) / NAME
folder.mkdir(parents=True, exist_ok=True)
fig, ax = plt.subplots(figsize=(2, 1))
ax.plot([0, grace_period_s], [0, 1])
fig.savefig(folder / "timeline.png")
Trace(backend=backend, kubernetes_version=k8s_version).save(folder / "timeline.trace.json")
print("saved in", folder, "cwd", os.getcwd())
'''


def write_notebook(path: Path, *cells: str, parameters: str = PARAMETERS, headless: object = None) -> Path:
    nb = new_notebook(cells=[new_markdown_cell("A test notebook."),
                             new_code_cell(parameters, metadata={"tags": ["parameters"]}),
                             *(new_code_cell(source) for source in cells)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if headless is not None:
        nb.metadata["labkit"] = {"headless_parameters": headless}
    nbformat.write(nb, path)
    return path


@pytest.fixture()
def books(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    write_notebook(folder / "01-first.ipynb", f"NAME = '01-first'\n{SAVE_OUTPUTS}",
                   "print(f'backend={backend} version={k8s_version} grace={grace_period_s!r} keep={keep_cluster}')",
                   "print('LABKIT_PROGRESS=' + os.environ.get('LABKIT_PROGRESS', 'unset'))")
    write_notebook(folder / "02-second.ipynb", f"NAME = '02-second'\n{SAVE_OUTPUTS}")
    write_notebook(folder / "03-broken.ipynb", "x = 1",
                   "assert x == 2, 'x should be 2 by now'\nprint('never')", "print('after the failure')")
    return folder


def outputs_text(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs)


def injected_parameters(path: Path) -> str:
    return next(c.source for c in nbformat.read(path, as_version=4).cells
                if "injected-parameters" in c.metadata.get("tags", []))


def test_run_writes_notebooks_figures_traces_and_report(books: Path, tmp_path: Path, capsys):
    out = tmp_path / "build"
    code = main(["run", str(books / "01-first.ipynb"), str(books / "02-second.ipynb"),
                 "--backend", "sim", "--k8s-version", "1.28", "-p", "grace_period_s", "7", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured
    for stem in ("01-first", "02-second"):
        assert (out / f"{stem}.ipynb").is_file()
        png = out / stem / "timeline.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        trace = json.loads((out / stem / "timeline.trace.json").read_text())
        assert trace["backend"] == "sim" and trace["kubernetes_version"] == "1.28"
    # Parameters arrive typed: the version stays a string, the grace period is an int.
    text = outputs_text(out / "01-first.ipynb")
    assert "backend=sim version=1.28 grace=7 keep=False" in text
    assert f"cwd {books}" in text  # the notebook ran in its own folder
    assert "LABKIT_PROGRESS=0" in text  # slow steps in the kernel print one line, no bar
    page = (out / "index.html").read_text()
    rows = re.findall(r"<tr class=\"(\w+)\"><td><a href=\"([^\"]+)\">", page)
    assert rows == [("passed", "01-first.ipynb"), ("passed", "02-second.ipynb")]
    assert '<img src="01-first/timeline.png"' in page and '<img src="02-second/timeline.png"' in page
    assert '01-first/timeline.trace.json' in page
    assert re.search(r"01-first\.ipynb\s+passed\s+[\d.]+s\s+1\n", captured.out)
    assert "2 passed, 0 failed" in captured.out
    # Not interactive: one progress line per notebook, nothing per cell (in the order they finish:
    # by default the simulator's notebooks run side by side where there are cores).
    assert captured.err.count("\n") == 2
    lines = re.findall(r"^\[(\d)/2\] (\S+) passed in [\d.]+s$", captured.err, re.M)
    assert [n for n, _ in lines] == ["1", "2"] and {name for _, name in lines} == {"01-first.ipynb", "02-second.ipynb"}


def test_failing_cell_is_named_and_the_notebook_is_still_written(books: Path, tmp_path: Path, capsys):
    out = tmp_path / "build"
    code = main(["run", str(books / "03-broken.ipynb"), str(books / "02-second.ipynb"), "--backend", "sim",
                 "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    # cell 4 of the source notebook (markdown, parameters, x = 1, assert): papermill's
    # injected-parameters cell is not counted.
    assert ('FAILED 03-broken.ipynb: cell 4 ("assert x == 2, \'x should be 2 by now\'"): '
            "AssertionError: x should be 2 by now") in captured.out
    assert "1 passed, 1 failed" in captured.out
    executed = nbformat.read(out / "03-broken.ipynb", as_version=4)
    errors = [o for cell in executed.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"]
    assert [e.ename for e in errors] == ["AssertionError"]
    assert "after the failure" not in outputs_text(out / "03-broken.ipynb")
    # The notebook after the failing one still ran.
    assert (out / "02-second" / "timeline.png").is_file()
    page = (out / "index.html").read_text()
    assert re.findall(r"<tr class=\"(\w+)\"><td><a href=\"([^\"]+)\">", page) == [
        ("failed", "03-broken.ipynb"), ("passed", "02-second.ipynb")]
    assert "cell 4" in page and "AssertionError: x should be 2 by now" in page


def test_only_this_runs_files_are_reported(books: Path, tmp_path: Path):
    out = tmp_path / "build"
    stale = out / "02-second" / "old-figure.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left over from an earlier run")
    import os
    os.utime(stale, (1_000_000_000, 1_000_000_000))
    report = run_notebooks([books / "02-second.ipynb"], backend="sim", out=out, progress=False)
    assert [p.name for p in report.results[0].figures] == ["timeline.png"]
    assert stale.exists()  # never deleted: it may be the user's


@pytest.mark.parametrize("argv, message", [
    (["run", "missing.ipynb"], "missing.ipynb: no such notebook"),
    (["run", "{books}/01-first.ipynb", "-p", "grace_period_s", "soon"],
     "-p grace_period_s: expected an int like the notebook's default 30, got 'soon'"),
    (["run", "{books}/01-first.ipynb", "-p", "nonsense", "1"], "-p nonsense: no notebook being run has a parameter 'nonsense'"),
    (["run", "{books}/01-first.ipynb", "-p", "backend", "kind"], "-p backend: set by labkit run itself: use --backend"),
    (["run", "{books}/01-first.ipynb", "-p", "2x", "1"], "-p 2x: not a Python variable name: '2x'"),
    (["run", "{books}/01-first.ipynb", "--k8s-version", "banana"], "not a Kubernetes version: 'banana'"),
    (["run", "{books}/01-first.ipynb", "--out", "{books}"], "is the notebook's own folder"),
    (["run", "{books}/01-first.ipynb", "--backend", "docker"], "argument --backend: invalid choice: 'docker'"),
])
def test_bad_input_exits_2_with_one_line(books: Path, tmp_path: Path, capsys, argv, message):
    argv = [a.replace("{books}", str(books)) for a in argv]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "o")]
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse's own usage errors
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()  # nothing ran, nothing written


def test_a_notebook_asks_for_headless_parameters_and_p_wins(books: Path, tmp_path: Path, capsys):
    """metadata.labkit.headless_parameters: given by labkit run, unless -p sets the same name."""
    path = write_notebook(books / "05-headless.ipynb", parameters=PARAMETERS + "solved = False\n",
                          headless={"solved": True, "grace_period_s": 12})
    write_notebook(books / "06-check.ipynb", "assert solved, 'not solved yet'", parameters=PARAMETERS + "solved = False\n",
                   headless={"solved": True})
    assert headless_parameters(path) == {"solved": True, "grace_period_s": 12}
    out = tmp_path / "o"
    assert main(["run", str(path), str(books / "06-check.ipynb"), "--backend", "sim", "--out", str(out)]) == 0
    captured = capsys.readouterr().out
    assert "05-headless.ipynb ran with grace_period_s=12, solved=True, as its metadata asks for headless runs" in captured
    page = (out / "index.html").read_text()
    assert "with grace_period_s=12, solved=True (its headless_parameters)" in page
    assert "grace_period_s = 12" in injected_parameters(out / "05-headless.ipynb")

    code = main(["run", str(path), str(books / "06-check.ipynb"), "--backend", "sim", "--out", str(out),
                 "-p", "solved", "false", "-p", "grace_period_s", "7"])
    captured = capsys.readouterr().out
    assert code == 1
    assert "FAILED 06-check.ipynb: cell 3 (\"assert solved, 'not solved yet'\"): AssertionError: not solved yet" in captured
    assert "ran with" not in captured  # -p replaced every headless value
    injected = injected_parameters(out / "05-headless.ipynb")
    assert "solved = False" in injected and "grace_period_s = 7" in injected


def test_headless_parameters_only_those_the_notebook_declares(books: Path):
    path = write_notebook(books / "05-headless.ipynb")
    assert headless_parameters(path) == {}  # no metadata: nothing asked for


@pytest.mark.parametrize("headless, message", [
    ({"nosuch": 1}, "05-bad.ipynb: metadata.labkit.headless_parameters.nosuch: the notebook has no parameter 'nosuch'"),
    ({"backend": "kind"}, "metadata.labkit.headless_parameters.backend: set by labkit run itself"),
    ({"cluster_name": "other"}, "metadata.labkit.headless_parameters.cluster_name: set by labkit run itself"),
    ({"grace_period_s": "ten"}, "headless_parameters.grace_period_s: expected a value like the notebook's default 30, "
                                "got 'ten'"),
    ({"grace_period_s": True}, "expected a value like the notebook's default 30, got True"),
    (["grace_period_s"], "metadata.labkit.headless_parameters: expected a mapping of parameter names to values"),
])
def test_bad_headless_parameters_are_bad_input(books: Path, tmp_path: Path, capsys, headless, message):
    path = write_notebook(books / "05-bad.ipynb", headless=headless)
    with pytest.raises(InvalidInput, match=re.escape(message)):
        headless_parameters(path)
    assert main(["run", str(path), "--backend", "sim", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()  # nothing ran


def test_unreadable_notebook_is_bad_input(tmp_path: Path):
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    with pytest.raises(InvalidInput, match="broken.ipynb: not a readable notebook"):
        run_notebooks([broken], backend="sim", out=tmp_path / "o")


@pytest.mark.parametrize("default, text, expected", [
    ('"1.29"', "1.30", "1.30"),
    ("'auto'", "true", "true"),
    ("300", "10", 10),
    ("2.5", "2", 2),
    ("2.5", "0.25", 0.25),
    ("False", "true", True),
    ("True", "False", False),
    ("None", "hello", "hello"),
    ("None", "3", 3),
    ("some_name", "[1, 2]", "[1, 2]"),
    ('["proxy", "log-shipper"]', "[log-shipper, proxy]", ["log-shipper", "proxy"]),
    ("{'a': 1}", "{a: 2}", {"a": 2}),
])
def test_parameters_are_parsed_like_papermill_keeping_strings(default, text, expected):
    value = parse_parameter("x", text, default)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("default, text, message", [
    ("300", "true", "expected an int like the notebook's default 300, got 'true'"),
    ("300", "1.5", "expected an int"),
    ("False", "1", "expected a bool like the notebook's default False, got '1'"),
    ("['proxy']", "proxy", "expected a YAML list like [a, b], as the notebook's default ['proxy'], got 'proxy'"),
])
def test_a_value_of_the_wrong_type_is_bad_input(default, text, message):
    with pytest.raises(InvalidInput, match=re.escape(message)):
        parse_parameter("x", text, default)


def test_summary_lists_each_notebook(books: Path, tmp_path: Path):
    report = run_notebooks([books / "02-second.ipynb"], backend="sim", out=tmp_path / "o", progress=False)
    text = summary(report)
    assert text.splitlines()[0].split() == ["notebook", "status", "time", "timelines"]
    assert "02-second.ipynb" in text and "1 passed, 0 failed" in text


def test_parallel_jobs_keep_the_notebook_order(books: Path, tmp_path: Path):
    out = tmp_path / "build"
    report = run_notebooks([books / "03-broken.ipynb", books / "01-first.ipynb", books / "02-second.ipynb"],
                           backend="sim", out=out, progress=False, jobs=2)
    assert [(r.name, r.status) for r in report.results] == [
        ("03-broken.ipynb", "failed"), ("01-first.ipynb", "passed"), ("02-second.ipynb", "passed")]
    assert report.results[0].failed_cell == 4
    assert [p.name for p in report.results[1].figures] == ["timeline.png"]


LEAKS = '''
import os, sys
import labkit.checks
LEAKED_GLOBAL = "from the notebook before"
labkit.checks.report = lambda *args, **kwargs: "patched by the notebook before"
os.environ["LABKIT_LEAKED"] = "1"
sys.modules["leaked_module"] = sys
'''

SEES_NO_LEAK = '''
import os, sys
import labkit.checks
assert "LEAKED_GLOBAL" not in globals(), "a global of another notebook"
assert labkit.checks.report.__module__ == "labkit.checks", "labkit as another notebook patched it"
assert "LABKIT_LEAKED" not in os.environ and "leaked_module" not in sys.modules
print("fresh")
'''


@pytest.mark.parametrize("jobs", [1, 2])
def test_each_notebook_runs_in_a_fresh_kernel(tmp_path: Path, jobs: int):
    """A notebook's globals, monkeypatches of labkit, environment and imports die with its kernel."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    paths = []
    for index in range(2):
        paths.append(write_notebook(folder / f"{2 * index + 1:02d}-leaks.ipynb", LEAKS))
        paths.append(write_notebook(folder / f"{2 * index + 2:02d}-checks.ipynb", SEES_NO_LEAK))
    report = run_notebooks(paths, backend="sim", out=tmp_path / "o", progress=False, jobs=jobs)
    assert [(r.name, r.status, r.error) for r in report.results] == [(p.name, "passed", None) for p in paths]
    assert all("fresh" in outputs_text(tmp_path / "o" / p.name) for p in paths[1::2])


NAMESPACE = '''
import os, sys
print("preloaded", "matplotlib.pyplot" in sys.modules and "labkit.sim" in sys.modules)
print("names", sorted(name for name in globals() if not name.startswith("_")))
print("cwd", os.getcwd())
import matplotlib, numpy
print("linewidth", matplotlib.rcParams["lines.linewidth"])
print("process", os.getpid(), os.getppid(), os.getpgid(0) == os.getpid())
print("random", numpy.random.random())
'''


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kernels are forked on Linux only")
def test_kernels_are_forked_with_the_lab_imported_each_a_fresh_process_of_its_own(tmp_path: Path):
    """Every kernel is forked from a process that imported the lab once (one per folder: a
    matplotlibrc there counts), in its notebook's folder and its own session, sees the same
    names as a new kernel and draws its own random numbers; after the run none of them and
    no fork server is left."""
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (second / "matplotlibrc").write_text("lines.linewidth: 7\n")
    paths = [write_notebook(folder / f"{index:02d}-names.ipynb", NAMESPACE)
             for folder, index in ((first, 1), (first, 2), (second, 3), (first, 4))]
    report = run_notebooks(paths, backend="sim", out=tmp_path / "o", progress=False, jobs=2)
    assert [r.status for r in report.results] == ["passed"] * 4
    texts = [dict(line.split(" ", 1) for line in outputs_text(tmp_path / "o" / p.name).splitlines()) for p in paths]
    assert {t["preloaded"] for t in texts} == {"True"}
    assert len({t["names"] for t in texts}) == 1
    assert "LEAKED" not in texts[0]["names"] and "'grace_period_s'" in texts[0]["names"]  # the parameters, nothing else
    assert [t["cwd"] for t in texts] == [str(first), str(first), str(second), str(first)]
    assert [t["linewidth"] for t in texts] == ["1.5", "1.5", "7.0", "1.5"]
    processes = [t["process"].split() for t in texts]
    kernels, servers = {int(p[0]) for p in processes}, {int(p[1]) for p in processes}
    assert len(kernels) == 4 and len(servers) == 2                   # one fork server per folder
    assert {p[1] for p in processes[:2]} == {processes[3][1]} != {processes[2][1]}
    assert {p[2] for p in processes} == {"True"}                     # each its own process group
    assert len({t["random"] for t in texts}) == 4
    assert not [pid for pid in kernels | servers if _running(pid)]


def _gone(pids: list[int], within_s: float = 30) -> bool:
    """Whether every process of ``pids`` has ended, waiting up to ``within_s`` for it."""
    deadline = time.monotonic() + within_s
    while any(map(_running, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(map(_running, pids))


def _fork_a_kernel(folder: Path) -> tuple[subprocess.Popen, int]:
    """A fork server in ``folder``, and the pid of a kernel it forked, once that kernel listens."""
    server = subprocess.Popen([sys.executable, "-m", "labkit.kernel"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              cwd=folder, env={**os.environ, "MPLBACKEND": "agg"})
    request = {"cwd": str(folder), "connection_file": str(folder / "kernel.json")}
    server.stdin.write((json.dumps(request) + "\n").encode())
    server.stdin.flush()
    kernel = int(server.stdout.readline())
    deadline = time.monotonic() + 60
    while not (folder / "kernel.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)     # the kernel writes its connection file once it listens
    assert _running(kernel) and (folder / "kernel.json").exists()
    return server, kernel


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kernels are forked on Linux only")
def test_when_the_run_ends_the_fork_server_stops_a_kernel_left_running(tmp_path: Path):
    """A kernel no notebook shut down (labkit run failed or was killed: its end of the pipe
    closes) is stopped by the fork server, which then exits."""
    server, kernel = _fork_a_kernel(tmp_path)
    try:
        server.stdin.close()
        assert server.wait(timeout=30) == 0
        assert _gone([kernel])
    finally:
        server.kill()
        server.wait()


SLEEPS = '''
import os, pathlib, time
pathlib.Path(os.environ["MARKS"], pathlib.Path.cwd().name + "-" + str(os.getpid())).touch()
time.sleep(600)
'''


def test_ctrl_c_starts_no_further_notebook_and_stops_the_running_ones(tmp_path: Path):
    """Ctrl-C while two of four notebooks run: labkit run exits 130 well before their 600 s
    sleeps end, the two waiting never start, and no kernel of the run is left."""
    marks = tmp_path / "marks"
    marks.mkdir()
    paths = []
    for index in range(4):
        folder = tmp_path / f"nb{index}"
        folder.mkdir()
        paths.append(write_notebook(folder / f"{index:02d}-sleeps.ipynb", SLEEPS))
    run = subprocess.Popen([sys.executable, "-m", "labkit", "run", *map(str, paths), "--backend", "sim", "--jobs", "2",
                            "--out", str(tmp_path / "o")], env={**os.environ, "MARKS": str(marks)},
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while len(list(marks.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        started = sorted(p.name for p in marks.iterdir())
        assert [name.split("-")[0] for name in started] == ["nb0", "nb1"], started
        run.send_signal(signal.SIGINT)
        output, _ = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode == 130 and output.splitlines()[-1] == "labkit: interrupted", output
    assert "Kernel died" not in output                                   # stopped on purpose, not died
    assert sorted(p.name for p in marks.iterdir()) == started            # nb2 and nb3 never started
    assert (tmp_path / "o" / "00-sleeps.ipynb").is_file() and (tmp_path / "o" / "01-sleeps.ipynb").is_file()
    report = (tmp_path / "o" / "index.html").read_text()
    statuses = re.findall(r'<tr class="([a-z-]+)"><td><a href="\d\d-sleeps.ipynb">|<tr class="([a-z-]+)"><td>\d\d-sleeps', report)
    assert [a or b for a, b in statuses] == ["interrupted", "interrupted", "not-run", "not-run"], report
    assert _gone([int(name.split("-")[1]) for name in started])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kernels are forked on Linux only")
def test_a_forked_kernel_ends_when_its_fork_server_is_killed(tmp_path: Path):
    """labkit run killed outright: its fork server is killed with it, and ipykernel's watch on its
    parent (the fork server, not labkit run) ends the kernel."""
    server, kernel = _fork_a_kernel(tmp_path)
    try:
        server.kill()
        server.wait()
        assert _gone([kernel])
    finally:
        server.kill()
        server.wait()


def test_once_the_run_s_kernels_are_closed_none_starts_and_those_started_as_usual_are_stopped(tmp_path: Path):
    from labkit.kernel_manager import KernelsStopped, RunKernels

    notebook = write_notebook(tmp_path / "01-any.ipynb", "pass")
    kernels = RunKernels([notebook], None)
    usual = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    try:
        kernels.started(usual)
        kernels.close()
        assert usual.wait(timeout=30) == -signal.SIGTERM
        with pytest.raises(KernelsStopped):
            kernels.fork(tmp_path.resolve(), str(tmp_path / "kernel.json"))
    finally:
        usual.kill()
        usual.wait()


def test_a_forked_kernel_has_what_a_notebooks_first_cells_load():
    """After labkit.kernel's preload, opening the lab on the simulator (the notebooks' first cells)
    and a simulation load no module of labkit: the fork server did that work."""
    code = ("import sys\nfrom labkit import kernel\nkernel.preload()\nbefore = set(sys.modules)\n"
            "from labkit.lab import connect\nlab = connect('sim', '1.29')\nfrom labkit.sim import simulate\n"
            "lab.close()\nprint(sorted(m for m in set(sys.modules) - before if m.startswith('labkit')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "MPLBACKEND": "agg"})
    assert out.stdout.strip() == "[]"


def test_a_notebook_is_saved_now_and_then_while_it_runs_and_whole_at_the_end(tmp_path: Path, monkeypatch):
    """papermill would write the whole notebook before and after each of its 40 cells; labkit
    run's engine writes it at most once every SAVE_EVERY_S, and at the end with every output."""
    import papermill.engines

    writes = []
    write = papermill.engines.write_ipynb
    monkeypatch.setattr(papermill.engines, "write_ipynb", lambda nb, path: (writes.append(path), write(nb, path)))
    monkeypatch.setattr(run_module, "SAVE_EVERY_S", 3600.0)
    folder = tmp_path / "notebooks"
    folder.mkdir()
    path = write_notebook(folder / "01-many.ipynb", *[f"print('cell {n}')" for n in range(40)])
    report = run_notebooks([path], backend="sim", out=tmp_path / "o", progress=False, jobs=1)
    assert report.results[0].status == "passed"
    assert len(writes) <= 3                       # its start, its end (and papermill's own last write)
    assert all(f"cell {n}\n" in outputs_text(tmp_path / "o" / path.name) for n in range(40))


def test_a_notebook_whose_kernel_died_is_written_as_far_as_it_ran(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(run_module, "SAVE_EVERY_S", 3600.0)
    folder = tmp_path / "notebooks"
    folder.mkdir()
    path = write_notebook(folder / "01-dies.ipynb", "print('before the end')", "import os\nos._exit(3)")
    report = run_notebooks([path], backend="sim", out=tmp_path / "o", progress=False, jobs=1)
    assert report.results[0].status == "failed" and "DeadKernelError" in report.results[0].error
    assert "before the end" in outputs_text(tmp_path / "o" / path.name)


@pytest.fixture
def taken_port():
    """A local port that another process holds (this test's socket, listening)."""
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


def _hand_to_the_first_kernels(monkeypatch, port: int, kernels: int) -> list[int]:
    """Make the first ``kernels`` kernels meet jupyter/jupyter_client#487: the port jupyter_client
    chose for a kernel's shell channel is taken before the kernel binds it. Returns the ports so
    handed out."""
    from jupyter_client.connect import LocalPortCache

    real, calls, handed = LocalPortCache.find_available_port, [], []

    def choose(self, ip: str) -> int:
        calls.append(ip)
        if len(calls) % 5 == 1 and len(handed) < kernels:   # a kernel's five ports, its shell's first
            handed.append(port)
            return port
        return real(self, ip)

    monkeypatch.setattr(LocalPortCache, "find_available_port", choose)
    return handed


def test_a_kernel_whose_port_was_taken_is_started_once_more_on_new_ports(books: Path, tmp_path: Path, monkeypatch,
                                                                          taken_port: int):
    handed = _hand_to_the_first_kernels(monkeypatch, taken_port, kernels=1)
    report = run_notebooks([books / "02-second.ipynb"], backend="sim", out=tmp_path / "o", progress=False, jobs=1)
    assert handed == [taken_port]                          # the first kernel did get the taken port
    assert [(r.status, r.error) for r in report.results] == [("passed", None)]
    assert [p.name for p in report.results[0].figures] == ["timeline.png"]


def test_a_kernel_that_dies_again_before_it_answers_fails_its_notebook(books: Path, tmp_path: Path, monkeypatch,
                                                                        taken_port: int):
    handed = _hand_to_the_first_kernels(monkeypatch, taken_port, kernels=2)
    report = run_notebooks([books / "02-second.ipynb"], backend="sim", out=tmp_path / "o", progress=False, jobs=1)
    assert handed == [taken_port, taken_port]              # one start and one more, no third
    [result] = report.results
    assert result.status == "failed" and result.error == f"RuntimeError: {run_module.KERNEL_DIED_AT_START}"


def test_a_failing_notebook_changes_nothing_for_the_others(books: Path, tmp_path: Path):
    """Beside notebooks that fail (a cell raising, a kernel that dies), the others give what they
    give alone, and every notebook that ran a cell is written."""
    dies = write_notebook(books / "04-dies.ipynb", "import os\nos._exit(3)")
    alone = run_notebooks([books / "01-first.ipynb", books / "02-second.ipynb"], backend="sim",
                          out=tmp_path / "alone", progress=False, jobs=1)
    mixed = run_notebooks([books / "03-broken.ipynb", books / "01-first.ipynb", dies, books / "02-second.ipynb"],
                          backend="sim", out=tmp_path / "mixed", progress=False, jobs=2)
    assert [(r.name, r.status) for r in mixed.results] == [
        ("03-broken.ipynb", "failed"), ("01-first.ipynb", "passed"), ("04-dies.ipynb", "failed"),
        ("02-second.ipynb", "passed")]
    assert "DeadKernelError" in mixed.results[2].error
    assert (tmp_path / "mixed" / "03-broken.ipynb").is_file()
    for name in ("01-first.ipynb", "02-second.ipynb"):
        assert outputs_text(tmp_path / "mixed" / name).replace("mixed", "alone") == outputs_text(tmp_path / "alone" / name)
    assert [[p.name for p in r.figures] for r in mixed.results] == [[], ["timeline.png"], [], ["timeline.png"]]


def test_jobs_auto_is_one_per_core_on_the_simulator_and_one_elsewhere(monkeypatch):
    import os

    from labkit.run import auto_jobs

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert auto_jobs("sim", 11) == 3 and auto_jobs("sim", 2) == 2
    assert auto_jobs("kind", 11) == 1 and auto_jobs("cluster", 11) == 1


@pytest.mark.parametrize("value, message", [("0", "must be a whole number >= 1 or auto, got 0"),
                                            ("two", "expected a whole number or auto, got 'two'")])
def test_bad_jobs_is_bad_input(books: Path, tmp_path: Path, capsys, value: str, message: str):
    try:
        code = main(["run", str(books / "01-first.ipynb"), "--backend", "sim", "--jobs", value, "--out", str(tmp_path / "o")])
    except SystemExit as exit_:  # argparse's own exit for a value its type rejects
        code = exit_.code
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("keep, reused, deleted", [(False, False, True), (True, False, False), (False, True, False)])
def test_one_kind_cluster_for_the_whole_run(books: Path, tmp_path: Path, monkeypatch, keep, reused, deleted):
    """On kind the cluster is made once before the notebooks (which keep it) and removed after,
    unless kept, or unless it was already running before the run."""
    import labkit.kind
    import labkit.run

    calls = []
    monkeypatch.setattr(labkit.run, "resolve_backend", lambda backend, k8s_version=None: ("kind", "test: kind is usable"))
    monkeypatch.setattr(labkit.kind, "create_cluster", lambda name, version: calls.append(("create", name, version)) or not reused)
    monkeypatch.setattr(labkit.kind, "delete_cluster", lambda name: calls.append(("delete", name)))
    report = run_notebooks([books / "01-first.ipynb"], k8s_version="1.28", out=tmp_path / "o", keep_cluster=keep,
                           parameters={"cluster_name": "lab-ci"}, progress=False)
    assert report.backend == "kind" and report.results[0].status == "passed"
    assert calls == [("create", "lab-ci", KubeVersion(1, 28))] + ([("delete", "lab-ci")] if deleted else [])
    # The notebook was told to keep the cluster: the run removes it, not the notebook.
    assert "backend=kind version=1.28 grace=30 keep=True" in outputs_text(tmp_path / "o" / "01-first.ipynb")


def test_kernel_runs_in_this_interpreter_whatever_the_kernelspec_says(books: Path, tmp_path: Path, monkeypatch):
    """A stale python3 kernelspec earlier on the Jupyter path must not take labkit's notebooks elsewhere."""
    import sys

    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": ["/nonexistent/bin/python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (somewhere else)", "language": "python"}))
    import jupyter_client.kernelspec

    on_path = jupyter_client.kernelspec.jupyter_path  # put the stale spec first, as JUPYTER_PATH would
    monkeypatch.setattr(jupyter_client.kernelspec, "jupyter_path",
                        lambda *sub: [str(tmp_path.joinpath("jupyter", *sub)), *on_path(*sub)])
    write_notebook(books / "04-where.ipynb", "import sys; print('python=' + sys.executable)")
    report = run_notebooks([books / "04-where.ipynb"], backend="sim", out=tmp_path / "o", progress=False)
    assert report.results[0].status == "passed", report.results[0].failure
    assert f"python={sys.executable}" in outputs_text(tmp_path / "o" / "04-where.ipynb")


def test_labkit_run_leaves_the_iri_grammar_unbuilt_and_still_validates_notebooks(books: Path, tmp_path: Path):
    """jsonschema loads rfc3987-syntax (2.6 s of CPU) when installed; labkit run's process blocks it
    and nbformat's validator still reads and checks the notebooks."""
    import importlib.util

    if importlib.util.find_spec("rfc3987_syntax") is None:
        pytest.skip("rfc3987-syntax is not installed here (JupyterLab brings it)")
    probe = ("import sys\nfrom labkit.cli import main\n"
             f"code = main(['run', {str(books / '02-second.ipynb')!r}, '--backend', 'sim', '--out', {str(tmp_path)!r}])\n"
             "print(code, sys.modules.get('rfc3987_syntax'), 'nbformat.validator' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout.splitlines()[-1] == "0 None True", done.stdout + done.stderr
