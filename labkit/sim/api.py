"""The simulator's API server: decode, default and validate one Pod, Job or Deployment.

``admit(obj, behaviour)`` does what ``kubectl apply`` plus the real kube-apiserver of that
Kubernetes version would do with a new object, in the same order:

1. kubectl: the object needs ``apiVersion``/``kind`` of a known type and a ``metadata.name``.
2. Decode (server-side field validation ``Strict``, kubectl's default ``--validate=strict``):
   a value of the wrong JSON type fails the whole request; fields the version does not know
   fail it too (``strict decoding error: unknown field "..."``).
3. Defaulting (``pkg/apis/core/v1/defaults.go``, ``apps/v1`` and ``batch/v1`` defaults).
4. ``PrepareForCreate``: fields of disabled feature gates are dropped silently
   (``pkg/api/pod/util.go`` ``dropDisabledPodFields``); the Job selector is generated.
5. Validation (``pkg/apis/core/validation/validation.go``, ``pkg/apis/apps/validation``,
   ``pkg/apis/batch/validation``) for that version. Messages use the upstream wording
   (``field.Error``: ``Required value``, ``Invalid value: ...``, ``Unsupported value: ...``,
   ``Duplicate value: ...``, ``Forbidden: ...``, ``Not found: ...``), and errors come in the
   order the API server lists them.

Example:

>>> from labkit.versions import behaviour
>>> pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
...        "spec": {"containers": [{"name": "app", "image": "alpine:3.20"}]}}
>>> admitted = admit(pod, behaviour("1.29"))
>>> admitted.obj["spec"]["terminationGracePeriodSeconds"], admitted.warnings
(30, [])

The field lists and JSON types of each minor come from ``api_fields.json`` beside this module
(read when ``admit`` first runs), derived once from each release's OpenAPI by
``tools/api_fields.py``, so a simulated 1.29 knows the fields 1.29 has whichever ``kubernetes``
client is installed. The model covers what matters for the lab (containers, init containers and
sidecars, probes, hooks, ports, volumes and mounts, names, labels and selectors, grace
periods, restart policies, Job and Deployment specs); deeper checks of other fields
(resources, security contexts, affinity, volume sources) are not modelled and pass.

Each step has its module, named for its upstream seam: ``decoding`` (2), ``defaults`` (3),
``prepare`` (4) and ``validation`` (5), which words its errors with ``field_errors``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import Invalid, InvalidInput
from ..objects import pod_spec_of
from ..versions import Behaviour
from .decoding import _Decoder
from .defaults import _set_defaults
from .prepare import _prepare_for_create
from .validation import _validate, _warnings_for_pod_spec


# kind -> (apiVersion, model name in api_fields.json, which keeps the kubernetes client's names)
KINDS = {"Pod": ("v1", "V1Pod"), "Job": ("batch/v1", "V1Job"), "Deployment": ("apps/v1", "V1Deployment")}



@dataclass
class Admitted:
    """An object as the API server stored it, and what ``kubectl apply`` printed as warnings."""

    obj: dict
    warnings: list[str] = field(default_factory=list)


# --- 1. kubectl's own checks -------------------------------------------------------------

def _check_kind(obj: Any, source: str) -> str:
    if not isinstance(obj, dict):
        raise InvalidInput(f"expected a Kubernetes object (a mapping), got {type(obj).__name__}", source=source)
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    missing = [name for name, value in (("apiVersion", api_version), ("kind", kind)) if not value]
    if missing:
        raise InvalidInput("error validating data: [" + ", ".join(f"{m} not set" for m in missing) + "]",
                           source=source, field=missing[0])
    if kind not in KINDS:
        raise InvalidInput(f"labkit's simulator runs Pods, Jobs and Deployments; kind {kind!r} is not supported",
                           source=source, field="kind")
    if api_version != KINDS[kind][0]:
        raise InvalidInput(f'no matches for kind "{kind}" in version "{api_version}" '
                           f'(use apiVersion: {KINDS[kind][0]})', source=source, field="apiVersion")
    meta = obj.get("metadata")
    if meta is None or (isinstance(meta, dict) and not meta.get("name")):
        if meta and meta.get("generateName"):
            raise InvalidInput("cannot use generate name with apply", source=source, field="metadata.generateName")
        raise InvalidInput("resource name may not be empty", source=source, field="metadata.name")
    return kind


# --- the entry point ---------------------------------------------------------------------

def admit(obj: dict, behaviour: Behaviour, *, source: str = "<input>") -> Admitted:
    """Create ``obj`` (a Pod, Job or Deployment) on a simulated API server of that version.

    Returns the defaulted object as the API server stores it (a deep copy) and the warnings
    ``kubectl apply`` prints; warnings that start with ``labkit:`` are labkit's explanation of
    something the real server does silently. Raises InvalidInput, naming ``source`` and the
    field path, where the real API server (or kubectl) would refuse the object; with several
    errors the message is the first one in the server's order plus "(and N more errors)", and
    the exception (``labkit.errors.Invalid``) keeps them all as ``causes``.
    """
    kind = _check_kind(obj, source)
    decoder = _Decoder(behaviour.minor)
    stored = decoder.model(obj, KINDS[kind][1], "", "")  # a fresh copy: obj is never changed
    where = f'{kind} in version "{KINDS[kind][0].split("/")[-1]}" cannot be handled as a {kind}'
    if decoder.type_error:
        path, message = decoder.type_error
        raise InvalidInput(f"{where}: {message}", source=source, field=path)
    if decoder.unknown:
        message = "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in decoder.unknown)
        if any(p.endswith("].restartPolicy") and "initContainers[" in p for p in decoder.unknown):
            message += (f" (labkit: Kubernetes 1.{behaviour.minor} has no native sidecars; container restartPolicy "
                        "arrived in 1.28. With kubectl --validate=false the API server would drop the field "
                        "silently and the container would run as a plain init container)")
        raise InvalidInput(f"{where}: {message}", source=source, field=decoder.unknown[0])

    warnings: list[str] = []
    notes: dict[str, str] = {}  # field path prefix -> why a field under it was dropped
    _set_defaults(stored, kind)
    _prepare_for_create(stored, kind, behaviour, warnings, notes)
    errors = _validate(stored, kind, behaviour)
    if errors:
        noted = [(path, message + next((f" (labkit: {note})" for prefix, note in notes.items()
                                        if path == prefix or path.startswith(prefix + ".")), ""))
                 for path, message in errors]
        path, message = noted[0]
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
        raise Invalid(message, source=source, field=path, causes=noted)
    spec, _ = pod_spec_of(stored)
    return Admitted(stored, _warnings_for_pod_spec(spec, kind) + warnings)
