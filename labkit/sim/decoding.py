"""Step 2 of the simulated API server: the strict JSON decoder of one Pod, Job or Deployment.

Server-side field validation ``Strict`` (kubectl's default ``--validate=strict``): a value of
the wrong JSON type fails the whole request (``json: cannot unmarshal ...``), and so do fields
the version does not know (``strict decoding error: unknown field "..."``). The field lists and
JSON types of each minor are ``api_fields.json`` beside this module (``tools/api_fields.py``).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from importlib.resources import files
from typing import Any

from ..versions import minor_in_span


# Quantity fields are strings in the client's models but accept JSON numbers on the wire.
_QUANTITY_MAPS = {"limits", "requests", "overhead"}
_QUANTITY_FIELDS = {"sizeLimit"}
_QUANTITY_RE = re.compile(r"[+-]?[0-9.]+([eEinumkKMGTP]*[-+]?[0-9]*)")
_INT_OR_STRING = {"port", "maxSurge", "maxUnavailable", "targetPort"}
_INT64 = {"terminationGracePeriodSeconds", "activeDeadlineSeconds", "deletionGracePeriodSeconds",
          "generation", "runAsUser", "runAsGroup", "fsGroup", "seconds"}


@functools.lru_cache(maxsize=None)
def _field_table() -> dict[str, dict[str, Any]]:
    """api_fields.json's models: a field is its type, or [type, first minor, last minor] runs."""
    return json.loads(files("labkit.sim").joinpath("api_fields.json").read_text(encoding="utf-8"))["models"]


@functools.lru_cache(maxsize=None)
def _model_fields(minor: int, model: str) -> dict[str, str]:
    """JSON field name -> type string of ``model`` in Kubernetes 1.``minor``; a field the
    version does not have is absent (the strict decoder then calls it unknown).

    >>> "restartPolicy" in _model_fields(27, "V1Container"), _model_fields(28, "V1Container")["restartPolicy"]
    (False, 'str')
    """
    fields = {}
    for name, spelling in _field_table()[model].items():
        if isinstance(spelling, str):
            fields[name] = spelling
            continue
        for type_, first, last in spelling:
            if minor_in_span(minor, first, last):
                fields[name] = type_
    return fields


_SCALARS = {"str", "int", "float", "bool", "object", "datetime", "date", "bytes"}


def _go_name(model: str) -> str:
    """The Go type name of a client model: V1PodSpec -> PodSpec."""
    return re.sub(r"^.*?V\d+(?:alpha\d+|beta\d+)?", "", model)


@functools.lru_cache(maxsize=None)
def _split_type(type_: str) -> tuple[str, str]:
    """('list', inner) / ('map', inner) / ('model', name) / ('scalar', name); old and new client spellings."""
    if m := re.fullmatch(r"[Ll]ist\[(.*)\]", type_):
        return "list", m.group(1)
    if m := re.fullmatch(r"(?:Dict\[str, (.*)\]|dict\(str, (.*)\))", type_):
        return "map", m.group(1) or m.group(2)
    if type_ in _SCALARS:
        return "scalar", type_
    return "model", type_


def _go_type(type_: str, name: str) -> str:
    shape, inner = _split_type(type_)
    if shape == "list":
        return "[]" + _go_type(inner, name)
    if shape == "map":
        return "map[string]" + _go_type(inner, name)
    if shape == "model":
        return "v1." + _go_name(inner)
    if name in _INT_OR_STRING:
        return "intstr.IntOrString"
    return {"str": "string", "int": "int64" if name in _INT64 else "int32", "float": "float64",
            "bool": "bool", "datetime": "v1.Time"}.get(inner, "string")


def json_type(value: Any) -> str:
    """encoding/json's name for a JSON value in an UnmarshalTypeError."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string" if isinstance(value, str) else "null"


class _Decoder:
    """Walks an object against the client's models, the way the strict JSON decoder does.

    Produces a normalised deep copy (nulls removed, integral floats made ints, numeric
    quantities made strings) and records the first type error and every unknown field.
    """

    def __init__(self, minor: int):
        self.minor = minor
        self.type_error: tuple[str, str] | None = None
        self.unknown: list[str] = []

    def _type_error(self, value: Any, type_: str, path: str, dotted: str, struct: str, name: str) -> None:
        if self.type_error is None:
            self.type_error = (path, f"json: cannot unmarshal {json_type(value)} into Go struct field "
                                     f"{_go_name(struct)}.{dotted} of type {_go_type(type_, name)}")

    def value(self, value: Any, type_: str, path: str, dotted: str, struct: str, name: str) -> Any:
        shape, inner = _split_type(type_)
        if shape == "model":
            if not isinstance(value, dict):
                self._type_error(value, type_, path, dotted, struct, name)
                return value
            return self.model(value, inner, path, dotted)
        if shape == "list":
            if not isinstance(value, list):
                self._type_error(value, type_, path, dotted, struct, name)
                return value
            # A JSON null item decodes to the zero value of the item type.
            zero = {"model": {}, "list": [], "map": {}}.get(_split_type(inner)[0], {"int": 0, "bool": False}.get(inner, ""))
            return [self.value(zero if item is None else item, inner, f"{path}[{i}]", dotted, struct, name)
                    for i, item in enumerate(value)]
        if shape == "map":
            if not isinstance(value, dict):
                self._type_error(value, type_, path, dotted, struct, name)
                return value
            is_quantity = name in _QUANTITY_MAPS
            return {_key(k): (self.quantity(v, f"{path}[{_key(k)}]", dotted, struct, name) if is_quantity
                              else self.value(v, inner, f"{path}[{_key(k)}]", dotted, struct, name))
                    for k, v in value.items() if v is not None}
        if name in _QUANTITY_FIELDS:
            return self.quantity(value, path, dotted, struct, name)
        if inner == "object" and name in _INT_OR_STRING:
            ok = isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
        elif inner == "object":  # free-form JSON: copied as it is
            return copy.deepcopy(value)
        elif inner == "int":
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif inner == "float":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif inner == "bool":
            ok = isinstance(value, bool)
        else:  # str, datetime, bytes
            ok = isinstance(value, str)
        if not ok:
            self._type_error(value, type_, path, dotted, struct, name)
        return value

    def quantity(self, value: Any, path: str, dotted: str, struct: str, name: str) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(int(value)) if float(value).is_integer() else repr(float(value))
        if not isinstance(value, str):
            self._type_error(value, "str", path, dotted, struct, name)
        elif not _QUANTITY_RE.fullmatch(value) and self.type_error is None:
            self.type_error = (path, "quantities must match the regular expression "
                                     "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
        return value

    def model(self, obj: dict, model: str, path: str, dotted: str) -> dict:
        fields = _model_fields(self.minor, model)
        out = {}
        for raw_key, value in obj.items():
            key = _key(raw_key)
            child = f"{path}.{key}" if path else key
            if key not in fields:
                self.unknown.append(child)
                continue
            if value is None:
                continue  # JSON null: the field stays unset
            out[key] = self.value(value, fields[key], child, f"{dotted}.{key}" if dotted else key, model, key)
        return out


def _key(key: Any) -> str:
    """Map keys as sigs.k8s.io/yaml turns them into JSON keys."""
    if isinstance(key, bool):
        return "true" if key else "false"
    return key if isinstance(key, str) else str(key)
