"""``labkit plot TRACE.json [-o FILE]``: writes the figure, or one error line and exit 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labkit.cli import main


@pytest.fixture
def trace_copy(data_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(data_dir / "blog-job-trace.json", tmp_path / "job.json"))


def test_default_output_is_the_trace_path_with_png(trace_copy: Path, capsys):
    assert main(["plot", str(trace_copy)]) == 0
    written = trace_copy.with_suffix(".png")
    assert capsys.readouterr().out.strip() == str(written)
    assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(trace_copy.read_text())["schema"] == "labkit.trace/v1"  # the trace itself is untouched


def test_output_option_and_svg(trace_copy: Path, tmp_path: Path, capsys):
    out = tmp_path / "figures" / "job.svg"
    assert main(["plot", str(trace_copy), "-o", str(out), "--max-pods", "1"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert b"<svg" in out.read_bytes()[:2000]


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d["events"][1].update(t="soon"), '{path}: events[1].t: expected a number, got "soon"'),
    (lambda d: d["events"][4].update(container="app"),
     "{path}: events[4].container: pod 'sidecar-job-x7k2p' has no container 'app'"),
    (lambda d: d.pop("pods"), "{path}: pods: missing"),
])
def test_bad_trace_exits_2_with_file_and_field(trace_copy: Path, capsys, edit, expected):
    data = json.loads(trace_copy.read_text())
    edit(data)
    trace_copy.write_text(json.dumps(data))
    assert main(["plot", str(trace_copy)]) == 2
    assert one_error_line(capsys) == "labkit: error: " + expected.format(path=trace_copy)
    assert not trace_copy.with_suffix(".png").exists()


def test_not_json_and_missing_file_exit_2(tmp_path: Path, capsys):
    broken = tmp_path / "broken.json"
    broken.write_text("{ not json")
    assert main(["plot", str(broken)]) == 2
    assert one_error_line(capsys).startswith(f"labkit: error: {broken}: not valid JSON")
    assert main(["plot", str(tmp_path / "nope.json")]) == 2
    assert one_error_line(capsys) == f"labkit: error: {tmp_path / 'nope.json'}: no such file"


def test_unsupported_output_suffix_exits_2(trace_copy: Path, tmp_path: Path, capsys):
    assert main(["plot", str(trace_copy), "-o", str(tmp_path / "job.jpg")]) == 2
    assert one_error_line(capsys) == \
        f"labkit: error: {tmp_path / 'job.jpg'}: cannot write a .jpg figure: use a .png or .svg file name"


def test_python_m_labkit_plot(trace_copy: Path, tmp_path: Path):
    """The real entry point, in a fresh interpreter: a figure, then a bad file."""
    out = tmp_path / "x.png"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-m", "labkit", "plot", str(trace_copy), "-o", str(out)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out) and out.stat().st_size > 10_000
    trace_copy.write_text('{"schema": "labkit.trace/v1"}')
    done = subprocess.run([sys.executable, "-m", "labkit", "plot", str(trace_copy)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert done.stderr == f"labkit: error: {trace_copy}: backend: missing\n"
