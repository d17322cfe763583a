"""What is installed, whether it works, and how to install what is missing.

Docker, kind and kubectl are probed here (``labkit doctor`` reports them, ``backend="auto"``
chooses by them, the kind backend refuses to start without them), with the fix for this
operating system. Which kind release can run which Kubernetes version is the version table's
(:mod:`labkit.versions`).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import BackendUnavailable, LabkitError, ToolError
from .kubectl import Runner, run_tool
from .versions import (DEFAULT_K8S_VERSION, KIND_NODE_IMAGES, KubeVersion, _release_key, newest_kind_release,
                       parse_kind_version, recommended_kind_release, release_minors)

DOCKER_INFO_TIMEOUT_S = 5.0


@dataclass
class ToolCheck:
    """One tool: found on PATH? usable? which version? what to do if not."""

    name: str
    found: bool
    usable: bool
    version: str | None = None
    detail: str = ""
    fix: str = ""

    def line(self) -> str:
        mark = "ok" if self.usable else ("NOT OK" if self.found else "missing")
        return f"{self.name:<8} {mark:<8} {' - '.join(part for part in (self.version, self.detail) if part)}"


def _which(tool: str, runner: Runner | None) -> bool:
    # An injected runner stands for the machine: assume the tool exists and let it answer.
    return runner is not None or shutil.which(tool) is not None


def first_line(text: str | None) -> str:
    """The first line of ``text`` that is not blank, stripped: what a one-line message quotes."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[0] if lines else ""


def check_python() -> ToolCheck:
    version = platform.python_version()
    ok = sys.version_info >= (3, 10)
    return ToolCheck("python", True, ok, version, sys.executable, "" if ok else "labkit needs Python 3.10 or newer")


def check_docker(runner: Runner | None = None, *, system: str | None = None) -> ToolCheck:
    """Docker client on PATH, and an engine that answers ``docker info`` within a few seconds."""
    system = system or platform.system()
    if not _which("docker", runner):
        return ToolCheck("docker", False, False, detail="docker not found on PATH", fix=docker_hint(system))
    try:
        client = first_line(run_tool(["docker", "--version"], timeout=DOCKER_INFO_TIMEOUT_S, runner=runner).stdout)
    except BackendUnavailable:
        return ToolCheck("docker", False, False, detail="docker not found on PATH", fix=docker_hint(system))
    except ToolError as exc:
        return ToolCheck("docker", False, False, detail=f"docker --version failed: {_why(exc)}", fix=docker_hint(system))
    try:
        engine = run_tool(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=DOCKER_INFO_TIMEOUT_S,
                          runner=runner).stdout.strip()
    except (ToolError, BackendUnavailable) as exc:
        why = _why(exc)
        return ToolCheck("docker", True, False, client, f"docker info failed: {why}", engine_hint(system, why))
    if not engine:
        return ToolCheck("docker", True, False, client, "docker info gave no server version",
                         engine_hint(system, ""))
    return ToolCheck("docker", True, True, f"{client}; engine {engine}")


def _why(exc: LabkitError) -> str:
    if isinstance(exc, ToolError):
        return first_line(exc.stderr) or first_line(exc.stdout) or f"exit status {exc.returncode}"
    return str(exc)


def check_kind(runner: Runner | None = None, *, system: str | None = None,
               k8s_version: KubeVersion | None = None) -> ToolCheck:
    """kind on PATH and its release; the fix names the release that can run ``k8s_version`` (default: the lab's)."""
    system = system or platform.system()
    fix = kind_advice(system, k8s_version.minor_str if k8s_version else DEFAULT_K8S_VERSION)
    if not _which("kind", runner):
        return ToolCheck("kind", False, False, detail="kind not found on PATH", fix=fix)
    try:
        out = run_tool(["kind", "version"], timeout=10, runner=runner).stdout
    except BackendUnavailable:
        return ToolCheck("kind", False, False, detail="kind not found on PATH", fix=fix)
    except ToolError as exc:
        return ToolCheck("kind", False, False, detail=f"kind version failed: {_why(exc)}", fix=fix)
    try:
        release = parse_kind_version(out)
    except LabkitError as exc:
        return ToolCheck("kind", True, False, detail=str(exc), fix=fix)
    minors = release_minors(release)
    if not minors:
        return ToolCheck("kind", True, True, release,
                         "labkit lists no node images for this release (use --image to give one)", fix)
    return ToolCheck("kind", True, True, release, f"node images for Kubernetes {', '.join(minors)}")


