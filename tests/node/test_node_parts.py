"""labkit node's parts that need no root and no running node: pins, configs, images, the registry client."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tarfile
import io
import time
import urllib.request
from pathlib import Path

import pytest

from labkit.node import build, config, images, repository
from labkit.node.config import Layout, Ports


PINNED = build.available_minors()


def test_the_newest_two_minors_are_pinned_each_at_its_newest_patch_the_proxy_had():
    """1.37 (what CI runs) and 1.36 (the lab's default version); v1.37.2 and v1.36.3 were the newest
    patches the module proxy served on 2026-12-05."""
    assert PINNED[-2:] == ["1.36", "1.37"]
    assert [build.pins(minor).kubernetes for minor in ("1.36", "1.37")] == ["v1.36.3", "v1.37.2"]


@pytest.mark.parametrize("minor", PINNED)
def test_pins_are_read_from_the_wrapper_modules_go_mod(minor):
    pins = build.pins(minor)
    go_mod = (build.MODULES / f"kubernetes-{minor}" / "go.mod").read_text()
    assert f"k8s.io/kubernetes {pins.kubernetes}" in go_mod and pins.kubernetes.startswith(f"v{minor}.")
    assert f"go.etcd.io/etcd/server/v3 {pins.etcd}" in go_mod
    runtime = (build.MODULES / "runtime" / "go.mod").read_text()
    assert f"github.com/containerd/containerd/v2 {pins.containerd}" in runtime
    assert f"github.com/opencontainers/runc {pins.runc}" in runtime
    with pytest.raises(Exception, match=f"no node is pinned for Kubernetes 1.30; pinned: {', '.join(PINNED)}"):
        build.pins("1.30")


@pytest.mark.parametrize("minor", PINNED)
def test_every_staging_module_is_replaced_by_its_published_tag_of_the_same_release(minor):
    """Upstream's go.mod maps each k8s.io staging module to ./staging/src; the wrapper must map every
    one to the tag of the same release, or the build mixes releases; and etcd is the one that
    release's own go.mod pins (read from the module cache when the tag is there)."""
    go_mod = (build.MODULES / f"kubernetes-{minor}" / "go.mod").read_text()
    release = build.pins(minor).kubernetes  # v1.3x.N
    staging_tag = "v0." + release.removeprefix("v1.")
    replaced = [line.split() for line in go_mod.splitlines() if "=>" in line]
    assert len(replaced) >= 30
    for name, _, target, tag in replaced:
        assert name == target and name.startswith("k8s.io/") and tag == staging_tag, (name, tag)
    upstream = Path.home() / "go" / "pkg" / "mod" / f"k8s.io/kubernetes@{release}" / "go.mod"
    if upstream.is_file():
        text = upstream.read_text()
        assert {line.split()[0] for line in text.splitlines() if "=> ./staging" in line} == {r[0] for r in replaced}
        assert f"go.etcd.io/etcd/server/v3 {build.pins(minor).etcd}" in text


def test_version_ldflags_are_those_of_hack_lib_version_sh():
    flags = build.version_ldflags("v1.37.2")
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {package}.gitVersion=v1.37.2" in flags
        assert f"-X {package}.gitMajor=1" in flags and f"-X {package}.gitMinor=37" in flags


def test_requires_reads_single_and_block_requires(tmp_path):
    (tmp_path / "go.mod").write_text("module x\n\nrequire a.b/c v1.2.3\n\nrequire (\n\td.e/f v0.1.0 // indirect\n)\n")
    assert build.requires(tmp_path / "go.mod") == {"a.b/c": "v1.2.3", "d.e/f": "v0.1.0"}


def _layout(tmp_path: Path) -> Layout:
    return Layout(state=tmp_path / "state", run=tmp_path / "run", bin=tmp_path / "bin", ports=Ports())


def test_the_kubelet_allows_cgroup_v1_and_uses_the_nodes_own_cgroup_root_and_runtime(tmp_path):
    layout = _layout(tmp_path)
    kubelet = json.loads(config.kubelet_config(layout, {}))
    assert kubelet["failCgroupV1"] is False  # the default is true from 1.35; this machine is cgroup v1
    assert kubelet["cgroupDriver"] == "cgroupfs" and kubelet["cgroupRoot"] == config.CGROUP_ROOT
    assert kubelet["containerRuntimeEndpoint"] == f"unix://{layout.containerd_socket}"
    assert kubelet["address"] == config.NODE_IP and kubelet["readOnlyPort"] == 0
    assert "featureGates" not in kubelet
    assert json.loads(config.kubelet_config(layout, {"ContainerStopSignals": True}))["featureGates"] == {
        "ContainerStopSignals": True}
    containerd = config.containerd_config(layout, "registry.k8s.io/pause:3.10.2", tmp_path / "runc")
    assert 'sandbox = "registry.k8s.io/pause:3.10.2"' in containerd
    assert "SystemdCgroup = false" in containerd and f'BinaryName = "{tmp_path / "runc"}"' in containerd
    assert f'config_path = "{layout.etc / "certs.d"}"' in containerd


def test_pods_reach_only_the_node_no_masquerade_no_default_route():
    conflist = json.loads(config.cni_conflist())
    [bridge] = conflist["plugins"]
    assert bridge["type"] == "bridge" and bridge["ipMasq"] is False and bridge["isGateway"] is True
    assert bridge["ipam"]["routes"] == []
    import ipaddress

    subnet = ipaddress.ip_network(bridge["ipam"]["ranges"][0][0]["subnet"])
    assert ipaddress.ip_address(config.NODE_IP) in subnet
    assert not subnet.is_private or subnet.subnet_of(ipaddress.ip_network("198.18.0.0/15"))


def test_the_mirror_is_the_only_host_of_every_registry(tmp_path):
    layout = _layout(tmp_path)
    text = config.hosts_toml(layout)
    assert f'server = "http://{layout.registry}"' in text
    assert f'[host."http://{layout.registry}"]' in text and '"pull", "resolve"' in text


def test_components_listen_on_loopback_and_the_apiserver_trusts_the_nodes_ca(tmp_path):
    layout = _layout(tmp_path)
    commands = config.commands(layout, {})
    api = commands["kube-apiserver"]
    assert "--bind-address=127.0.0.1" in api and "--authorization-mode=Node,RBAC" in api
    assert f"--client-ca-file={layout.pki / 'ca.crt'}" in api
    assert all("--pod-infra-container-image" not in arg for argv in commands.values() for arg in argv)  # gone in 1.35
    assert "--hostname-override=labkit-node" in commands["kubelet"]
    assert config.gates_flag({"B": False, "A": True}) == ["--feature-gates=A=true,B=false"]


def _image(tmp_path: Path) -> images.Image:
    binary = tmp_path / "tool"
    binary.write_bytes(b"\x7fELF fake")
    return images.Image(("docker.io/library/x:1", "docker.io/library/x:latest"), "a test image, made by hand",
                        files={"bin/tool": binary, "etc/motd": b"hi\n"}, links={"bin/sh": "tool"}, dirs=("tmp",),
                        entrypoint=["/bin/tool"], user="65535:65535", stop_signal="SIGQUIT", ports=(80,))


def test_an_image_layer_is_deterministic_and_holds_what_it_says(tmp_path):
    image = _image(tmp_path)
    first, second = images.layer(image), images.layer(image)
    assert first == second
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["bin/tool"].mode == 0o755 and members["etc/motd"].mode == 0o644
    assert members["bin/sh"].issym() and members["bin/sh"].linkname == "tool"
    assert members["tmp"].isdir() and members["tmp"].mode == 0o1777
    cfg = json.loads(images.config(image, "sha256:abc"))["config"]
    assert cfg["StopSignal"] == "SIGQUIT" and cfg["User"] == "65535:65535" and cfg["ExposedPorts"] == {"80/tcp": {}}
    assert cfg["Labels"][images.LABEL] == "a test image, made by hand"


def test_static_web_server_and_pause_images_keep_upstreams_stop_signal_user_and_port(tmp_path):
    if not (images.BUSYBOX.is_file() and images.BASH.is_file()):
        pytest.skip("busybox-static or bash-static is not installed (.ci/install-node-deps installs them)")
    made = images.images(pause=tmp_path / "p", pause_tag="3.10.2", agnhost=tmp_path / "a", agnhost_tag="2.66.1",
                         static_web_server=tmp_path / "s", static_web_server_version="2.44.0",
                         kubernetes="v1.37.2", busybox_version="v1.35.0", bash_version="5.2.15(1)-release")
    by_ref = {ref: image for image in made for ref in image.refs}
    sws = by_ref["docker.io/joseluisq/static-web-server:2.44.0"]
    assert sws.stop_signal == "SIGQUIT" and sws.ports == (80,) and sws.entrypoint == ["/static-web-server"]
    assert by_ref["registry.k8s.io/pause:3.10.2"].user == "65535:65535"
    agnhost = by_ref["registry.k8s.io/e2e-test-images/agnhost:2.66.1"]
    assert agnhost.entrypoint == ["/agnhost"] and agnhost.cmd == ["pause"]
    # upstream's agnhost has bash (the e2e scripts run /bin/bash -c ...); Debian's static bash is it here
    assert agnhost.files["bin/bash"] == images.BASH and "bash-static" in agnhost.description
    assert "stand-in" in by_ref["docker.io/library/alpine:3.20"].description  # never claims to be Alpine


@pytest.mark.parametrize("ref, expected", [
    ("busybox", "busybox"), ("docker.io/library/busybox:1.36", "busybox"),
    ("registry.k8s.io/e2e-test-images/agnhost:2.66.1", "e2e-test-images/agnhost"),
    ("joseluisq/static-web-server:2.44.0", "joseluisq/static-web-server"),
    ("localhost:5000/x/y@sha256:00", "x/y")])
def test_repository_drops_host_library_and_tag(ref, expected):
    assert repository(ref) == expected


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_image_pushed_to_the_real_registry_reads_back_with_its_label(tmp_path):
    """Against Debian's docker-registry (distribution 2.8), the registry the node runs."""
    if shutil.which("docker-registry") is None:
        pytest.skip("docker-registry is not installed (apt-get install docker-registry; .ci/run does)")
    port = _free_port()
    layout = Layout(state=tmp_path, run=tmp_path, bin=tmp_path, ports=Ports(registry=port))
    cfg = tmp_path / "registry.yml"
    cfg.write_text(config.registry_config(layout, tmp_path / "storage"))
    server = subprocess.Popen(["docker-registry", "serve", str(cfg)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        registry = images.Registry(layout.registry)
        image = _image(tmp_path)
        digest = registry.push(image)
        assert registry.push(image) == digest  # pushing again changes nothing
        for tag in ("1", "latest"):
            request = urllib.request.Request(f"http://127.0.0.1:{port}/v2/library/x/manifests/{tag}",
                                             headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
            with urllib.request.urlopen(request) as answer:
                manifest = json.loads(answer.read())
                assert answer.headers["Docker-Content-Digest"] == digest
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/library/x/blobs/{manifest['config']['digest']}") as a:
                assert json.loads(a.read())["config"]["Labels"][images.LABEL] == "a test image, made by hand"
    finally:
        server.terminate()
        server.wait(10)


def test_the_static_web_server_build_makes_its_folder_on_a_new_machine(tmp_path, monkeypatch):
    """cargo runs in the build's folder, which nothing has made on a new machine (a cold .ci/run
    failed here with FileNotFoundError). A stand-in ``cargo`` on PATH records where it ran and
    writes the binary where ``cargo install --root`` would."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    cargo = bin_dir / "cargo"
    cargo.write_text('#!/bin/sh\npwd > "$CARGO_TARGET_DIR.cwd"\nroot=""\nwhile [ $# -gt 0 ]; do\n'
                     '  [ "$1" = "--root" ] && root="$2"\n  shift\ndone\n'
                     'mkdir -p "$root/bin" && printf x > "$root/bin/static-web-server"\n')
    cargo.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    out = tmp_path / "cache" / "node" / "build" / "static-web-server-x"       # nothing made yet
    binary = build.build_static_web_server(out, tmp_path / "logs", quiet=True)
    assert binary == out / "bin" / "static-web-server" and binary.read_text() == "x"
    assert Path(f"{out / 'target'}.cwd").read_text().strip() == str(out)
