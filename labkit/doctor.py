"""``labkit doctor``: what is installed, which backend ``auto`` would pick, and how to fix the rest.

Checks are plain commands with short timeouts (``docker info`` answers in milliseconds
when the engine is down), run through the same runner as every other tool call, so tests
can feed them canned answers. The report is information: ``labkit doctor`` exits 0.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import BackendUnavailable, LabkitError, ToolError
from .kubectl import Runner, run_tool

DOCKER_INFO_TIMEOUT_S = 5.0
# The version the lab runs when none is asked for (``labkit run``/``up``/``connect`` default to it).
DEFAULT_K8S_VERSION = "1.29"


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


def _first_line(text: str) -> str:
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
        client = _first_line(run_tool(["docker", "--version"], timeout=DOCKER_INFO_TIMEOUT_S, runner=runner).stdout)
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
        return _first_line(exc.stderr) or _first_line(exc.stdout) or f"exit status {exc.returncode}"
    return str(exc)


def check_kind(runner: Runner | None = None, *, system: str | None = None,
               k8s_version: str | None = None) -> ToolCheck:
    """kind on PATH and its release; the fix names the release that can run ``k8s_version`` (default 1.29)."""
    from .kind import parse_kind_version, release_minors

    system = system or platform.system()
    fix = kind_advice(system, k8s_version or DEFAULT_K8S_VERSION)
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


def pick_backend(runner: Runner | None = None, k8s_version: str | None = None) -> tuple[str, str]:
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
        from .kind import node_image

        try:
            node_image(k8s_version, kind.version)
        except (BackendUnavailable, LabkitError) as exc:
            return "sim", f"Docker and kind {kind.version} work, but {str(exc).splitlines()[0]}"
    kubectl = check_kubectl(runner)
    if not kubectl.usable:
        return "sim", f"Docker and kind work but kubectl does not: {kubectl.detail}"
    return "kind", f"Docker engine and kind {kind.version} are usable ({docker.version})"


def _auto_choice(runner: Runner | None, env: Mapping[str, str], k8s_version: str | None = None) -> tuple[str, str]:
    """What ``backend="auto"`` does: LABKIT_BACKEND first (Binder sets it), else :func:`pick_backend`."""
    if env.get("LABKIT_BACKEND", "").strip():
        from .errors import InvalidInput
        from .lab import resolve_backend

        try:
            return resolve_backend("auto", env=env)
        except InvalidInput as exc:
            return "none", str(exc)
    return pick_backend(runner, k8s_version=k8s_version)


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
    from .kind import newest_kind_release

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


def kind_advice(system: str, k8s_version: str) -> str:
    """How to install the kind release that can run ``k8s_version``, with the newest release as an aside.

    The newest kind lists node images only for the newest Kubernetes minors (v0.33.0: 1.34 to
    1.37), so "install the newest kind" would not run the lab's 1.28 or 1.29.
    """
    from .kind import newest_kind_release, recommended_kind_release, release_minors
    from .versions import KubeVersion

    minor = KubeVersion.parse(k8s_version).minor_str
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


def report(runner: Runner | None = None, *, system: str | None = None, env: Mapping[str, str] | None = None,
           k8s_version: str | None = None) -> str:
    """The doctor's report as text, for ``k8s_version`` (default 1.29); ``env`` (default ``os.environ``) is
    where ``LABKIT_BACKEND`` is read."""
    from .kind import release_minors
    from .versions import KubeVersion

    system = system or platform.system()
    env = os.environ if env is None else env
    minor = KubeVersion.parse(k8s_version or DEFAULT_K8S_VERSION, field="--k8s-version").minor_str
    checks = [check_python(), check_docker(runner, system=system),
              check_kind(runner, system=system, k8s_version=minor), check_kubectl(runner, system=system)]
    lines = [f"labkit doctor (for Kubernetes {minor}; --k8s-version to ask about another)", ""]
    lines += ["  " + check.line() for check in checks]
    kind = next(c for c in checks if c.name == "kind")
    if kind.usable and release_minors(kind.version) and minor not in release_minors(kind.version):
        lines += ["", f"kind {kind.version} has no node image for Kubernetes {minor}: "
                      f"{kind_advice(system, minor)}"]
    backend, why = _auto_choice(runner, env, minor)
    lines += ["", f"backend=\"auto\" would pick: {backend} ({why})"]
    fixes = [f"  - {check.name}: {check.fix}" for check in checks if check.fix and not check.usable]
    if fixes:
        lines += ["", "To run the lab on a real kind cluster:"] + fixes
    if backend == "sim":
        lines += ["", "The simulator needs none of these: `labkit run --backend sim` works as is."]
    else:
        lines += ["", f"kind {kind.version} can run Kubernetes {', '.join(release_minors(kind.version)) or '(none listed)'};"
                  " other versions need another kind release (`labkit up --k8s-version V` says which)."]
    return "\n".join(lines)
