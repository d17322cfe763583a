"""Just enough of Kubernetes' protobuf encoding to read what kubectl's typed clients send.

``kubectl create namespace`` (and other ``kubectl create`` subcommands) send their body as
``application/vnd.kubernetes.protobuf`` and do not fall back to JSON on 415. The body is the
``k8s\\x00`` magic and a ``runtime.Unknown`` (``apimachinery/pkg/runtime/types_proto.go``:
typeMeta=1 {apiVersion=1, kind=2}, raw=2) whose raw bytes are the object, field 1 its
``ObjectMeta`` (``apimachinery/pkg/apis/meta/v1/generated.proto``: name=1, generateName=2,
namespace=3, labels=11, annotations=12). Only Namespaces and ServiceAccounts are read this way
(their specs carry nothing the simulator uses), and the question of a SelfSubjectAccessReview
(``kubectl auth can-i``); anything else is refused with 415."""

from __future__ import annotations

MAGIC = b"k8s\x00"
KINDS = ("Namespace", "ServiceAccount")


class Unreadable(ValueError):
    pass


def _fields(data: bytes) -> list[tuple[int, int, bytes | int]]:
    out, i = [], 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            length, i = _varint(data, i)
            if i + length > len(data):
                raise Unreadable("truncated field")
            value, i = data[i:i + length], i + length
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise Unreadable(f"wire type {wire}")
        out.append((number, wire, value))
    return out


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(data) or shift > 63:
            raise Unreadable("bad varint")
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, i
        shift += 7


def _text(value) -> str:
    if not isinstance(value, bytes):
        raise Unreadable("expected a string")
    return value.decode("utf-8")


def decode(body: bytes) -> dict:
    """The object's apiVersion, kind and metadata (name, generateName, namespace, labels, annotations)."""
    if not body.startswith(MAGIC):
        raise Unreadable("no k8s protobuf magic")
    type_meta, raw = {}, b""
    for number, _, value in _fields(body[len(MAGIC):]):
        if number == 1:
            type_meta = {n: _text(v) for n, _, v in _fields(value) if n in (1, 2)}
        elif number == 2:
            raw = value
    kind = type_meta.get(2, "")
    if kind == "SelfSubjectAccessReview":
        return {"apiVersion": type_meta.get(1, ""), "kind": kind, "metadata": {}, "spec": _access_review_spec(raw)}
    if kind not in KINDS:
        raise Unreadable(f"a {kind or 'body'} in protobuf")
    meta: dict = {}
    for number, _, value in _fields(raw):
        if number != 1:
            continue
        for n, _, v in _fields(value):
            if n in (1, 2, 3):
                meta[{1: "name", 2: "generateName", 3: "namespace"}[n]] = _text(v)
            elif n in (11, 12):
                entry = {k: _text(x) for k, _, x in _fields(v)}
                meta.setdefault("labels" if n == 11 else "annotations", {})[entry.get(1, "")] = entry.get(2, "")
    return {"apiVersion": type_meta.get(1, "v1"), "kind": kind, "metadata": meta}


# k8s.io/api authorization/v1 generated.proto: SelfSubjectAccessReview spec=2; its spec
# resourceAttributes=1, nonResourceAttributes=2; their string fields by number
_RESOURCE_ATTRIBUTES = {1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource", 6: "subresource", 7: "name"}
_NON_RESOURCE_ATTRIBUTES = {1: "path", 2: "verb"}


def _access_review_spec(raw: bytes) -> dict:
    """What ``kubectl auth can-i`` asks (a SelfSubjectAccessReview's spec)."""
    spec: dict = {}
    for number, _, value in _fields(raw):
        if number != 2:
            continue
        for n, _, v in _fields(value):
            names = {1: ("resourceAttributes", _RESOURCE_ATTRIBUTES),
                     2: ("nonResourceAttributes", _NON_RESOURCE_ATTRIBUTES)}.get(n)
            if names is not None:
                spec[names[0]] = {names[1][k]: _text(x) for k, _, x in _fields(v) if k in names[1]}
    return spec