def check_kubectl(runner: Runner | None = None, *, system: str | None = None) -> ToolCheck:
    system = system or platform.system()
    if not _which("kubectl", runner):
        return ToolCheck("kubectl", False, False, detail="kubectl not found on PATH", fix=kubectl_hint(system))
    try:
        out = run_tool(["kubectl", "version", "--client", "-o", "json"], timeout=10, runner=runner).stdout
        version = json.loads(out)["clientVersion"]["gitVersion"]
    except BackendUnavailable:
        return ToolCheck("kubectl", False, False, detail="kubectl not found on PATH", fix=kubectl_hint(system))
    except (ToolError, ValueError, KeyError, TypeError) as exc:
        why = _why(exc) if isinstance(exc, LabkitError) else f"unexpected answer ({exc})"
        return ToolCheck("kubectl", True, False, detail=f"kubectl version failed: {why}", fix=kubectl_hint(system))
    return ToolCheck("kubectl", True, True, version)


def check_served_simulator(kubeconfig: str | os.PathLike, *, timeout: float = 2.0) -> ToolCheck:
    """Is a ``labkit serve`` answering at the kubeconfig it wrote? Its ``/version`` must answer
    (with the kubeconfig's CA and token) and say it is the simulator (``-labkit-sim``)."""
    import base64
    import ssl
    import urllib.error
    import urllib.request

    import yaml

    from .served import is_served_simulator

    fix = "start one in a terminal: `labkit serve` (then `export KUBECONFIG=...` as it prints)"
    path = Path(kubeconfig)
    if not path.is_file():
        return ToolCheck("serve", False, False, detail=f"no served simulator (no kubeconfig at {path})", fix=fix)
    try:
        config = yaml.safe_load(path.read_text())
        cluster = config["clusters"][0]["cluster"]
        url, token = cluster["server"], config["users"][0]["user"]["token"]
        context = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError, ValueError, ssl.SSLError) as exc:
        return ToolCheck("serve", True, False, detail=f"{path}: not a kubeconfig labkit serve wrote ({exc})", fix=fix)
    request = urllib.request.Request(url + "/version", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=timeout) as response:
            version = json.loads(response.read())["gitVersion"]
    except (OSError, urllib.error.URLError, ValueError, KeyError, TypeError) as exc:
        reason = getattr(exc, "reason", exc)
        return ToolCheck("serve", True, False, detail=f"{url} (from {path}) does not answer: {reason}", fix=fix)
    if not is_served_simulator(version):
        simulated = _simulated_node(url, token, context, timeout)    # labkit serve --control-plane real
        if simulated is None:
            return ToolCheck("serve", True, False, detail=f"{url} (from {path}) is {version}, not labkit's simulator")
        return ToolCheck("serve", True, True, version, f"{url}; KUBECONFIG={path}; node: {simulated}")
    return ToolCheck("serve", True, True, version, f"{url}; KUBECONFIG={path}")


def _simulated_node(url: str, token: str, context, timeout: float) -> str | None:
    """What a node annotated ``labkit.dev/simulated`` says (a real API server, labkit's simulated kubelet)."""
    import urllib.error
    import urllib.request

    from .served import SIMULATED_ANNOTATION

    request = urllib.request.Request(url + "/api/v1/nodes", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=timeout) as response:
            nodes = json.loads(response.read()).get("items") or []
    except (OSError, urllib.error.URLError, ValueError, AttributeError):
        return None
    said = [((n.get("metadata") or {}).get("annotations") or {}).get(SIMULATED_ANNOTATION) for n in nodes]
    return next((s for s in said if s), None)


def pick_backend(runner: Runner | None = None, k8s_version: KubeVersion | None = None) -> tuple[str, str]:
    """``("kind", why)`` when a Docker engine, kind and kubectl all work, else ``("sim", why)``.

    With ``k8s_version`` it also checks that the installed kind lists a node image for it.
    """
    docker = check_docker(runner)
    if not docker.found:
        return "sim", f"no Docker: {docker.detail}"
    if not docker.usable:
        return "sim", f"no Docker engine: {docker.detail}"
    kind = check_kind(runner)
    if not kind.usable:
        return "sim", f"Docker works but kind does not: {kind.detail}"
    if k8s_version is not None:
        try:
            node_image(k8s_version, kind.version)
        except (BackendUnavailable, LabkitError) as exc:
            return "sim", f"Docker and kind {kind.version} work, but {str(exc).splitlines()[0]}"
    kubectl = check_kubectl(runner)
    if not kubectl.usable:
        return "sim", f"Docker and kind work but kubectl does not: {kubectl.detail}"
    return "kind", f"Docker engine and kind {kind.version} are usable ({docker.version})"


