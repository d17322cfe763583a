"""The node's images: built here from what the registries give, each labelled with what it really is.

No image can be pulled from the internet, so the node runs a local registry (Debian's
``docker-registry``, distribution 2.8) and containerd uses it as the mirror of every registry
the lab names; the kubelet then pulls for real (``Pulling``/``Pulled`` events, pull policies).
Each image is one layer made here and pushed with the registry's HTTP API (OCI image
manifest, uncompressed layer). What each image is, and how it differs from the real one, is in
its ``org.opencontainers.image.description`` label and in docs/node.md.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BackendUnavailable

BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static
BASH = Path("/bin/bash-static")  # Debian's bash-static: upstream's agnhost image has bash
# The applets the stand-ins link (a shell and the tools the lab's scripts use).
BUSYBOX_APPLETS = ("sh", "ash", "echo", "sleep", "cat", "ls", "date", "tail", "head", "touch", "rm", "mkdir",
                   "wget", "true", "false", "env", "ps", "kill", "grep", "sed", "awk", "printf", "test", "[",
                   "id", "hostname", "nc", "httpd", "uname", "seq", "tee", "timeout", "yes", "wc")
LABEL = "org.opencontainers.image.description"


@dataclass
class Image:
    """One image to build: its references, files, and the image config the kubelet and runtime read."""

    refs: tuple[str, ...]
    description: str
    files: dict[str, Path | bytes] = field(default_factory=dict)  # path in the image -> source
    links: dict[str, str] = field(default_factory=dict)  # path -> symlink target
    dirs: tuple[str, ...] = ()
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    user: str = ""
    stop_signal: str = ""
    ports: tuple[int, ...] = ()
    workdir: str = ""
    env: tuple[str, ...] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)


def busybox_files() -> tuple[dict[str, Path | bytes], dict[str, str]]:
    if not BUSYBOX.is_file():
        raise BackendUnavailable("busybox-static is not installed (apt-get install busybox-static): the node's "
                                 "busybox and alpine stand-ins are made from it")
    files: dict[str, Path | bytes] = {"bin/busybox": BUSYBOX, "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n"
                                      b"nobody:x:65534:65534:nobody:/:/bin/false\n",
                                      "etc/group": b"root:x:0:\nnobody:x:65534:\n"}
    links = {f"bin/{applet}": "busybox" for applet in BUSYBOX_APPLETS}
    return files, links


def bash_file() -> dict[str, Path | bytes]:
    if not BASH.is_file():
        raise BackendUnavailable("bash-static is not installed (apt-get install bash-static): the node's agnhost "
                                 "image has /bin/bash from it, as upstream's image has bash (the e2e scenarios' "
                                 "scripts run /bin/bash)")
    return {"bin/bash": BASH}


def images(*, pause: Path, pause_tag: str, agnhost: Path, agnhost_tag: str, static_web_server: Path,
           static_web_server_version: str, kubernetes: str, busybox_version: str, bash_version: str) -> list[Image]:
    """Every image the node serves."""
    bb_files, bb_links = busybox_files()
    busybox_tags = ("latest", "1.36", "1.37", "stable")
    alpine_tags = ("latest", "3.20", "3.21", "3.22")
    return [
        Image((f"registry.k8s.io/pause:{pause_tag}",),
              f"pause {pause_tag}: build/pause/linux/pause.c of k8s.io/kubernetes {kubernetes}, compiled here "
              "with the Makefile's CFLAGS (static, -Os); /pause as ENTRYPOINT, USER 65535 as upstream's image",
              files={"pause": pause}, entrypoint=["/pause"], user="65535:65535"),
        Image((f"registry.k8s.io/e2e-test-images/agnhost:{agnhost_tag}",),
              f"agnhost {agnhost_tag}: test/images/agnhost of k8s.io/kubernetes {kubernetes} (its VERSION file), "
              f"built here with CGO_ENABLED=0; upstream's image is Alpine with tools and bash, this one has busybox "
              f"{busybox_version} (Debian's busybox-static) as its shell and tools and GNU bash {bash_version} "
              "(Debian's bash-static) as /bin/bash; ENTRYPOINT /agnhost, CMD pause, "
              "EXPOSE 80 8080 8081 9376 as upstream's Dockerfile",
              files={"agnhost": agnhost, **bb_files, **bash_file()}, links=bb_links, dirs=("tmp",), entrypoint=["/agnhost"],
              cmd=["pause"], ports=(80, 8080, 8081, 9376)),
        Image(tuple(f"docker.io/library/busybox:{t}" for t in busybox_tags)
              + ("registry.k8s.io/e2e-test-images/busybox:1.37.0-2",),
              f"a stand-in: Debian's busybox-static {busybox_version}, not the Docker Hub image "
              "(tags are names the lab uses, not that release); CMD sh as the Docker Hub image",
              files=bb_files, links=bb_links, dirs=("tmp", "root"), cmd=["sh"]),
        Image(tuple(f"docker.io/library/alpine:{t}" for t in alpine_tags),
              f"a stand-in for Alpine: Debian's busybox-static {busybox_version} (Alpine's shell and tools are "
              "busybox too), no apk, no musl; CMD /bin/sh as Alpine's image",
              files=bb_files, links=bb_links, dirs=("tmp", "root"), cmd=["/bin/sh"]),
        Image((f"docker.io/joseluisq/static-web-server:{static_web_server_version}",),
              f"static-web-server {static_web_server_version} from its crate (cargo install --locked), linked "
              "statically; laid out as upstream's docker/scratch/Dockerfile: /static-web-server as ENTRYPOINT, "
              "/public, EXPOSE 80, STOPSIGNAL SIGQUIT",
              files={"static-web-server": static_web_server,
                     "public/index.html": b"<!doctype html><title>static-web-server</title>"
                                          b"<p>static-web-server on labkit's node</p>\n"},
              entrypoint=["/static-web-server"], ports=(80,), stop_signal="SIGQUIT"),
    ]


def layer(image: Image) -> bytes:
    """One uncompressed tar layer, deterministic (fixed times and owners), so digests repeat."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add_dir(name: str) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755, 0
            tar.addfile(info)

        made: set[str] = set()
        entries = sorted(set(image.files) | set(image.links) | set(image.dirs))
        for name in entries:
            parts = name.split("/")
            for i in range(1, len(parts)):
                parent = "/".join(parts[:i])
                if parent not in made:
                    made.add(parent)
                    add_dir(parent)
            if name in image.dirs:
                if name not in made:
                    made.add(name)
                    add_dir(name)
                continue
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if name in image.links:
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, image.links[name], 0o777
                tar.addfile(info)
                continue
            source = image.files[name]
            data = source if isinstance(source, bytes) else source.read_bytes()
            info.size = len(data)
            info.mode = 0o644 if isinstance(source, bytes) else 0o755
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def config(image: Image, layer_digest: str) -> bytes:
    """The OCI image config: what the runtime reads (entrypoint, user, stop signal, ports) and the label."""
    cfg: dict = {"Env": list(image.env), "Labels": {LABEL: image.description,
                                                    "org.opencontainers.image.vendor": "built by labkit node"}}
    if image.entrypoint:
        cfg["Entrypoint"] = image.entrypoint
    if image.cmd:
        cfg["Cmd"] = image.cmd
    if image.user:
        cfg["User"] = image.user
    if image.stop_signal:
        cfg["StopSignal"] = image.stop_signal
    if image.ports:
        cfg["ExposedPorts"] = {f"{port}/tcp": {} for port in image.ports}
    if image.workdir:
        cfg["WorkingDir"] = image.workdir
    return json.dumps({"architecture": _arch(), "os": "linux", "config": cfg,
                       "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
                       "created": "1970-01-01T00:00:00Z"}, sort_keys=True).encode()


