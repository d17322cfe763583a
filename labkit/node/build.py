"""Building the node from what the package registries give, cached per version (docs/node.md).

* Kubernetes (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, agnhost):
  ``go build`` of the wrapper module ``node/kubernetes-<minor>/`` in this repository, which
  requires ``k8s.io/kubernetes`` at the release tag and replaces each staging module with its
  published tag; the version is stamped with the ldflags ``hack/lib/version.sh`` passes.
* The runtime (containerd, its runc shim, ctr, runc): ``go build`` of ``node/runtime/``.
* pause: ``build/pause/linux/pause.c`` from the same Kubernetes module, compiled as its Makefile does.
* static-web-server: ``cargo install`` of the crate at the blog's version, linked statically.

A build is skipped when its stamp (the module files, the Go version, the flags) is unchanged.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import BackendUnavailable, InvalidInput, ToolError
from ..progress import is_interactive

MODULES = Path(__file__).resolve().parents[2] / "node"
STATIC_WEB_SERVER_VERSION = "2.44.0"
KUBERNETES_TOOLS = {  # package -> the binary's name on the node
    "go.etcd.io/etcd/server/v3": "etcd",
    "k8s.io/kubernetes/cmd/kube-apiserver": "kube-apiserver",
    "k8s.io/kubernetes/cmd/kube-controller-manager": "kube-controller-manager",
    "k8s.io/kubernetes/cmd/kube-scheduler": "kube-scheduler",
    "k8s.io/kubernetes/cmd/kubelet": "kubelet",
    "k8s.io/kubernetes/test/images/agnhost": "agnhost",
}
RUNTIME_TOOLS = {
    "github.com/containerd/containerd/v2/cmd/containerd": "containerd",
    "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2": "containerd-shim-runc-v2",
    "github.com/containerd/containerd/v2/cmd/ctr": "ctr",
    "github.com/opencontainers/runc": "runc",
}
_REQUIRE = re.compile(r"^\s*(?:require\s+)?(\S+)\s+(v\S+)\s*(?://.*)?$")


@dataclass(frozen=True)
class Pins:
    """What one node version is built from, read from the wrapper modules' go.mod files."""

    minor: str
    kubernetes: str
    etcd: str
    containerd: str
    runc: str
    go_directive: str

    @property
    def module_dir(self) -> Path:
        return MODULES / f"kubernetes-{self.minor}"


def available_minors() -> list[str]:
    """The minors this repository pins a node for (a ``node/kubernetes-<minor>`` module each)."""
    if not MODULES.is_dir():
        return []
    return sorted((p.name.split("-", 1)[1] for p in MODULES.glob("kubernetes-*") if (p / "go.mod").is_file()),
                  key=lambda m: tuple(int(x) for x in m.split(".")))


def requires(go_mod: Path) -> dict[str, str]:
    """module -> version of every ``require`` line of a go.mod."""
    result, in_block = {}, False
    for line in go_mod.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("require ("):
            in_block = True
            continue
        if in_block and stripped == ")":
            in_block = False
            continue
        if in_block or stripped.startswith("require "):
            match = _REQUIRE.match(stripped)
            if match:
                result[match.group(1)] = match.group(2)
    return result


def pins(minor: str) -> Pins:
    """The pins for ``minor``; a minor without a wrapper module is refused, naming those there are."""
    module = MODULES / f"kubernetes-{minor}" / "go.mod"
    if not module.is_file():
        if not MODULES.is_dir():
            raise BackendUnavailable(f"the node's Go modules are not here ({MODULES}): labkit node builds from a "
                                     "clone of the sidecar-lab repository")
        raise InvalidInput(f"no node is pinned for Kubernetes {minor}; pinned: {', '.join(available_minors())} "
                           "(node/kubernetes-<minor>/go.mod, docs/node.md)", field="k8s_version")
    kube = requires(module)
    runtime = requires(MODULES / "runtime" / "go.mod")
    go_line = next(line for line in module.read_text().splitlines() if line.startswith("go "))
    return Pins(minor=minor, kubernetes=kube["k8s.io/kubernetes"], etcd=kube["go.etcd.io/etcd/server/v3"],
                containerd=runtime["github.com/containerd/containerd/v2"],
                runc=runtime["github.com/opencontainers/runc"], go_directive=go_line.split()[1])


def version_ldflags(version: str) -> list[str]:
    """The -X flags hack/lib/version.sh passes, so that each component reports its release."""
    major, minor = version.lstrip("v").split(".")[:2]
    flags = []
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {package}.gitVersion={version}", f"-X {package}.gitMajor={major}",
                  f"-X {package}.gitMinor={minor}", f"-X {package}.gitTreeState=clean"]
    return flags


