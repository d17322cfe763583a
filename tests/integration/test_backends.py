"""backends.backends(): which backends the integration tests run on, and why one is skipped."""

from __future__ import annotations

import shutil

from backends import backends, kubeconfig_backend

from labkit.kubectl import kubectl_binary


def test_the_simulator_is_always_there_and_the_others_say_what_they_need():
    found = {b.id: b for b in backends(env={})}
    assert list(found) == ["sim", "served", "cluster", "kind", "node"]
    assert found["sim"].skip is None and found["sim"].backend == "sim"
    assert found["served"].backend == "cluster" and found["served"].options == {}
    assert found["served"].skip == (None if shutil.which(kubectl_binary()) else "kubectl not found on PATH")
    assert found["cluster"].skip == "set LABKIT_KUBECONFIG to a kubeconfig file to run on that cluster"
    assert found["kind"].skip.startswith("set LABKIT_KIND_TESTS=1")
    from labkit.node import why_not_running

    assert found["node"].backend == "node" and found["node"].skip == why_not_running()  # None where it runs


def test_a_kubeconfig_makes_a_cluster_backend(tmp_path):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    cluster = {b.id: b for b in backends(env={"LABKIT_KUBECONFIG": str(kubeconfig), "LABKIT_CONTEXT": "x"})}["cluster"]
    if shutil.which(kubectl_binary()) is None:
        assert cluster.skip == "kubectl not found on PATH"
    else:
        assert cluster.skip is None and cluster.options == {"kubeconfig": str(kubeconfig), "context": "x"}
    assert kubeconfig_backend("served", str(tmp_path / "nope")).skip == f"{tmp_path / 'nope'}: no such kubeconfig file"
