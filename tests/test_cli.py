"""The CLI shell itself: usage errors and a reader that goes away."""

import subprocess
import sys
from pathlib import Path

import pytest

from labkit.cli import main

ROOT = Path(__file__).parents[1]


def test_unknown_subcommand_is_a_usage_error_with_status_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'frobnicate'" in err and "Traceback" not in err


def test_a_closed_pipe_ends_quietly_without_a_traceback(tmp_path):
    # `labkit sim run ... --json | head -1`: the reader leaves after the first line. 50
    # replicas make a trace far larger than a pipe's buffer, so the writer does hit the end.
    manifest = (ROOT / "manifests" / "deployment-sidecar.yaml").read_text().replace("replicas: 1", "replicas: 50")
    assert "replicas: 50" in manifest
    (tmp_path / "big.yaml").write_text(manifest)
    proc = subprocess.Popen([sys.executable, "-m", "labkit", "sim", "run", "--json", "--delete-after", "30",
                             str(tmp_path / "big.yaml")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout.readline().strip() == b"{"
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert b"Traceback" not in err and b"BrokenPipeError" not in err
    assert proc.returncode in (0, 141)
