"""Shared fixtures: the project's own trace files and a compact way to build small traces."""

from __future__ import annotations

from pathlib import Path

import pytest

from labkit.trace import ContainerInfo, Event, Pod, Trace, load_trace

DATA = Path(__file__).parent / "data"


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
