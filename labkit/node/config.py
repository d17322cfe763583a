"""The node's configuration files, rendered from one :class:`Layout` (docs/node.md).

Everything the node writes lives under two folders of its own: ``state`` (etcd's data, the
kubelet's and containerd's roots, certificates, configs, logs) and ``run`` (sockets). Nothing is
written to ``/etc``: containerd, the CNI plugins and the registry are pointed at the node's own
files. Addresses: every server listens on 127.0.0.1, except the kubelet, which listens on the
node's address (the gateway of the pod bridge, ``NODE_IP``) so that the API server reaches it
for ``kubectl logs``. The pod network is one Linux bridge with no route out of the machine:
no masquerading, no default route in the pods (docs/node.md, "Network").
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

NODE_NAME = "labkit-node"
BRIDGE = "labkit0"
# 198.18.0.0/15 is set aside for benchmarking networks (RFC 2544): never routed anywhere, so the
# pods' and services' addresses cannot collide with a network the machine is on.
POD_SUBNET = "198.18.0.0/24"
NODE_IP = "198.18.0.1"
SERVICE_SUBNET = "198.19.0.0/24"
SERVICE_IP = "198.19.0.1"
CGROUP_ROOT = "/labkit-node"
# The registries the lab's images name; containerd sends each to the node's local registry.
MIRRORED_REGISTRIES = ("docker.io", "registry.k8s.io", "quay.io", "ghcr.io", "gcr.io", "cr.fluentbit.io",
                       "public.ecr.aws", "mcr.microsoft.com")


@dataclass(frozen=True)
class Ports:
    """The node's TCP ports on this machine (all on 127.0.0.1 but the kubelet's)."""

    apiserver: int = 16443
    etcd: int = 12379
    etcd_peer: int = 12380
    registry: int = 15000
    kubelet: int = 10250
    kubelet_healthz: int = 10248
    controller_manager: int = 10257
    scheduler: int = 10259

    def all(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Layout:
    """Where the node keeps each thing."""

    state: Path
    run: Path
    bin: Path
    ports: Ports = Ports()

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def etc(self) -> Path:
        return self.state / "etc"

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (``system:masters``): what ``labkit node status`` prints."""
        return self.state / "kubeconfig"

    @property
    def containerd_socket(self) -> Path:
        return self.run / "containerd" / "containerd.sock"

    @property
    def netns_dir(self) -> Path:
        return self.run / "netns"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"

    @property
    def registry(self) -> str:
        return f"127.0.0.1:{self.ports.registry}"


def kubeconfig(layout: Layout, stem: str) -> str:
    """A kubeconfig for one of the node's client certificates."""
    pki = layout.pki
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "labkit-node",
        "clusters": [{"name": "labkit-node", "cluster": {
            "server": layout.server, "certificate-authority": os.fspath(pki / "ca.crt")}}],
        "users": [{"name": stem, "user": {"client-certificate": os.fspath(pki / f"{stem}.crt"),
                                          "client-key": os.fspath(pki / f"{stem}.key")}}],
        "contexts": [{"name": "labkit-node", "context": {"cluster": "labkit-node", "user": stem}}],
    }, indent=2) + "\n"


def registry_config(layout: Layout, storage: Path) -> str:
    """distribution's config: 127.0.0.1 only, no auth (Debian's shipped file asks for htpasswd)."""
    return (f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {storage}\n"
            f"  delete:\n    enabled: true\nhttp:\n  addr: {layout.registry}\n")


def hosts_toml(layout: Layout) -> str:
    """containerd's hosts.toml for one registry: the local registry is its only host.

    ``server`` names the mirror too, so containerd never falls back to the real registry on the
    internet (docs/node.md, "Images"); ``http://`` selects plain HTTP.
    """
    return (f'server = "http://{layout.registry}"\n\n[host."http://{layout.registry}"]\n'
            f'  capabilities = ["pull", "resolve"]\n')


def cni_conflist() -> str:
    """One bridge, host-local addresses, no masquerading and no default route: pods reach only the node."""
    return json.dumps({
        "cniVersion": "1.0.0", "name": "labkit-node",
        "plugins": [{"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False, "hairpinMode": True,
                     "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_SUBNET, "gateway": NODE_IP}]],
                              "routes": []}}],
    }, indent=2) + "\n"


def containerd_config(layout: Layout, sandbox_image: str, runc: Path, *, restrict_oom_score_adj: bool = False) -> str:
    """containerd 2.x config (version 3): its own root, state and socket; CRI with the node's CNI and mirror.

    ``restrict_oom_score_adj``: without CAP_SYS_RESOURCE no process may lower its OOM score below
    its parent's, and the kubelet asks -998 for every sandbox (and -997 for Guaranteed pods); runc
    then fails "failed to update /proc/self/oom_score_adj: Permission denied". containerd's option
    (made for rootless containerd) raises such requests to its own score instead.
    """
    return f"""version = 3
root = "{layout.state / 'containerd'}"
state = "{layout.run / 'containerd-state'}"

[grpc]
  address = "{layout.containerd_socket}"

[ttrpc]
  address = "{layout.containerd_socket}.ttrpc"

[debug]
  level = "warn"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{sandbox_image}"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "{layout.etc / 'certs.d'}"

[plugins.'io.containerd.cri.v1.runtime']
  netns_mounts_under = "{layout.netns_dir}"
  restrict_oom_score_adj = {str(restrict_oom_score_adj).lower()}
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "{layout.etc / 'cni'}"
    max_conf_num = 1
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        SystemdCgroup = false
"""