def go_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    # GOTOOLCHAIN=local: build with the Go here, never download another toolchain behind the user's back.
    return {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod", **(extra or {})}


class Reporter:
    """Says what a long step is doing: a bar when someone watches, a line a minute otherwise."""

    def __init__(self, desc: str, total: int | None, quiet: bool = False):
        self.desc, self.total, self.quiet = desc, total, quiet
        self.n = 0
        self.start = time.monotonic()
        self._bar = None
        self._last = self.start
        if quiet:
            return
        if is_interactive():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, leave=True)
        else:
            print(f"labkit node: {desc} ...", file=sys.stderr, flush=True)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif not self.quiet and time.monotonic() - self._last >= 60:
            self._last = time.monotonic()
            count = f"{self.n}/{self.total}" if self.total else str(self.n)
            print(f"labkit node:   {self.desc}: {count} steps, {self._elapsed()}", file=sys.stderr, flush=True)

    def _elapsed(self) -> str:
        seconds = time.monotonic() - self.start
        return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"

    def close(self, ok: bool = True) -> None:
        if self._bar is not None:
            self._bar.close()
        elif not self.quiet:
            print(f"labkit node: {self.desc}: {'done' if ok else 'FAILED'} in {self._elapsed()}",
                  file=sys.stderr, flush=True)


def _run_counting(argv: list[str], *, cwd: Path, env: dict[str, str], reporter: Reporter, log: Path) -> None:
    """Run a build command, counting its output lines as steps; its whole output goes to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        out.write("$ " + " ".join(argv) + "\n")
        out.flush()
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
        tail: list[str] = []
        try:
            assert process.stdout is not None
            for line in process.stdout:
                out.write(line)
                tail = (tail + [line])[-30:]
                reporter.update()
            code = process.wait()
        except BaseException:
            process.kill()
            process.wait()
            reporter.close(ok=False)
            raise
    if code != 0:
        reporter.close(ok=False)
        raise ToolError(argv, code, "", "".join(tail) + f"\n(whole log: {log})")
    reporter.close()


def _stamp(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _go_version(env: dict[str, str]) -> str:
    try:
        return subprocess.run(["go", "version"], capture_output=True, text=True, env=env, check=True).stdout.strip()
    except FileNotFoundError:
        raise BackendUnavailable("go not found on PATH: labkit node builds Kubernetes from its Go modules "
                                 "(install Go 1.26 or later)") from None


def _fresh(directory: Path, stamp: str, names: list[str]) -> bool:
    marker = directory / ".stamp"
    return marker.is_file() and marker.read_text() == stamp and all((directory / n).is_file() for n in names)


def build_go_module(module: Path, tools: dict[str, str], out: Path, *, ldflags: list[str], desc: str,
                    logs: Path, quiet: bool = False, cgo: bool = True, tags: tuple[str, ...] = ()) -> None:
    """``go build`` every tool of ``module`` into ``out``, named as ``tools`` says; cached by a stamp."""
    env = go_env({"CGO_ENABLED": "1" if cgo else "0"})
    stamp = _stamp((module / "go.mod").read_bytes(), (module / "go.sum").read_bytes(), _go_version(env),
                   " ".join(ldflags), " ".join(sorted(tools)), f"cgo={cgo}", f"tags={','.join(tags)}")
    if _fresh(out, stamp, list(tools.values())):
        return
    out.mkdir(parents=True, exist_ok=True)
    packages = subprocess.run(["go", "list", "-deps", *tools], cwd=module, env=env, capture_output=True, text=True)
    total = len(packages.stdout.split()) if packages.returncode == 0 else None
    reporter = Reporter(desc, total, quiet)
    staging = out / ".building"
    staging.mkdir(exist_ok=True)
    _run_counting(["go", "build", "-v", "-trimpath", *(["-tags", ",".join(tags)] if tags else []), "-ldflags", " ".join(["-s", "-w", *ldflags]),
                   "-o", f"{staging}{os.sep}", *tools], cwd=module, env=env, reporter=reporter,
                  log=logs / f"build-{module.name}.log")
    for package, name in tools.items():
        built = staging / package.rstrip("/").split("/")[-2 if re.fullmatch(r"v\d+", package.split("/")[-1]) else -1]
        os.replace(built, out / name)
    staging.rmdir()
    (out / ".stamp").write_text(stamp)


def build_pause(source: Path, out: Path, tag: str) -> Path:
    """``pause`` from build/pause/linux/pause.c, with the Makefile's CFLAGS (static, -Os)."""
    binary = out / "pause"
    stamp = _stamp(source.read_bytes(), tag)
    marker = out / ".pause-stamp"
    if binary.is_file() and marker.is_file() and marker.read_text() == stamp:
        return binary
    out.mkdir(parents=True, exist_ok=True)
    argv = ["gcc", "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{tag}-labkit", "-o", os.fspath(binary),
            os.fspath(source)]
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise ToolError(argv, result.returncode, result.stdout, result.stderr)
    marker.write_text(stamp)
    return binary


