"""The ``lab`` fixture: each integration test runs once per backend of ``backends.backends()``
(``served``: the cluster backend on the session's served simulator, tests/conftest.py)."""

from __future__ import annotations

import os

import pytest

from backends import Backend, backend_params, kubeconfig_backend


@pytest.fixture(scope="module", params=backend_params())
def lab(request):
    import labkit

    backend: Backend = request.param
    if backend.id == "served":
        backend = kubeconfig_backend("served", os.fspath(request.getfixturevalue("served").kubeconfig))
        if backend.skip:
            pytest.skip(backend.skip)
    version = os.environ.get("LABKIT_K8S_VERSION", "1.29")
    if backend.backend == "node":  # the node runs the release it was built from
        from labkit.node import default_minor

        version = default_minor()
    lab = labkit.connect(backend.backend, k8s_version=version, **backend.options)
    try:
        yield lab
    finally:
        lab.close()
