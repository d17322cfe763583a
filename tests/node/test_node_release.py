"""``labkit node fetch``: the control plane's release binaries, downloaded and checked by SHA-256.

Upstream's servers (dl.k8s.io, GitHub releases) are not reachable here, so a local HTTP server
serves the same paths with files made by the test (small scripts standing in for the binaries,
hand-made, not upstream's): what is tested is labkit's part, the URLs it asks for, the hashes it
checks, where it puts the files and that ``labkit serve --control-plane real`` finds them there.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest

from labkit.errors import LabkitError
from labkit.node import build
from labkit.node.release import CONTROL_PLANE, fetch_control_plane
from labkit.serve.control_plane import binaries

MINOR = build.available_minors()[-1]
PINS = build.pins(MINOR)


def _release(root: Path, *, wrong: str | None = None) -> None:
    """dl.k8s.io's and etcd-io's layouts under ``root``: a binary and its .sha256 each, and etcd's
    tarball with SHA256SUMS. ``wrong`` names a file whose published hash is not its own."""
    folder = root / "k8s" / PINS.kubernetes / "bin" / "linux" / "amd64"
    folder.mkdir(parents=True)
    for name in CONTROL_PLANE:
        data = f"#!/bin/sh\necho {name} stand-in\n".encode()
        (folder / name).write_bytes(data)
        digest = hashlib.sha256(b"something else" if name == wrong else data).hexdigest()
        (folder / f"{name}.sha256").write_text(digest)
    etcd = root / "etcd" / PINS.etcd
    etcd.mkdir(parents=True)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        data = b"#!/bin/sh\necho etcd stand-in\n"
        info = tarfile.TarInfo(f"etcd-{PINS.etcd}-linux-amd64/etcd")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    name = f"etcd-{PINS.etcd}-linux-amd64.tar.gz"
    (etcd / name).write_bytes(archive.getvalue())
    digest = hashlib.sha256(b"other" if wrong == "etcd" else archive.getvalue()).hexdigest()
    (etcd / "SHA256SUMS").write_text(f"{'0' * 64}  etcd-{PINS.etcd}-darwin-amd64.zip\n{digest}  {name}\n")


@pytest.fixture
def served(tmp_path):
    """A local HTTP server over ``tmp_path/release``; yields (root folder, base URL)."""
    root = tmp_path / "release"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _fetch(base: str, cache: Path, said: list[str]) -> Path:
    return fetch_control_plane(MINOR, cache=cache, say=said.append, k8s_releases=f"{base}/k8s",
                               etcd_releases=f"{base}/etcd", arch="amd64")


def test_it_installs_the_four_binaries_where_the_real_control_plane_looks(served, tmp_path):
    root, base = served
    _release(root)
    said: list[str] = []
    folder = _fetch(base, tmp_path / "cache", said)
    assert folder == tmp_path / "cache" / "node" / "build" / f"kubernetes-{PINS.kubernetes}"
    for name in (*CONTROL_PLANE, "etcd"):
        run = subprocess.run([str(folder / name)], capture_output=True, text=True, check=True)
        assert run.stdout == f"{name} stand-in\n"
    assert binaries(MINOR, tmp_path / "cache") == (folder, PINS.kubernetes)
    assert said[-1].endswith(f"labkit serve --control-plane real --k8s-version {MINOR}")
    assert sorted(p.name for p in folder.iterdir()) == sorted((*CONTROL_PLANE, "etcd"))   # no partial files
    again: list[str] = []
    _fetch(base, tmp_path / "cache", again)     # kept: nothing downloaded twice
    assert [line for line in again if "downloading" in line] == []


@pytest.mark.parametrize("wrong", ["kube-scheduler", "etcd"])
def test_a_hash_that_is_not_the_published_one_installs_nothing(served, tmp_path, wrong):
    root, base = served
    _release(root, wrong=wrong)
    with pytest.raises(LabkitError, match=r"SHA-256 [0-9a-f]{64} is not the published [0-9a-f]{64}; nothing was installed"):
        _fetch(base, tmp_path / "cache", [])
    folder = tmp_path / "cache" / "node" / "build" / f"kubernetes-{PINS.kubernetes}"
    assert wrong not in {p.name for p in folder.iterdir()}
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]      # no partial file either
    assert binaries(MINOR, tmp_path / "cache")[0] is None


def test_an_unreachable_release_is_one_clear_error(tmp_path):
    with pytest.raises(LabkitError, match=r"^cannot download http://127\.0\.0\.1:9/k8s/"):
        _fetch("http://127.0.0.1:9", tmp_path / "cache", [])


def test_the_cli_refuses_a_version_no_node_pins(capsys):
    from labkit.cli import main

    assert main(["node", "fetch", "--k8s-version", "1.30"]) == 2
    assert "no node is pinned for Kubernetes 1.30" in capsys.readouterr().err


def test_binder_fetches_the_control_plane_of_the_labs_default_version_at_build_time():
    """So that `labkit serve` (the default version, --control-plane auto) runs under it there."""
    from labkit.versions import DEFAULT_K8S_VERSION

    post_build = (Path(__file__).resolve().parents[2] / "binder" / "postBuild").read_text()
    assert f"labkit node fetch --k8s-version {DEFAULT_K8S_VERSION}" in post_build
    assert DEFAULT_K8S_VERSION in build.available_minors()
