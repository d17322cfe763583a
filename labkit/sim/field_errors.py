"""Field errors worded as the API server words them (k8s.io/apimachinery
``pkg/util/validation/field``: ``errors.go``): ``Required value``, ``Invalid value: ...``,
``Unsupported value: ...``, ``Duplicate value: ...``, ``Forbidden: ...``, ``Not found: ...``.
"""

from __future__ import annotations

import json
from typing import Any


def _go(value: Any) -> str:
    """A bad value the way ``field.Error`` prints it (``%q`` for strings, ``%#v`` for maps)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        items = ", ".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in sorted(value.items()))
        return f"map[string]string{{{items}}}"
    return json.dumps(value, sort_keys=True)


def required(detail: str = "") -> str:
    return "Required value" + (f": {detail}" if detail else "")


def invalid(value: Any, detail: str) -> str:
    return f"Invalid value: {_go(value)}: {detail}"


def not_supported(value: Any, supported: list[str]) -> str:
    return f"Unsupported value: {_go(value)}: supported values: " + ", ".join(json.dumps(s) for s in supported)


def duplicate(value: Any) -> str:
    return f"Duplicate value: {_go(value)}"


def forbidden(detail: str) -> str:
    return f"Forbidden: {detail}"


def not_found(value: Any) -> str:
    return f"Not found: {_go(value)}"


def too_many(count: int, limit: int) -> str:
    return f"Too many: {count}: must have at most {limit} items"


class _Errors(list):
    """Field errors in the order the API server lists them: (path, message)."""

    def add(self, path: str, message: str) -> None:
        self.append((path, message))
