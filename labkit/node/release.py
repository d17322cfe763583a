"""Upstream's release binaries of the control plane, for where building them takes too long (Binder).

``labkit node fetch`` downloads, at the versions ``node/kubernetes-<minor>/go.mod`` pins:

* ``kube-apiserver``, ``kube-controller-manager`` and ``kube-scheduler`` from
  ``https://dl.k8s.io/release/<version>/bin/linux/<arch>/<name>``, each checked against the
  SHA-256 upstream publishes beside it (``<name>.sha256``, as the Kubernetes install docs check
  kubectl);
* ``etcd`` from etcd-io's GitHub release, ``etcd-<version>-linux-<arch>.tar.gz``, checked against
  the release's ``SHA256SUMS``;

into the folder the node build fills and ``labkit serve --control-plane real`` reads
(``~/.cache/labkit/node/build/kubernetes-<version>/``). Each file is written beside its final
name and renamed only once its hash matched: a mismatch stops with both hashes and leaves
nothing it downloaded. No kubelet: these are what the real control plane needs, not a node.
See docs/serve.md, "On Binder".
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ..errors import BackendUnavailable, LabkitError

K8S_RELEASES = "https://dl.k8s.io/release"
ETCD_RELEASES = "https://github.com/etcd-io/etcd/releases/download"
CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
TIMEOUT_S = 60.0


def release_arch(machine: str | None = None) -> str:
    """Upstream's name for this machine's architecture; others have no release binaries."""
    machine = machine or platform.machine()
    if platform.system() != "Linux" or machine.lower() not in ARCHES:
        raise BackendUnavailable(f"upstream publishes the control plane for Linux on amd64 and arm64, not "
                                 f"{platform.system()} {machine}")
    return ARCHES[machine.lower()]


def fetch_control_plane(minor: str, *, cache: Path | None = None, say: Callable[[str], None] = print,
                        k8s_releases: str = K8S_RELEASES, etcd_releases: str = ETCD_RELEASES,
                        arch: str | None = None) -> Path:
    """Download and check the control plane's four binaries of ``minor``; the folder they are in.

    Binaries already there (built or fetched before) are kept. The base URLs are parameters so
    that tests serve their own files; the defaults are upstream's.
    """
    from ..paths import cache_dir
    from .build import pins

    pinned = pins(minor)
    arch = arch or release_arch()
    folder = (cache or cache_dir()) / "node" / "build" / f"kubernetes-{pinned.kubernetes}"
    folder.mkdir(parents=True, exist_ok=True)
    for name in CONTROL_PLANE:
        if os.access(folder / name, os.X_OK):
            say(f"{name} {pinned.kubernetes}: already in {folder}")
            continue
        url = f"{k8s_releases}/{pinned.kubernetes}/bin/linux/{arch}/{name}"
        expected = _text(url + ".sha256").split()[0]
        say(f"{name} {pinned.kubernetes}: downloading {url}")
        data = _download(url)
        _check(data, expected, url)
        _install(folder / name, data)
    if os.access(folder / "etcd", os.X_OK):
        say(f"etcd {pinned.etcd}: already in {folder}")
    else:
        archive = f"etcd-{pinned.etcd}-linux-{arch}.tar.gz"
        base = f"{etcd_releases}/{pinned.etcd}"
        sums = dict(reversed(line.split(maxsplit=1)) for line in _text(f"{base}/SHA256SUMS").splitlines() if line.strip())
        expected = sums.get(archive) or sums.get("*" + archive)
        if expected is None:
            raise LabkitError(f"{base}/SHA256SUMS lists no {archive}")
        say(f"etcd {pinned.etcd}: downloading {base}/{archive}")
        data = _download(f"{base}/{archive}")
        _check(data, expected, f"{base}/{archive}")
        member = f"etcd-{pinned.etcd}-linux-{arch}/etcd"
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            try:
                etcd = tar.extractfile(member)
            except KeyError:
                etcd = None
            if etcd is None:
                raise LabkitError(f"{archive} has no {member}")
            _install(folder / "etcd", etcd.read())
    say(f"the control plane {pinned.kubernetes} (etcd {pinned.etcd}) is in {folder}: "
        f"labkit serve --control-plane real --k8s-version {minor}")
    return folder


def _download(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as answer:
            return answer.read()
    except (urllib.error.URLError, OSError) as exc:
        raise LabkitError(f"cannot download {url}: {getattr(exc, 'reason', exc)}") from None


def _text(url: str) -> str:
    return _download(url).decode("utf-8", "replace")


def _check(data: bytes, expected: str, what: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected.strip().lower():
        raise LabkitError(f"{what}: SHA-256 {actual} is not the published {expected.strip()}; nothing was installed")


def _install(path: Path, data: bytes) -> None:
    """Write ``data`` (already checked) as the executable ``path``, renamed into place whole."""
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}-", delete=False) as part:
        part.write(data)
    os.chmod(part.name, 0o755)
    os.replace(part.name, path)