def node_image(version: KubeVersion, kind_release: str) -> str:
    """The pinned node image for ``version`` that ``kind_release`` lists, or BackendUnavailable with the fix."""
    images = KIND_NODE_IMAGES.get(kind_release)
    recommended = recommended_kind_release(version)
    fix = kind_hint(platform.system(), recommended) if recommended else ""
    if images is None:
        known = ", ".join(sorted(KIND_NODE_IMAGES, key=_release_key))
        raise BackendUnavailable(
            f"kind {kind_release} is not in labkit's table of node images (it knows {known}), so labkit cannot "
            f"pin an image built for it.\nFix: {fix}, or pass a node image listed in the release notes of "
            f"kind {kind_release} with `labkit up --image kindest/node:vX.Y.Z@sha256:...`")
    if version.minor_str not in images:
        raise BackendUnavailable(
            f"kind {kind_release} lists no node image for Kubernetes {version.minor_str} "
            f"(it has {', '.join(release_minors(kind_release))}).\nFix: {fix}")
    return images[version.minor_str]


# -- how to install --------------------------------------------------------------------
def _arch() -> str:
    machine = platform.machine().lower()
    return "arm64" if machine in ("arm64", "aarch64") else "amd64"


def docker_hint(system: str) -> str:
    if system == "Darwin":
        return "install Docker Desktop (https://docs.docker.com/desktop/setup/install/mac-install/) and start it"
    if system == "Windows":
        return "install Docker Desktop with the WSL 2 backend (https://docs.docker.com/desktop/setup/install/windows-install/)"
    return ("install Docker Engine (Debian/Ubuntu: `sudo apt-get install docker.io`, then "
            "`sudo usermod -aG docker $USER` and log in again) or Docker Desktop")


def engine_hint(system: str, why: str) -> str:
    if "permission denied" in why.lower():
        return "let your user talk to Docker: `sudo usermod -aG docker $USER`, then log in again"
    if system in ("Darwin", "Windows"):
        return "start Docker Desktop and wait until it says the engine is running"
    return "start the Docker engine: `sudo systemctl start docker` (or start Docker Desktop)"


def kind_hint(system: str, release: str | None = None) -> str:
    release = release or newest_kind_release()
    arch = _arch()
    if system == "Darwin":
        binary = (f"`brew install kind`, or `curl -Lo ./kind https://kind.sigs.k8s.io/dl/{release}/kind-darwin-{arch}"
                  " && chmod +x ./kind && sudo mv ./kind /usr/local/bin/kind`")
    elif system == "Windows":
        binary = (f"`curl.exe -Lo kind-windows-amd64.exe https://kind.sigs.k8s.io/dl/{release}/kind-windows-amd64`"
                  " and put it on PATH as kind.exe")
    else:
        binary = (f"`curl -Lo ./kind https://kind.sigs.k8s.io/dl/{release}/kind-linux-{arch}"
                  " && chmod +x ./kind && sudo mv ./kind /usr/local/bin/kind`")
    return f"install kind {release}: `go install sigs.k8s.io/kind@{release}` (with Go), or the release binary: {binary}"


def kind_advice(system: str, minor: str) -> str:
    """How to install the kind release that can run Kubernetes ``minor`` ("1.28"), with the newest release as an aside.

    The newest kind lists node images only for the newest Kubernetes minors (v0.33.0: 1.34 to
    1.37), so "install the newest kind" would not run the lab's 1.28 or 1.29.
    """
    release = recommended_kind_release(minor)
    newest = newest_kind_release()
    if release is None:
        return kind_hint(system, newest) + f" (no kind release in labkit's table lists Kubernetes {minor})"
    text = kind_hint(system, release) + f" (the newest kind release with a node image for Kubernetes {minor})"
    if release != newest:
        text += (f"; the newest kind, {newest}, lists only Kubernetes {', '.join(release_minors(newest))}"
                 f" and cannot run {minor}")
    return text


def kubectl_hint(system: str) -> str:
    if system == "Darwin":
        return "install kubectl: `brew install kubectl` (https://kubernetes.io/docs/tasks/tools/)"
    if system == "Windows":
        return "install kubectl: `winget install -e --id Kubernetes.kubectl` (https://kubernetes.io/docs/tasks/tools/)"
    return ("install kubectl from the Kubernetes apt/yum repository or as a binary "
            "(https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/)")
