"""The kind cluster lifecycle, tested by what labkit sends.

A scripted runner stands in for the machine: it records every argv and environment and
answers with canned CompletedProcess results in the formats docker, kind and kubectl print.
No cluster is involved; these tests check the commands, the files labkit writes, and what it
does on errors, Ctrl-C and kind's transient failures.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from labkit.errors import BackendUnavailable, ToolError, WaitTimeout
from labkit.kind import KindCluster, KindLab, create_cluster, delete_cluster
from labkit.versions import KIND_NODE_IMAGES

NO_ENGINE = ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
             "Is the docker daemon running?\n")
BOOT_DEADLINE = ('ERROR: failed to create cluster: could not find a log line that matches '
                 '"Reached target .*Multi-User System.*|detected cgroup v1"\n')


def done(stdout: str = "", stderr: str = "", code: int = 0) -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess([], code, stdout, stderr)


def node_list(ready: bool, version: str = "v1.33.1") -> str:
    conditions = [
        {"lastHeartbeatTime": "2025-06-01T10:00:40Z", "lastTransitionTime": "2025-06-01T10:00:20Z",
         "message": "kubelet has sufficient memory available", "reason": "KubeletHasSufficientMemory",
         "status": "False", "type": "MemoryPressure"},
        {"lastHeartbeatTime": "2025-06-01T10:00:40Z", "lastTransitionTime": "2025-06-01T10:00:38Z",
         "message": "kubelet is posting ready status" if ready else
         "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady",
         "reason": "KubeletReady" if ready else "KubeletNotReady", "status": "True" if ready else "False",
         "type": "Ready"}]
    return json.dumps({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": [
        {"apiVersion": "v1", "kind": "Node",
         "metadata": {"name": "sidecar-lab-control-plane",
                      "labels": {"kubernetes.io/hostname": "sidecar-lab-control-plane",
                                 "node-role.kubernetes.io/control-plane": ""}},
         "spec": {"podCIDR": "10.244.0.0/24", "providerID": "kind://docker/sidecar-lab/sidecar-lab-control-plane"},
         "status": {"conditions": conditions,
                    "nodeInfo": {"containerRuntimeVersion": "containerd://2.1.1", "kubeletVersion": version}}}]})


_GLOBAL_FLAGS = ("--kubeconfig", "--context", "--namespace")


def core(argv: list[str]) -> tuple[str, ...]:
    """argv without kubectl's global flags, to match on the command itself."""
    out, skip = [], False
    for part in argv:
        if skip:
            skip = False
            continue
        if argv[0] == "kubectl" and part in _GLOBAL_FLAGS:
            skip = True
            continue
        out.append(part)
    return tuple(out)