def kubelet_config(layout: Layout, feature_gates: dict[str, bool]) -> str:
    """The KubeletConfiguration: cgroupfs under the node's own cgroup root, cgroup v1 allowed.

    ``failCgroupV1: false``: from 1.35 the kubelet refuses cgroup v1 by default, and this
    machine's hierarchy is v1. Eviction thresholds are low so that a small CI disk does not
    taint the node with DiskPressure.
    """
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "address": NODE_IP, "port": layout.ports.kubelet, "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1", "healthzPort": layout.ports.kubelet_healthz,
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "cgroupDriver": "cgroupfs", "cgroupRoot": CGROUP_ROOT, "failCgroupV1": False, "failSwapOn": False,
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": os.fspath(layout.pki / "ca.crt")}},
        "authorization": {"mode": "Webhook"},
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                         "nodefs.inodesFree": "1%"},
        "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False, "resolvConf": "/etc/resolv.conf",
        "syncFrequency": "10s", "fileCheckFrequency": "10s",
    }
    if feature_gates:
        config["featureGates"] = dict(feature_gates)
    return json.dumps(config, indent=2) + "\n"


def scheduler_config(layout: Layout) -> str:
    return json.dumps({
        "apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": os.fspath(layout.etc / "scheduler.kubeconfig")},
        "leaderElection": {"leaderElect": False},
    }, indent=2) + "\n"


def gates_flag(feature_gates: dict[str, bool]) -> list[str]:
    if not feature_gates:
        return []
    return ["--feature-gates=" + ",".join(f"{name}={str(value).lower()}" for name, value in sorted(feature_gates.items()))]


def commands(layout: Layout, feature_gates: dict[str, bool]) -> dict[str, list[str]]:
    """Each component's argv, in start order (flags as hack/local-up-cluster.sh passes them)."""
    b, pki, etc, p = layout.bin, layout.pki, layout.etc, layout.ports
    gates = gates_flag(feature_gates)
    return {
        "etcd": [os.fspath(b / "etcd"), "--name=labkit-node", f"--data-dir={layout.state / 'etcd'}",
                 f"--listen-client-urls=http://127.0.0.1:{p.etcd}", f"--advertise-client-urls=http://127.0.0.1:{p.etcd}",
                 f"--listen-peer-urls=http://127.0.0.1:{p.etcd_peer}",
                 f"--initial-advertise-peer-urls=http://127.0.0.1:{p.etcd_peer}",
                 f"--initial-cluster=labkit-node=http://127.0.0.1:{p.etcd_peer}",
                 "--unsafe-no-fsync=true", "--log-level=warn", "--listen-metrics-urls="],
        "kube-apiserver": [
            os.fspath(b / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{p.etcd}",
            "--bind-address=127.0.0.1", f"--secure-port={p.apiserver}", f"--cert-dir={layout.state / 'apiserver'}",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-account-key-file={pki / 'service-account.pub'}",
            f"--service-account-signing-key-file={pki / 'service-account.key'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-cluster-ip-range={SERVICE_SUBNET}", "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction", "--allow-privileged=true",
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            "--kubelet-preferred-address-types=InternalIP", "--endpoint-reconciler-type=none",
            "--profiling=false", *gates],
        "kube-controller-manager": [
            os.fspath(b / "kube-controller-manager"), f"--kubeconfig={etc / 'controller-manager.kubeconfig'}",
            f"--authentication-kubeconfig={etc / 'controller-manager.kubeconfig'}",
            f"--authorization-kubeconfig={etc / 'controller-manager.kubeconfig'}",
            f"--service-account-private-key-file={pki / 'service-account.key'}", f"--root-ca-file={pki / 'ca.crt'}",
            "--use-service-account-credentials=true", f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}", "--controllers=*", "--leader-elect=false",
            "--bind-address=127.0.0.1", f"--secure-port={p.controller_manager}", "--profiling=false", *gates],
        "kube-scheduler": [
            os.fspath(b / "kube-scheduler"), f"--config={etc / 'scheduler.yaml'}",
            f"--authentication-kubeconfig={etc / 'scheduler.kubeconfig'}",
            f"--authorization-kubeconfig={etc / 'scheduler.kubeconfig'}",
            "--bind-address=127.0.0.1", f"--secure-port={p.scheduler}", "--profiling=false", *gates],
        "kubelet": [
            os.fspath(b / "kubelet"), f"--config={etc / 'kubelet.yaml'}", f"--kubeconfig={etc / 'kubelet.kubeconfig'}",
            f"--hostname-override={NODE_NAME}", f"--node-ip={NODE_IP}", f"--root-dir={layout.state / 'kubelet'}",
            f"--cert-dir={layout.state / 'kubelet' / 'pki'}", "--v=1"],
    }
