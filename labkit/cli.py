"""The ``labkit`` command line (the contract in README.md, "Command line").

Each subcommand is a ``cmd_*`` function plus a few lines in :func:`build_parser`. Errors
a user caused (``InvalidInput``) exit with status 2 and one line naming the file and the
field; other labkit errors exit 1 with their message; neither shows a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import __version__
from .errors import InvalidInput, LabkitError
from .lab import BACKEND_CHOICES
from .versions import DEFAULT_K8S_VERSION


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit status 2."""

    def error(self, message: str):  # noqa: D102 - argparse hook
        self.exit(2, f"{self.prog}: error: {message}\n")


def _jobs(text: str) -> int | str:
    """``--jobs``: ``auto`` or a whole number (labkit.run checks that it is at least 1)."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number or auto, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="labkit", description="Sidecar Lab: learn Kubernetes native sidecar containers.")
    parser.add_argument("--version", action="version", version=f"labkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    # Subcommands register below, each with set_defaults(func=cmd_...).
    run = sub.add_parser("run", help="run the notebooks headless and write executed notebooks, figures and an HTML report",
                         description="Run the lab's notebooks (default: notebooks/*.ipynb in order) with papermill on one "
                                     "backend, write them executed with their timelines and an index.html report to --out, "
                                     "and exit 1 if any notebook failed.")
    run.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="notebooks to run (default: all, in order)")
    run.add_argument("--backend", default="auto", choices=BACKEND_CHOICES,
                     help="where to run (default: auto = kind if Docker and kind work, else the simulator)")
    run.add_argument("--k8s-version", default=None, metavar="V",
                     help=f"Kubernetes version (default: {DEFAULT_K8S_VERSION}; with --backend node, the newest minor a "
                          "node is pinned for)")
    run.add_argument("-p", "--parameter", dest="parameters", nargs=2, action="append", metavar=("NAME", "VALUE"),
                     help="set a notebook parameter, e.g. -p grace_period_s 10 (repeatable; wins over the values a "
                          "notebook's metadata asks for headless, such as 09-exercises' use_solutions true)")
    run.add_argument("--out", default="build", metavar="DIR", help="output folder (default: build)")
    run.add_argument("--keep-cluster", action="store_true", help="keep the kind cluster after the run")
    run.add_argument("--jobs", type=_jobs, default="auto", metavar="N",
                     help="run N notebooks at a time (default: auto = one per processor on the simulator, "
                          "else 1)")
    run.add_argument("--kubeconfig", metavar="PATH",
                     help="with --backend cluster: the cluster's kubeconfig, e.g. the one `labkit serve` prints "
                          "(default: $KUBECONFIG, else ~/.kube/config); each notebook works in a namespace of its own")
    run.set_defaults(func=cmd_run)
    plot = sub.add_parser("plot", help="draw a recorded trace as a timeline (PNG or SVG)",
                          description="Draw a labkit.trace/v1 JSON file as a container timeline.")
    plot.add_argument("trace", metavar="TRACE.json", help="the trace file")
    plot.add_argument("-o", "--output", metavar="FILE", help="PNG or SVG to write (default: the trace path with .png)")
    plot.add_argument("--max-pods", type=int, default=None, metavar="N", help="draw at most N pods (default: 8)")
    plot.set_defaults(func=cmd_plot)
    doctor = sub.add_parser("doctor", help="what is installed, which backend auto would pick, how to fix what is missing",
                            description="Report Python, Docker (client and engine), kind and kubectl, the backend "
                                        "backend=auto would pick and why, and how to install what is missing. Exits 0.")
    doctor.add_argument("--k8s-version", default=None, metavar="V",
                        help="the Kubernetes version you mean to run: doctor names the kind release for it (default: %(default)s)")
    doctor.set_defaults(func=cmd_doctor)
    up = sub.add_parser("up", help="create (or reuse) the kind cluster",
                        description="Create a kind cluster for the lab (node image pinned by digest for the installed "
                                    "kind, SidecarContainers gate where needed) with labkit's own kubeconfig, or reuse "
                                    "the one labkit made earlier. Never touches ~/.kube/config.")
    up.add_argument("--k8s-version", default=DEFAULT_K8S_VERSION, metavar="V", help="Kubernetes version (default: %(default)s)")
    up.add_argument("--name", default="sidecar-lab", metavar="N", help="cluster name (default: sidecar-lab)")
    up.add_argument("--image", metavar="IMAGE", help="node image to use instead of the one listed for the installed "
                                                     "kind (kindest/node:vX.Y.Z@sha256:...)")
    up.add_argument("--print-config", action="store_true", help="print the kind config and exit (needs no Docker)")
    up.add_argument("--keep", action="store_true", help="keep a cluster that failed to start, for debugging")
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="delete the kind cluster labkit created",
                          description="Delete a kind cluster that labkit created (never one it did not).")
    down.add_argument("--name", default="sidecar-lab", metavar="N", help="cluster name (default: sidecar-lab)")
    down.set_defaults(func=cmd_down)
    sim = sub.add_parser("sim", help="the embedded simulator", description="labkit's simulator of the kubelet.")
    sim_sub = sim.add_subparsers(dest="sim_command", required=True, parser_class=_Parser)
    sim_run = sim_sub.add_parser(
        "run", help="apply manifests or scenario files to a fresh simulated cluster and print the timeline",
        description="Apply manifests (Pod, Job, Deployment; multi-document YAML) and scenario files to a fresh "
                    "simulated cluster and print the timeline and final pod status, or the trace as JSON.")
    sim_run.add_argument("files", nargs="+", metavar="FILE", help="manifests and/or scenario files")
    sim_run.add_argument("--k8s-version", default=DEFAULT_K8S_VERSION, metavar="V", help="Kubernetes version, minor or full (default: %(default)s)")
    sim_run.add_argument("--feature-gate", dest="feature_gates", action="append", default=[], metavar="NAME=BOOL",
                         help="set a feature gate (repeatable); without one, 1.28 has SidecarContainers=true as the "
                              "blog's kind config sets it, and SidecarContainers=false gives 1.28's default")
    sim_run.add_argument("--delete-after", type=float, metavar="S", help="delete everything applied S seconds after the apply")
    sim_run.add_argument("--until-seconds", type=float, default=300, metavar="S",
                         help="stop after S virtual seconds if the workloads never end (default: 300)")
    sim_run.add_argument("--seed", type=int, default=0, metavar="N", help="seed of every random choice (default: 0)")
    sim_run.add_argument("--json", action="store_true", help="print only the trace as JSON")
    sim_run.add_argument("--plot", metavar="PNG", help="also draw the timeline to this file")
    sim_run.set_defaults(func=cmd_sim_run)
    serve = sub.add_parser("serve", help="the simulator behind the Kubernetes API on 127.0.0.1, for kubectl",
                           description="Serve the simulator behind the Kubernetes API (wall-clock time times --pace) "
                                       "with its own kubeconfig and token; Ctrl-C or SIGTERM stops it.")
    serve.add_argument("--k8s-version", default=None, metavar="V",
                       help=f"Kubernetes version (default: {DEFAULT_K8S_VERSION}; with --control-plane real, the "
                            "newest one whose control plane is built here)")
    serve.add_argument("--control-plane", choices=("auto", "real", "simulated"), default="auto",
                       help="real: labkit's simulated kubelet as the node of a real etcd, kube-apiserver, controller "
                            "manager and scheduler (labkit node's build of that version); simulated: labkit's own API "
                            "server; auto (default): real when that build is here (docs/serve.md)")
    serve.add_argument("--feature-gate", dest="feature_gates", action="append", default=[], metavar="NAME=BOOL",
                       help="set a feature gate (repeatable)")
    serve.add_argument("--port", type=int, default=0, metavar="P", help="port on 127.0.0.1 (default: a free one)")
    serve.add_argument("--pace", type=float, default=1.0, metavar="X",
                       help="simulated seconds per wall-clock second (default: 1)")
    serve.add_argument("--kubeconfig", metavar="PATH",
                       help="where to write the kubeconfig (default: ~/.cache/labkit/serve-kubeconfig.yaml)")
    serve.set_defaults(func=cmd_serve)
    node = sub.add_parser("node", help="a real single-node Kubernetes built from upstream source (Linux, root)",
                          description="Build (cached) and run etcd, kube-apiserver, kube-controller-manager, "
                                      "kube-scheduler and the kubelet from the k8s.io/kubernetes Go module, with "
                                      "containerd and runc, a local CNI bridge and a local registry of images built "
                                      "here (docs/node.md). Needs Linux and root; the first build takes about 30 min "
                                      "on 2 cores. `fetch` instead downloads upstream's release binaries of the control "
                                      "plane alone (no root), checked by SHA-256, for labkit serve --control-plane real "
                                      "where building takes too long (Binder).")
    node.add_argument("action", choices=("up", "down", "status", "fetch"),
                      help="start (or reuse), stop and clean up, report, or fetch the control plane's release binaries")
    node.add_argument("--k8s-version", default=None, metavar="V",
                      help="Kubernetes minor (default: the newest one the repository pins a node for)")
    node.set_defaults(func=cmd_node)
    fidelity = sub.add_parser(
        "fidelity", help="every scenario on a real backend and in the simulator, checked alike; a table",
        description="Run every scenario of tests/data/scenarios and the blog's Job and Deployment on a real backend "
                    "and in the simulator, check both with the scenario's expectations, print a table and write it "
                    "as JSON and Markdown; exit 1 when a scenario holds on one and not the other, or when an "
                    "event of the blog's workloads is more than 1 s off in the median of up to three real runs (the "
                    "simulator fitted to each run's relist phase and CPU speed: docs/fidelity.md).")
    fidelity.add_argument("--backend", default="node", choices=("node", "kind", "cluster"),
                          help="the real backend (default: node)")
    fidelity.add_argument("--k8s-version", default=None, metavar="V", help="Kubernetes version (default: the backend's)")
    fidelity.add_argument("--kubeconfig", metavar="PATH", help="with --backend cluster: the cluster's kubeconfig")
    fidelity.add_argument("--out", default="build/fidelity", metavar="DIR",
                          help="where to write fidelity.json, fidelity.md and the traces (default: build/fidelity)")
    fidelity.add_argument("--scenario", dest="scenarios", action="append", metavar="NAME",
                          help="run only this scenario (its id, or blog-job / blog-deployment for the blog's "
                               "workloads; repeatable)")
    fidelity.add_argument("--observe-s", type=float, default=90.0, metavar="S",
                          help="the longest one scenario is watched (default: 90)")
    fidelity.add_argument("--jobs", type=int, default=4, metavar="N",
                          help="scenarios run at once, each in a namespace of its own (default: 4)")
    fidelity.set_defaults(func=cmd_fidelity)
    return parser


def cmd_node(args: argparse.Namespace) -> int:
    from .node import Node

    if args.action == "fetch":
        from .node import default_minor
        from .node.release import fetch_control_plane
        from .versions import KubeVersion

        minor = KubeVersion.parse(args.k8s_version, field="--k8s-version").minor_str if args.k8s_version else default_minor()
        fetch_control_plane(minor, say=lambda text: print(f"labkit node fetch: {text}", flush=True))
        return 0
    node = Node(args.k8s_version)
    if args.action == "up":
        node.up()
        print(f"node up: {node.describe()}\nUse it with:\n  export KUBECONFIG={node.kubeconfig}\n"
              f"  kubectl get nodes -o wide\nStop it with: labkit node down")
    elif args.action == "down":
        left = node.down()
        if left:
            print("labkit node: could not remove: " + ", ".join(left), file=sys.stderr)
            return 1
        print("node down: no process, mount, network device or cgroup of the node is left")
    else:
        print(node.status().text())
    return 0


def cmd_fidelity(args: argparse.Namespace) -> int:
    from .fidelity import main as fidelity_main

    return fidelity_main(args)


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import main as serve_main

    return serve_main(args)


def cmd_sim_run(args: argparse.Namespace) -> int:
    from .sim.cli import main as sim_run_main

    trace = sim_run_main(args)
    if args.plot:
        from .plot import plot_trace, save_figure

        path = save_figure(plot_trace(trace), args.plot)
        if not args.json:
            print(f"\nTimeline drawn to {path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    # jsonschema (nbformat's validator) loads rfc3987-syntax when it is installed (JupyterLab's
    # jupyter-events asks for it), which builds its IRI grammar on import: 2.6 s of CPU, most of
    # papermill's import, for a format check no notebook schema uses. This process does without
    # it; the kernels are processes of their own (docs/architecture.md).
    sys.modules.setdefault("rfc3987_syntax", None)
    from .run import main as run_main

    return run_main(args)


def cmd_plot(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .plot import DEFAULT_MAX_PODS, plot_trace, save_figure
    from .trace import load_trace

    trace = load_trace(args.trace)
    output = Path(args.output) if args.output else Path(args.trace).with_suffix(".png")
    figure = plot_trace(trace, max_pods=args.max_pods if args.max_pods is not None else DEFAULT_MAX_PODS)
    print(save_figure(figure, output))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import report

    print(report(k8s_version=args.k8s_version))
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from .kind import KindCluster, print_config, validate_cluster_name
    from .versions import KubeVersion

    if args.print_config:
        print(print_config(args.k8s_version, args.name, image=args.image), end="")
        return 0
    validate_cluster_name(args.name, field="--name")
    version = KubeVersion.parse(args.k8s_version, field="--k8s-version")
    cluster = KindCluster(args.name, version, image=args.image, keep_failed=args.keep)
    created = cluster.ensure()
    print(f"kind cluster {cluster.name!r} is {'up' if created else 'already up'} (Kubernetes "
          f"{cluster.version.minor_str}, {cluster.image}).\nUse it with:\n  export KUBECONFIG={cluster.kubeconfig}\n"
          f"  kubectl get pods\nDelete it with: labkit down --name {cluster.name}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from .kind import delete_cluster, validate_cluster_name

    name = validate_cluster_name(args.name, field="--name")
    if delete_cluster(name):
        print(f"deleted kind cluster {name!r}")
    else:
        print(f"labkit made no kind cluster named {name!r} that is still there; nothing to delete")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InvalidInput as exc:
        print(f"labkit: error: {exc}", file=sys.stderr)
        return 2
    except LabkitError as exc:
        print(f"labkit: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("labkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`labkit sim run ... --json | head`): stop quietly, as cat does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
