"""After `labkit node down` (.ci/run runs this with LABKIT_NODE_DOWN_CHECK=1): nothing of the node is left."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.environ.get("LABKIT_NODE_DOWN_CHECK") != "1",
                                reason="checks a machine after `labkit node down`; .ci/run sets LABKIT_NODE_DOWN_CHECK=1")


@pytest.fixture(scope="module")
def node():
    from labkit.node import Node

    return Node()


def test_ctrl_c_during_up_removes_what_it_had_started(node):
    """Runs first: `labkit node up`, interrupted once etcd runs, exits 130 and leaves nothing (the
    tests below check the machine)."""
    import signal
    import sys
    import time

    assert not node.running(), "run this after `labkit node down`"
    # SIGINT as a terminal's Ctrl-C delivers it, also where this test itself was started with SIGINT
    # ignored (a background job of a non-interactive shell): an ignored SIGINT is inherited, and
    # Python then installs no KeyboardInterrupt, so `labkit node up` would run to the end.
    restore = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
               "from labkit.cli import main; sys.exit(main(['node', 'up']))")
    up = subprocess.Popen([sys.executable, "-c", restore], stderr=subprocess.PIPE, text=True)
    seen = []
    deadline = time.monotonic() + 600
    for line in up.stderr:
        seen.append(line)
        if "etcd: ok" in line:
            up.send_signal(signal.SIGINT)
            break
        assert time.monotonic() < deadline, "".join(seen)
    rest = up.stderr.read()
    assert up.wait(120) == 130, "".join(seen) + rest
    assert "labkit: interrupted" in rest and "removing what it made" in rest


def test_no_process_of_the_node_runs(node):
    from labkit.node import host

    binaries = [p for p in (node.cache / "node" / "build").glob("*/*") if p.is_file()]
    assert binaries, "no node binaries found: was the node ever built here?"
    assert host.processes_running(binaries) == []
    assert host.cgroup_processes() == []


def test_no_mount_under_the_nodes_folders(node):
    from labkit.node import host

    assert host.mounts_under([node.layout.state, node.layout.run]) == []


def test_no_network_device_and_forwarding_as_it_was(node):
    from labkit.node.config import BRIDGE

    assert subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode != 0
    assert not [line for line in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.splitlines()
                if f"master {BRIDGE}" in line]


def test_no_cgroup_of_the_node(node):
    from labkit.node import host

    assert [root for root in host.cgroup_roots() if root.exists()] == []


def test_not_running_and_no_state_left(node):
    assert not node.running()
    assert not (node.layout.state / "node.json").exists()
    assert not Path("/run/labkit-node").exists()