class Machine:
    """A scripted machine with Docker and kind. ``override`` maps an argv prefix to answers."""

    def __init__(self, kind="kind v0.29.0 go1.24.2 linux/amd64", clusters=(), ready=True, server="v1.33.1",
                 override=None, node_version=None):
        self.kind, self.clusters, self.ready, self.server = kind, list(clusters), ready, server
        self.node_version = node_version or server
        self.override = {tuple(k): (list(v) if isinstance(v, list) else [v]) for k, v in (override or {}).items()}
        self.calls: list[dict] = []

    def commands(self) -> list[tuple[str, ...]]:
        return [core(c["argv"]) for c in self.calls]

    def ran(self, *prefix: str) -> list[dict]:
        return [c for c in self.calls if core(c["argv"])[:len(prefix)] == prefix]

    def __call__(self, argv, *, env=None, timeout=None, input=None):
        self.calls.append({"argv": list(argv), "env": env, "timeout": timeout, "input": input})
        key = core(argv)
        for prefix, answers in self.override.items():
            if key[:len(prefix)] == prefix:
                answer = answers.pop(0) if len(answers) > 1 else answers[0]
                if isinstance(answer, BaseException):
                    raise answer
                if answer is not None:
                    return subprocess.CompletedProcess(argv, answer.returncode, answer.stdout, answer.stderr)
        return self.default(list(argv), key)

    def default(self, argv, key):
        def flag(name):
            return argv[argv.index(name) + 1]

        if key == ("docker", "--version"):
            return done("Docker version 28.2.2, build e6534b4\n")
        if key[:2] == ("docker", "info"):
            return done("28.2.2\n")
        if key == ("kind", "version"):
            return done(self.kind + "\n")
        if key == ("kind", "get", "clusters"):
            if not self.clusters:
                return done("", "No kind clusters found.\n")
            return done("".join(f"{name}\n" for name in self.clusters))
        if key[:3] == ("kind", "create", "cluster"):
            name = flag("--name")
            self.clusters.append(name)
            Path(flag("--kubeconfig")).write_text(f"apiVersion: v1\nkind: Config\ncurrent-context: kind-{name}\n")
            return done("", f'Creating cluster "{name}" ...\n ✓ Ensuring node image\n')
        if key[:3] == ("kind", "delete", "cluster"):
            name = flag("--name")
            if name in self.clusters:
                self.clusters.remove(name)
            return done("", f'Deleting cluster "{name}" ...\n')
        if key[:3] == ("kind", "export", "kubeconfig"):
            Path(flag("--kubeconfig")).write_text("apiVersion: v1\nkind: Config\n")
            return done("", f"Set kubectl context to \"kind-{flag('--name')}\"\n")
        if key[:3] == ("kubectl", "get", "nodes"):
            return done(node_list(self.ready, self.node_version))
        if key[:2] == ("kubectl", "version"):
            return done(json.dumps({"clientVersion": {"gitVersion": "v1.32.4"},
                                    "serverVersion": {"gitVersion": self.server, "major": "1"}}))
        if key[:3] == ("kubectl", "get", "namespace"):
            return done("")  # --ignore-not-found: not there
        if key[:3] == ("kubectl", "create", "namespace"):
            return done(f"namespace/{key[3]} created\n")
        if key[:3] == ("kubectl", "label", "namespace"):
            return done(f"namespace/{key[3]} labeled\n")
        if key[:3] == ("kubectl", "get", "serviceaccount"):
            return done(json.dumps({"apiVersion": "v1", "kind": "ServiceAccount",
                                    "metadata": {"name": "default"}}))
        if key[:3] == ("kubectl", "delete", "namespace"):
            return done(f'namespace "{key[3]}" deleted\n')
        raise AssertionError(f"unexpected command: {argv}")


class Clock:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def cluster(machine, tmp_path, clock=None, **options) -> KindCluster:
    clock = clock or Clock()
    return KindCluster(options.pop("name", "sidecar-lab"), options.pop("k8s_version", "1.33"), runner=machine,
                       state=tmp_path / "state", quiet=True, sleep=clock.sleep, clock=clock, **options)


def test_create_sends_pinned_config_and_uses_only_labkits_kubeconfig(tmp_path):
    machine = Machine()
    made = cluster(machine, tmp_path)
    assert made.ensure() is True
    files = tmp_path / "state" / "clusters" / "sidecar-lab"
    kubeconfig, config = files / "kubeconfig", files / "kind-config.yaml"
    assert machine.commands() == [
        ("docker", "--version"), ("docker", "info", "--format", "{{.ServerVersion}}"), ("kind", "version"),
        ("kind", "get", "clusters"),
        ("kind", "create", "cluster", "--name", "sidecar-lab", "--config", str(config), "--kubeconfig", str(kubeconfig)),
        ("kubectl", "get", "nodes", "-o", "json")]
    nodes = machine.ran("kubectl")[0]
    assert nodes["argv"][:5] == ["kubectl", "--kubeconfig", str(kubeconfig), "--context", "kind-sidecar-lab"]
    for call in machine.ran("kind") + machine.ran("kubectl"):
        if core(call["argv"]) != ("kind", "version"):
            assert call["env"]["KUBECONFIG"] == str(kubeconfig)  # never ~/.kube/config
    assert yaml.safe_load(config.read_text()) == {
        "kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4",
        "nodes": [{"role": "control-plane", "image": KIND_NODE_IMAGES["v0.29.0"]["1.33"]}]}
    marker = json.loads((files / "cluster.json").read_text())
    assert marker["status"] == "ready" and marker["k8s_version"] == "1.33" and marker["kind_release"] == "v0.29.0"


