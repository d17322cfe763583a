"""labkit doctor, pick_backend, and `labkit up` on a machine without a Docker engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labkit.doctor import report
from labkit.tools import check_docker, check_kind, check_kubectl, kind_hint, pick_backend
from labkit.versions import KubeVersion

NO_ENGINE = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n"
KUBECTL_CLIENT = json.dumps({"clientVersion": {"gitVersion": "v1.32.4", "platform": "linux/amd64"},
                             "kustomizeVersion": "v5.5.0"})


def machine(docker_info=("28.2.2\n", "", 0), kind="kind v0.29.0 go1.24.2 linux/amd64\n", missing=()):
    """A runner answering like docker, kind and kubectl do; tools in ``missing`` are not on PATH."""
    calls = []

    def run(argv, *, env=None, timeout=None, input=None):
        calls.append((list(argv), timeout))
        if argv[0] in missing:
            raise FileNotFoundError(argv[0])
        if argv[:2] == ["docker", "--version"]:
            return subprocess.CompletedProcess(argv, 0, "Docker version 28.2.2, build e6534b4\n", "")
        if argv[:2] == ["docker", "info"]:
            out, err, code = docker_info
            return subprocess.CompletedProcess(argv, code, out, err)
        if argv[:2] == ["kind", "version"]:
            return subprocess.CompletedProcess(argv, 0, kind, "")
        if argv[:2] == ["kubectl", "version"]:
            return subprocess.CompletedProcess(argv, 0, KUBECTL_CLIENT, "")
        raise AssertionError(f"doctor ran {argv}")

    run.calls = calls
    return run


def test_docker_engine_reachable():
    check = check_docker(machine())
    assert check.found and check.usable and check.version == "Docker version 28.2.2, build e6534b4; engine 28.2.2"


def test_docker_client_without_engine_is_found_but_not_usable():
    runner = machine(docker_info=("", NO_ENGINE, 1))
    check = check_docker(runner, system="Linux")
    assert check.found and not check.usable
    assert check.detail == "docker info failed: " + NO_ENGINE.strip()
    assert "sudo systemctl start docker" in check.fix
    info = [timeout for argv, timeout in runner.calls if argv[:2] == ["docker", "info"]]
    assert info == [5.0]  # a short timeout: a hung engine must not hang the doctor


def test_docker_permission_denied_gets_the_group_fix():
    denied = ("", "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock\n", 1)
    assert "usermod -aG docker" in check_docker(machine(docker_info=denied), system="Linux").fix


def test_missing_tools_and_their_fixes_per_os():
    docker = check_docker(machine(missing=("docker",)), system="Darwin")
    assert not docker.found and "Docker Desktop" in docker.fix
    assert "docker.io" in check_docker(machine(missing=("docker",)), system="Linux").fix
    kind = check_kind(machine(missing=("kind",)), system="Linux")  # for the lab's default, 1.36
    assert not kind.found and "go install sigs.k8s.io/kind@v0.33.0" in kind.fix
    assert "https://kind.sigs.k8s.io/dl/v0.33.0/kind-linux-" in kind.fix
    assert "brew install kind" in check_kind(machine(missing=("kind",)), system="Darwin").fix
    assert not check_kubectl(machine(missing=("kubectl",))).found


def test_kind_and_kubectl_versions():
    kind = check_kind(machine())
    assert kind.usable and kind.version == "v0.29.0" and "1.30, 1.31, 1.32, 1.33" in kind.detail
    assert check_kubectl(machine()).version == "v1.32.4"


def test_pick_backend_explains_its_choice():
    assert pick_backend(machine(docker_info=("", NO_ENGINE, 1))) == (
        "sim", "no Docker engine: docker info failed: " + NO_ENGINE.strip())
    assert pick_backend(machine(missing=("docker",)))[1] == "no Docker: docker not found on PATH"
    backend, why = pick_backend(machine(missing=("kind",)))
    assert backend == "sim" and "kind not found on PATH" in why
    backend, why = pick_backend(machine())
    assert backend == "kind" and "kind v0.29.0" in why


def test_pick_backend_checks_that_the_installed_kind_can_run_the_version():
    backend, why = pick_backend(machine(kind="kind v0.33.0 go1.25.1 linux/amd64\n"), k8s_version=KubeVersion.parse("1.28"))
    assert backend == "sim" and "lists no node image for Kubernetes 1.28" in why
    assert pick_backend(machine(kind="kind v0.33.0 go1.25.1 linux/amd64\n"), k8s_version=KubeVersion.parse("1.37"))[0] == "kind"


def test_report_lists_every_tool_the_pick_and_the_fixes():
    text = report(machine(docker_info=("", NO_ENGINE, 1), missing=("kind",)), system="Linux", env={})
    lines = text.splitlines()
    assert any(line.split()[:2] == ["python", "ok"] for line in lines)
    assert any(line.split()[:2] == ["docker", "NOT"] and "docker info failed" in line for line in lines)
    assert any(line.split()[:2] == ["kind", "missing"] for line in lines)
    assert any(line.split()[:3] == ["kubectl", "ok", "v1.32.4"] for line in lines)
    assert 'backend="auto" would pick: sim (no Docker engine: docker info failed' in text
    assert "- kind: install kind v0.33.0" in text and "- docker: start the Docker engine" in text
    assert text.splitlines()[0] == "labkit doctor (for Kubernetes 1.36; --k8s-version to ask about another)"


def test_doctor_names_the_kind_release_that_can_run_the_version_and_the_newest_only_as_an_aside():
    old = check_kind(machine(missing=("kind",)), system="Linux", k8s_version=KubeVersion.parse("1.28")).fix
    assert old.startswith("install kind v0.25.0: `go install sigs.k8s.io/kind@v0.25.0`")
    assert old.endswith("(the newest kind release with a node image for Kubernetes 1.28); the newest kind, "
                        "v0.33.0, lists only Kubernetes 1.34, 1.35, 1.36, 1.37 and cannot run 1.28")
    new = check_kind(machine(missing=("kind",)), system="Linux", k8s_version=KubeVersion.parse("1.37")).fix
    assert "sigs.k8s.io/kind@v0.33.0" in new and "cannot run" not in new
    # kind is installed, but its release has no image for the version asked for
    text = report(machine(kind="kind v0.33.0 go1.25.1 linux/amd64\n"), system="Linux", env={}, k8s_version=KubeVersion.parse("1.28"))
    assert "kind v0.33.0 has no node image for Kubernetes 1.28: install kind v0.25.0" in text
    assert 'backend="auto" would pick: sim (Docker and kind v0.33.0 work, but kind v0.33.0 lists no node image' in text


def test_kind_hint_names_the_release_for_old_versions():
    assert "sigs.k8s.io/kind@v0.25.0" in kind_hint("Linux", "v0.25.0")


# -- the CLI on a machine without Docker, in a throwaway HOME ------------------------------------
def cli(args, home: Path, path: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items()
           if key not in ("KUBECONFIG", "XDG_CACHE_HOME", "LABKIT_BACKEND")}
    env.update(HOME=str(home), PATH=path)
    return subprocess.run([sys.executable, "-m", "labkit", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def fake_bin(tmp_path: Path) -> Path:
    """A PATH with a docker client whose engine is down (as on this machine) and a kind that must not run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text("#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'Docker version 28.2.2, build e6534b4'; "
                      f"exit 0; fi\necho '{NO_ENGINE.strip()}' >&2\nexit 1\n")
    kind = bin_dir / "kind"
    kind.write_text(f"#!/bin/sh\ntouch '{tmp_path / 'kind-was-called'}'\necho 'kind v0.29.0 go1.24.2 linux/amd64'\n")
    for tool in (docker, kind):
        tool.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("with_docker_client", [True, False])