def build_static_web_server(out: Path, logs: Path, quiet: bool = False) -> Path:
    """static-web-server from its crate, statically linked like the upstream scratch image's binary."""
    binary = out / "bin" / "static-web-server"
    stamp = _stamp(STATIC_WEB_SERVER_VERSION, "crt-static")
    marker = out / ".stamp"
    if binary.is_file() and marker.is_file() and marker.read_text() == stamp:
        return binary
    target = "x86_64-unknown-linux-gnu" if os.uname().machine == "x86_64" else "aarch64-unknown-linux-gnu"
    env = {**os.environ, "RUSTFLAGS": "-C target-feature=+crt-static", "CARGO_TARGET_DIR": os.fspath(out / "target")}
    reporter = Reporter(f"building static-web-server {STATIC_WEB_SERVER_VERSION} (cargo install)", None, quiet)
    out.mkdir(parents=True, exist_ok=True)   # cargo runs in it: on a new machine nothing made it yet
    _run_counting(["cargo", "install", "static-web-server", "--version", STATIC_WEB_SERVER_VERSION, "--locked",
                   "--target", target, "--root", os.fspath(out)], cwd=out, env=env, reporter=reporter,
                  log=logs / "build-static-web-server.log")
    marker.write_text(stamp)
    return binary


@dataclass(frozen=True)
class Built:
    """Where one version's binaries are."""

    pins: Pins
    bin: Path
    runtime_bin: Path
    pause: Path
    static_web_server: Path
    kubernetes_source: Path


def module_source(module: str, version: str, cwd: Path) -> Path:
    """The module's folder in the Go module cache (downloaded if missing)."""
    result = subprocess.run(["go", "mod", "download", "-json", f"{module}@{version}"], cwd=cwd, env=go_env(),
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise ToolError(["go", "mod", "download", "-json", f"{module}@{version}"], result.returncode, result.stdout,
                        result.stderr)
    import json

    return Path(json.loads(result.stdout)["Dir"])


def build_all(minor: str, cache: Path, *, quiet: bool = False) -> Built:
    """Build (or find in the cache) everything a node of ``minor`` runs."""
    p = pins(minor)
    root = cache / "node" / "build"
    logs = cache / "node" / "logs"
    kube_bin = root / f"kubernetes-{p.kubernetes}"
    # CGO_ENABLED=0, as upstream's release builds: static binaries (agnhost runs in an image with no libc).
    build_go_module(p.module_dir, KUBERNETES_TOOLS, kube_bin, ldflags=version_ldflags(p.kubernetes), cgo=False,
                    desc=f"building Kubernetes {p.kubernetes} and etcd {p.etcd} from their Go modules "
                         "(the first build takes about 25 min on 2 cores)", logs=logs, quiet=quiet)
    runtime_bin = root / f"runtime-containerd-{p.containerd}-runc-{p.runc}"
    build_go_module(MODULES / "runtime", RUNTIME_TOOLS, runtime_bin,
                    # cgo: runc's nsenter is C; tags as their release builds: runc with seccomp (libseccomp),
                    # containerd without the btrfs snapshotter (it needs btrfs headers; overlayfs is used)
                    tags=("seccomp", "no_btrfs"),
                    ldflags=[f"-X github.com/containerd/containerd/v2/version.Version={p.containerd}",
                             f"-X main.version={p.runc.lstrip('v')}"],
                    desc=f"building containerd {p.containerd} and runc {p.runc} (about 5 min the first time)",
                    logs=logs, quiet=quiet)
    source = module_source("k8s.io/kubernetes", p.kubernetes, p.module_dir)
    tag = pause_tag(source)
    pause = build_pause(source / "build" / "pause" / "linux" / "pause.c", root / f"pause-{tag}", tag)
    sws = build_static_web_server(root / f"static-web-server-{STATIC_WEB_SERVER_VERSION}", logs, quiet)
    return Built(p, kube_bin, runtime_bin, pause, sws, source)


def pause_tag(kubernetes_source: Path) -> str:
    """The pause image tag this Kubernetes release builds (build/pause/Makefile's ``TAG ?=``)."""
    match = re.search(r"^TAG \?= (\S+)", (kubernetes_source / "build" / "pause" / "Makefile").read_text(), re.M)
    if not match:
        raise BackendUnavailable(f"{kubernetes_source}/build/pause/Makefile has no `TAG ?=` line")
    return match.group(1)
