"""Talking to labkit's real node from its tests: kubectl, and plain HTTPS as its admin."""

from __future__ import annotations

import http.client
import json
import os
import ssl
import subprocess
import urllib.parse

from labkit.kubectl import kubectl_binary


def kubectl(node, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "KUBECONFIG": os.fspath(node.kubeconfig)}
    return subprocess.run([kubectl_binary(), *args], env=env, capture_output=True, text=True, check=check, timeout=120)


def admin_context(node) -> ssl.SSLContext:
    pki = node.layout.pki
    context = ssl.create_default_context(cafile=os.fspath(pki / "ca.crt"))
    context.load_cert_chain(os.fspath(pki / "admin.crt"), os.fspath(pki / "admin.key"))
    return context


def connect(node) -> http.client.HTTPSConnection:
    """A connection to the node's API server as its admin; kept alive over the requests sent on it."""
    server = urllib.parse.urlsplit(node.layout.server)
    return http.client.HTTPSConnection(server.hostname, server.port, context=admin_context(node), timeout=30)


def api(node, method: str, path: str, body: dict | None = None, content_type: str = "application/json",
        connection: http.client.HTTPSConnection | None = None) -> dict:
    """One request; on ``connection`` when given (:func:`connect`: no TLS handshake per request)."""
    own = connection is None
    if own:
        connection = connect(node)
    try:
        connection.request(method, path, body=None if body is None else json.dumps(body),
                           headers={"Content-Type": content_type})
        answer = connection.getresponse()
        text = answer.read()
        assert answer.status < 300, f"{method} {path}: HTTP {answer.status} {text[:300]!r}"
        return json.loads(text)
    finally:
        if own:
            connection.close()
