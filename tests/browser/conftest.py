"""Fixtures for the browser tests: a headless JupyterLab server and Debian's Chromium.

Both are started once per session and always stopped, even when a test fails: the kernels
through the server's API, the server by its process id, the browser by Playwright.
Playwright drives the system Chromium (``/usr/bin/chromium``, installed by
``.ci/install-browser``); it never downloads a browser of its own.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
# What Chromium needs on a closed network: no background connections, no first-run work.
# Playwright adds --headless and a fresh, temporary --user-data-dir for every launch.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERVER_START_TIMEOUT_S = 60
# Lab settings for a quiet test session: no news or update checks (they would reach the
# internet and put toasts over the notebook).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}


@dataclass
class LabServer:
    url: str
    token: str
    root: Path
    log: Path

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(server: LabServer, process: subprocess.Popen) -> None:
    """Poll /api with the token until the server answers, bounded by SERVER_START_TIMEOUT_S."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with status {process.returncode} while starting:\n"
                               f"{server.log_tail()}")
        try:
            if "version" in server.api("/api"):
                return
        except (urllib.error.URLError, ConnectionError, OSError, ValueError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"JupyterLab did not answer on {server.url}/api within {SERVER_START_TIMEOUT_S}s:\n"
                       f"{server.log_tail()}")


def _stop(server: LabServer, process: subprocess.Popen) -> None:
    """Shut the kernels down through the API (they run in their own sessions), then the server."""
    if process.poll() is None:
        try:
            for kernel in server.api("/api/kernels") or []:
                server.api(f"/api/kernels/{kernel['id']}", method="DELETE")
        except (urllib.error.URLError, OSError, ValueError):
            pass
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the server's own process group, started by us
            process.wait(timeout=10)


def _lab_root(tmp: Path) -> Path:
    """A throwaway copy of the lab as a learner gets it: notebooks/ and manifests/ side by side."""
    root = tmp / "lab"
    root.mkdir()
    for folder in ("notebooks", "manifests"):
        if (REPO / folder).is_dir():
            shutil.copytree(REPO / folder, root / folder,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        else:
            (root / folder).mkdir()
    return root


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium driven by Playwright; skips with the reason when either is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: run .ci/install-browser (Debian package chromium)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="Playwright is not installed (pip install -e '.[test]')")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, timeout=30_000)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def jupyterlab(tmp_path_factory):
    """A JupyterLab server on a free localhost port, serving a copy of the lab; always stopped.

    Its kernels use the simulator (``LABKIT_BACKEND=sim``), so the test never needs Docker
    and never creates a cluster, even on a machine that has kind.
    """
    tmp = tmp_path_factory.mktemp("jupyterlab")
    root = _lab_root(tmp)
    settings = tmp / "settings"
    for name, values in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "LABKIT_BACKEND": "sim", "JUPYTER_CONFIG_DIR": str(tmp / "config"),
           "JUPYTER_DATA_DIR": str(tmp / "data"), "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
           "IPYTHONDIR": str(tmp / "ipython")}
    for name in ("CI", "GITHUB_ACTIONS", "LABKIT_PROGRESS", "LABKIT_LIVE"):
        env.pop(name, None)  # the kernel should behave as on a learner's laptop
    log = tmp / "jupyterlab.log"
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--IdentityProvider.token={token}",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={settings}",
               f"--LabApp.workspaces_dir={tmp / 'workspaces'}", "--LabApp.extension_manager=readonly"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI and containers run as root
    server = LabServer(f"http://127.0.0.1:{port}", token, root, log)
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_until_up(server, process)
        yield server
    finally:
        _stop(server, process)