def test_the_1_28_cluster_gets_the_gate_and_the_image_of_the_installed_kind(tmp_path):
    machine = Machine(kind="kind v0.25.0 go1.22.9 linux/amd64")
    made = cluster(machine, tmp_path, k8s_version="1.28")
    made.ensure()
    config = yaml.safe_load(made.config_path.read_text())
    assert config["featureGates"] == {"SidecarContainers": True}
    assert config["nodes"][0]["image"] == KIND_NODE_IMAGES["v0.25.0"]["1.28"]


def test_node_never_ready_deletes_the_cluster_and_says_why(tmp_path):
    machine = Machine(ready=False)
    clock = Clock()
    made = cluster(machine, tmp_path, clock=clock, ready_timeout=5)
    with pytest.raises(WaitTimeout) as info:
        made.ensure()
    assert "node not Ready after 5s" in str(info.value) and "NetworkPluginNotReady" in str(info.value)
    assert machine.commands()[-1] == ("kind", "delete", "cluster", "--name", "sidecar-lab", "--kubeconfig",
                                      str(made.kubeconfig))
    assert machine.clusters == [] and not made.dir.exists()
    assert clock.sleeps == [1.0] * 5


def test_ctrl_c_during_create_deletes_what_was_made(tmp_path):
    machine = Machine(override={("kind", "create", "cluster"): KeyboardInterrupt()})
    made = cluster(machine, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        made.ensure()
    assert ("kind", "delete", "cluster", "--name", "sidecar-lab", "--kubeconfig", str(made.kubeconfig)) in machine.commands()
    assert not made.dir.exists()


def test_a_transient_start_failure_is_retried_once(tmp_path):
    machine = Machine(override={("kind", "create", "cluster"): [done("", BOOT_DEADLINE, 1), None]})
    clock = Clock()
    made = cluster(machine, tmp_path, clock=clock, retry_delay=7)
    assert made.ensure() is True
    creates = [c for c in machine.commands() if c[:3] == ("kind", "create", "cluster")]
    deletes = [c for c in machine.commands() if c[:3] == ("kind", "delete", "cluster")]
    assert len(creates) == 2 and len(deletes) == 1
    assert machine.commands().index(deletes[0]) < len(machine.commands()) - 2  # deleted between the tries
    assert clock.sleeps[0] == 7
    assert machine.clusters == ["sidecar-lab"]


def test_a_second_transient_failure_is_not_retried_again(tmp_path):
    machine = Machine(override={("kind", "create", "cluster"): done("", BOOT_DEADLINE, 1)})
    made = cluster(machine, tmp_path)
    with pytest.raises(ToolError) as info:
        made.ensure()
    assert len([c for c in machine.commands() if c[:3] == ("kind", "create", "cluster")]) == 2
    assert info.value.command[:3] == ["kind", "create", "cluster"] and info.value.returncode == 1
    assert "Multi-User System" in info.value.stderr


def test_a_real_error_is_not_retried_and_carries_the_command(tmp_path):
    error = ('ERROR: failed to create cluster: failed to init node with kubeadm: command "docker exec --privileged '
             'sidecar-lab-control-plane kubeadm init" failed with error: exit status 1\n'
             'Command Output: unrecognized feature gate: SidecarContainers\n')
    machine = Machine(override={("kind", "create", "cluster"): done("", error, 1)})
    made = cluster(machine, tmp_path)
    with pytest.raises(ToolError, match="unrecognized feature gate") as info:
        made.ensure()
    assert len([c for c in machine.commands() if c[:3] == ("kind", "create", "cluster")]) == 1
    assert "--config" in info.value.command
    assert machine.commands()[-1][:3] == ("kind", "delete", "cluster")


def test_keep_failed_retains_the_cluster_for_debugging(tmp_path):
    machine = Machine(override={("kind", "create", "cluster"): done("", "ERROR: boom\n", 1)})
    made = cluster(machine, tmp_path, keep_failed=True)
    with pytest.raises(ToolError):
        made.ensure()
    assert "--retain" in machine.ran("kind", "create")[0]["argv"]
    assert not machine.ran("kind", "delete")


def test_reuses_the_cluster_labkit_made(tmp_path):
    first = Machine()
    cluster(first, tmp_path).ensure()
    again = Machine(clusters=["sidecar-lab"])
    made = cluster(again, tmp_path)
    assert made.ensure() is False
    assert not again.ran("kind", "create") and not again.ran("kind", "delete")
    assert again.ran("kind", "export", "kubeconfig")[0]["argv"][-2:] == ["--kubeconfig", str(made.kubeconfig)]


def test_refuses_a_cluster_of_that_name_it_did_not_make(tmp_path):
    machine = Machine(clusters=["sidecar-lab"])
    with pytest.raises(BackendUnavailable, match="labkit did not create it"):
        cluster(machine, tmp_path).ensure()
    assert not machine.ran("kind", "create") and not machine.ran("kind", "delete")


def test_refuses_to_reuse_a_cluster_of_another_version(tmp_path):
    cluster(Machine(), tmp_path, k8s_version="1.33").ensure()
    machine = Machine(clusters=["sidecar-lab"], kind="kind v0.27.0 go1.23.6 linux/amd64")
    with pytest.raises(BackendUnavailable, match=r"(?s)runs Kubernetes 1.33.*labkit down --name sidecar-lab"):
        cluster(machine, tmp_path, k8s_version="1.29").ensure()
    assert not machine.ran("kind", "delete")


def test_a_half_made_cluster_from_an_earlier_run_is_replaced(tmp_path):
    machine = Machine(override={("kind", "create", "cluster"): [SystemExit(1), None]})
    with pytest.raises(SystemExit):  # a process killed mid-create leaves the marker at "creating"
        cluster(machine, tmp_path, keep_failed=True).ensure()
    later = Machine(clusters=["sidecar-lab"])
    assert cluster(later, tmp_path).ensure() is True
    assert [c[:3] for c in later.commands() if c[0] == "kind" and c[1] in ("create", "delete")] == [
        ("kind", "delete", "cluster"), ("kind", "create", "cluster")]


def test_installed_kind_without_the_version_fails_before_anything_is_made(tmp_path):
    machine = Machine(kind="kind v0.33.0 go1.25.1 linux/amd64")
    with pytest.raises(BackendUnavailable, match="go install sigs.k8s.io/kind@v0.25.0"):
        cluster(machine, tmp_path, k8s_version="1.28").ensure()
    assert machine.commands() == [("docker", "--version"), ("docker", "info", "--format", "{{.ServerVersion}}"),
                                  ("kind", "version"), ("kind", "get", "clusters")]  # only looked
    assert not (tmp_path / "state").exists()


def test_a_cluster_labkit_made_is_reused_after_a_kind_upgrade_whose_release_lists_no_image_for_it(tmp_path):
    cluster(Machine(kind="kind v0.25.0 go1.22.9 linux/amd64", server="v1.28.15"), tmp_path, k8s_version="1.28").ensure()
    upgraded = Machine(kind="kind v0.33.0 go1.25.1 linux/amd64", clusters=["sidecar-lab"], server="v1.28.15")
    assert cluster(upgraded, tmp_path, k8s_version="1.28").ensure() is False  # v0.33.0 lists no 1.28 image
    assert not upgraded.ran("kind", "create") and not upgraded.ran("kind", "delete")


def test_reuse_checks_the_version_the_node_runs(tmp_path):
    cluster(Machine(), tmp_path, k8s_version="1.33").ensure()
    replaced = Machine(clusters=["sidecar-lab"], node_version="v1.34.0")  # someone swapped the cluster
    with pytest.raises(BackendUnavailable, match=r"(?s)nodes running Kubernetes 1\.34, but 1\.33 was asked for"
                                                 r".*labkit down --name sidecar-lab"):
        cluster(replaced, tmp_path, k8s_version="1.33").ensure()
    assert not replaced.ran("kind", "delete")


def test_the_ready_marker_is_written_only_once_the_node_is_ready(tmp_path):
    states = []

    class Watching(Machine):
        def default(self, argv, key):
            if key[:3] == ("kubectl", "get", "nodes"):
                states.append(json.loads((tmp_path / "state" / "clusters" / "sidecar-lab" / "cluster.json")
                                         .read_text())["status"])
            return super().default(argv, key)

    made = cluster(Watching(), tmp_path)
    made.ensure()
    assert states == ["creating"]  # a run killed during the wait leaves a cluster the next run replaces
    assert made.marker()["status"] == "ready"


def test_no_docker_engine_fails_fast_and_touches_nothing(tmp_path):
    machine = Machine(override={("docker", "info"): done("", NO_ENGINE, 1)})
    with pytest.raises(BackendUnavailable) as info:
        cluster(machine, tmp_path).ensure()
    assert str(info.value).startswith("no Docker engine: docker info failed: Cannot connect to the Docker daemon")
    assert "Fix:" in str(info.value)
    assert machine.commands() == [("docker", "--version"), ("docker", "info", "--format", "{{.ServerVersion}}")]
    assert not (tmp_path / "state").exists()


def test_delete_cluster_deletes_only_what_labkit_made(tmp_path):
    state = tmp_path / "state"
    with pytest.raises(BackendUnavailable, match="not created by labkit"):
        delete_cluster("sidecar-lab", runner=Machine(clusters=["sidecar-lab"]), state=state, quiet=True)
    machine = Machine()
    assert create_cluster("sidecar-lab", "1.33", runner=machine, state=state, quiet=True) is True
    assert delete_cluster("sidecar-lab", runner=machine, state=state, quiet=True) is True
    assert machine.clusters == [] and not (state / "clusters" / "sidecar-lab").exists()
    assert delete_cluster("sidecar-lab", runner=machine, state=state, quiet=True) is False


# -- KindLab ---------------------------------------------------------------------------------
def lab(machine, tmp_path, **options):
    return KindLab("1.33", runner=machine, state=tmp_path / "state", quiet=True, record=False, **options)


def test_kindlab_made_cluster_is_deleted_at_close(tmp_path):
    machine = Machine()
    with lab(machine, tmp_path) as kind_lab:
        assert kind_lab.backend == "kind" and kind_lab.kubernetes_version == "1.33.1"
        namespace = kind_lab.namespace
        assert namespace.startswith("labkit-")
    tail = machine.commands()[-2:]
    assert tail[0] == ("kubectl", "delete", "namespace", namespace, "--wait=false")
    assert tail[1][:5] == ("kind", "delete", "cluster", "--name", "sidecar-lab")
    assert machine.clusters == []


def test_kindlab_keeps_the_cluster_when_asked_and_never_deletes_one_it_reused(tmp_path):
    machine = Machine()
    lab(machine, tmp_path, keep_cluster=True).close()
    assert machine.clusters == ["sidecar-lab"] and not machine.ran("kind", "delete")
    reused = Machine(clusters=["sidecar-lab"])
    lab(reused, tmp_path, keep_cluster=False).close()
    assert reused.clusters == ["sidecar-lab"] and not reused.ran("kind", "delete")
    assert reused.ran("kubectl", "delete", "namespace")  # its own namespace still goes


def test_kindlab_deletes_the_cluster_it_made_when_setup_fails(tmp_path):
    machine = Machine(override={("kubectl", "version"): done("", "The connection to the server was refused\n", 1)})
    with pytest.raises(BackendUnavailable, match="cannot reach the cluster"):
        lab(machine, tmp_path)
    assert machine.commands()[-1][:3] == ("kind", "delete", "cluster") and machine.clusters == []


def test_environment_is_never_mutated(tmp_path):
    before = dict(os.environ)
    lab(Machine(), tmp_path).close()
    assert dict(os.environ) == before


def test_down_without_docker_and_without_a_labkit_cluster_has_nothing_to_do(tmp_path):
    state = tmp_path / "state"
    no_engine = Machine(override={("docker", "info"): done("", NO_ENGINE, 1)})
    assert delete_cluster("sidecar-lab", runner=no_engine, state=state, quiet=True) is False
    assert not no_engine.ran("kind")
    # ... but a cluster labkit made cannot be forgotten just because Docker is down now
    assert create_cluster("sidecar-lab", "1.33", runner=Machine(), state=state, quiet=True) is True
    with pytest.raises(BackendUnavailable, match="cannot delete kind cluster 'sidecar-lab'"):
        delete_cluster("sidecar-lab", runner=no_engine, state=state, quiet=True)
