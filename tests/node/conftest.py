"""The node's tests: the running node (skipped, saying why, when it is not up) and a namespace each."""

from __future__ import annotations

import os
import time

import pytest

from node_api import kubectl


@pytest.fixture(scope="module")
def node():
    from labkit.node import Node, why_not_running

    reason = why_not_running()
    if reason:
        pytest.skip(reason)
    return Node()


@pytest.fixture
def namespace(node):
    name = f"labkit-node-test-{os.getpid()}-{time.monotonic_ns() % 100000}"
    kubectl(node, "create", "namespace", name)
    deadline = time.monotonic() + 30
    while kubectl(node, "-n", name, "get", "serviceaccount", "default", check=False).returncode != 0:
        assert time.monotonic() < deadline, "the default ServiceAccount never appeared"
        time.sleep(0.2)
    yield name
    kubectl(node, "delete", "namespace", name, "--wait=false", check=False)
