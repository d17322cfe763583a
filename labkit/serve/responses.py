"""How the served API writes an answer: a compact JSON body, and a failure's ``metav1.Status``.

The handlers (:mod:`.http`), discovery (:mod:`.discovery`) and the watch stream (:mod:`.watch`)
all write these, so they live once, below all three, as the apiserver's
``handlers/responsewriters`` does.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def status_body(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    """A failure ``metav1.Status``, its keys in the order the API server writes them."""
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message}
    if reason:          # StatusReasonUnknown is "", left out (omitempty)
        body["reason"] = reason
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def json_response(data: Any, status: int = 200) -> web.Response:
    """``data`` as JSON without spaces, as Go's ``json.Marshal`` writes it."""
    return web.Response(body=json.dumps(data, separators=(",", ":")).encode(), status=status,
                        content_type="application/json")
