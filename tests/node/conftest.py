"""The node's tests: a namespace each on the running node (tests/conftest.py's ``node``)."""

from __future__ import annotations

import os
import time

import pytest

from node_api import kubectl


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