def _arch() -> str:
    import platform

    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def repository_and_tag(ref: str) -> tuple[str, str]:
    """``docker.io/library/busybox:1.36`` -> (``library/busybox``, ``1.36``): the path a mirror is asked for."""
    name, _, tag = ref.rpartition(":")
    host, _, path = name.partition("/")
    return path, tag


class Registry:
    """The local registry's HTTP API, just what pushing an image needs."""

    def __init__(self, address: str):
        self.base = f"http://{address}"

    def _request(self, method: str, url: str, data: bytes | None = None, headers: dict | None = None):
        request = urllib.request.Request(url if url.startswith("http") else self.base + url, data=data,
                                         method=method, headers=headers or {})
        return urllib.request.urlopen(request, timeout=60)

    def has_blob(self, repository: str, digest: str) -> bool:
        try:
            with self._request("HEAD", f"/v2/{repository}/blobs/{digest}"):
                return True
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return False
            raise

    def push_blob(self, repository: str, data: bytes) -> str:
        digest = _digest(data)
        if self.has_blob(repository, digest):
            return digest
        with self._request("POST", f"/v2/{repository}/blobs/uploads/") as answer:
            location = answer.headers["Location"]
        separator = "&" if "?" in location else "?"
        with self._request("PUT", f"{location}{separator}digest={digest}", data=data,
                           headers={"Content-Type": "application/octet-stream"}):
            pass
        return digest

    def manifest_digest(self, repository: str, tag: str) -> str | None:
        try:
            with self._request("HEAD", f"/v2/{repository}/manifests/{tag}",
                               headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}) as answer:
                return answer.headers.get("Docker-Content-Digest")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def push(self, image: Image) -> str:
        """Push ``image`` under each of its references; returns the manifest digest."""
        data = layer(image)
        layer_digest = _digest(data)
        cfg = config(image, layer_digest)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _digest(cfg),
                       "size": len(cfg)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest,
                        "size": len(data)}],
            "annotations": {LABEL: image.description},
        }, sort_keys=True).encode()
        digest = _digest(manifest)
        for ref in image.refs:
            repository, tag = repository_and_tag(ref)
            if self.manifest_digest(repository, tag) == digest:
                continue
            self.push_blob(repository, data)
            self.push_blob(repository, cfg)
            with self._request("PUT", f"/v2/{repository}/manifests/{tag}", data=manifest,
                               headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}):
                pass
        return digest


def busybox_version() -> str:
    """The installed busybox-static's version, from its own banner ("BusyBox v1.35.0 (Debian ...)")."""
    return _banner_word([str(BUSYBOX)], 1)


def bash_version() -> str:
    """The installed bash-static's version ("GNU bash, version 5.2.15(1)-release ...")."""
    return _banner_word([str(BASH), "--version"], 3)


def _banner_word(argv: list[str], index: int) -> str:
    import subprocess

    if shutil.which(argv[0]) is None:
        return "unknown"
    banner = subprocess.run(argv, capture_output=True, text=True).stdout.splitlines()
    words = banner[0].split() if banner else []
    return words[index] if len(words) > index else "unknown"