def test_up_without_docker_engine_fails_fast_and_makes_nothing(tmp_path, with_docker_client):
    home = tmp_path / "home"
    home.mkdir()
    path = str(fake_bin(tmp_path)) if with_docker_client else str(tmp_path / "empty")
    result = cli(["up", "--k8s-version", "1.29"], home, path)
    assert result.returncode == 1, result.stderr
    first = result.stderr.splitlines()[0]
    if with_docker_client:
        assert first == "labkit: error: no Docker engine: docker info failed: " + NO_ENGINE.strip()
    else:
        assert first == "labkit: error: no Docker: docker not found on PATH"
    assert "Fix:" in result.stderr and "Traceback" not in result.stderr
    assert list(home.iterdir()) == []  # no ~/.kube, no ~/.cache/labkit
    assert not (tmp_path / "kind-was-called").exists()


def test_doctor_without_docker_engine_is_a_report_and_exits_0(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    path = str(fake_bin(tmp_path))
    result = cli(["doctor"], home, path)
    assert result.returncode == 0, result.stderr
    assert 'backend="auto" would pick: sim (no Docker engine: docker info failed' in result.stdout
    assert "kind     ok       v0.29.0" in result.stdout
    assert list(home.iterdir()) == []
    asked = cli(["doctor", "--k8s-version", "1.28"], home, path)
    assert asked.returncode == 0 and "labkit doctor (for Kubernetes 1.28;" in asked.stdout
    assert "kind v0.29.0 has no node image for Kubernetes 1.28: install kind v0.25.0" in asked.stdout
    bad = cli(["doctor", "--k8s-version", "2.0"], home, path)
    assert bad.returncode == 2 and "--k8s-version: unsupported Kubernetes version '2.0'" in bad.stderr


def test_up_print_config_needs_no_docker(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    result = cli(["up", "--print-config", "--k8s-version", "1.28"], home, str(tmp_path / "empty"))
    assert result.returncode == 0, result.stderr
    assert "SidecarContainers: true" in result.stdout and "kindest/node:v1.28.15@sha256:" in result.stdout
    assert list(home.iterdir()) == []


def test_bad_cluster_name_is_a_one_line_usage_error(tmp_path):
    result = cli(["up", "--name", "My_Cluster"], tmp_path, str(tmp_path / "empty"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "labkit: error: --name: invalid kind cluster name 'My_Cluster': use only lowercase letters, digits, "
        "'.' and '-' (kind's rule ^[a-z0-9.-]+$)"]


# -- progress: a bar for a person, one line per stage for everyone else ---------------------------
def test_progress_is_quiet_in_ci_and_pipes_and_can_be_forced():
    import io

    from labkit.progress import is_interactive

    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert is_interactive({}, Tty()) is True
    assert is_interactive({}, io.StringIO()) is False  # a pipe or a log file
    assert is_interactive({"CI": "true"}, Tty()) is False
    assert is_interactive({"GITHUB_ACTIONS": "true"}, Tty()) is False
    assert is_interactive({"LABKIT_PROGRESS": "1", "CI": "true"}, io.StringIO()) is True
    assert is_interactive({"LABKIT_PROGRESS": "0"}, Tty()) is False


def test_quiet_progress_prints_one_line_per_stage_and_nothing_when_silenced():
    import io

    from labkit.progress import progress

    out = io.StringIO()
    with progress(total=3, desc="waiting for the node to be Ready", interactive=False, file=out) as bar:
        for _ in range(3):
            bar.update(1)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("waiting for the node to be Ready: done (3/3) in ")
    out = io.StringIO()
    with pytest.raises(RuntimeError):
        with progress(desc="creating kind cluster", interactive=False, file=out):
            raise RuntimeError("boom")
    assert out.getvalue().startswith("creating kind cluster: stopped (0) in ")
    silent = io.StringIO()
    with progress(total=1, desc="x", quiet=True, file=silent) as bar:
        bar.update(1)
    assert silent.getvalue() == ""


def test_report_honours_labkit_backend_like_auto_does():
    text = report(machine(), system="Linux", env={"LABKIT_BACKEND": "sim"})
    assert 'backend="auto" would pick: sim (LABKIT_BACKEND=sim is set in the environment' in text
    text = report(machine(), system="Linux", env={"LABKIT_BACKEND": "docker"})
    assert "would pick: none (LABKIT_BACKEND: unknown backend 'docker'" in text
    # Without it, the machine decides: here Docker, kind and kubectl all answer.
    assert 'would pick: kind (Docker engine and kind' in report(machine(), system="Linux", env={}, k8s_version=KubeVersion.parse("1.33"))


# -- a served simulator (labkit serve) ---------------------------------------------------------
def test_doctor_reports_a_served_simulator_at_its_default_kubeconfig(tmp_path):
    pytest.importorskip("aiohttp")
    from labkit.serve import default_kubeconfig, serve
    from labkit.tools import check_served_simulator

    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    path = default_kubeconfig(env)
    assert path == tmp_path / "cache" / "labkit" / "serve-kubeconfig.yaml"
    missing = check_served_simulator(path)
    assert (missing.found, missing.usable) == (False, False)
    assert missing.detail == f"no served simulator (no kubeconfig at {path})" and "labkit serve" in missing.fix
    text = report(machine(), system="Linux", env=env)
    assert any(line.split()[:2] == ["serve", "missing"] for line in text.splitlines())
    with serve("1.31", kubeconfig=path) as server:
        text = report(machine(), system="Linux", env=env)
        line = next(line for line in text.splitlines() if line.split()[:1] == ["serve"])
        assert line.split()[:3] == ["serve", "ok", "v1.31.0-labkit-sim"]
        assert f"{server.url}; KUBECONFIG={path}" in line
    # the server has stopped; its kubeconfig is still there
    gone = check_served_simulator(path, timeout=1)
    assert (gone.found, gone.usable) == (True, False)
    assert gone.detail.startswith(f"{server.url} (from {path}) does not answer: ")
    path.write_text("just: text\n")
    assert "not a kubeconfig labkit serve wrote" in check_served_simulator(path).detail
