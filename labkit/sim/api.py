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
"""

from __future__ import annotations

import copy
import functools
import json
import re
import uuid
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

from ..errors import InvalidInput
from ..names import (dns1123_label_errors, dns1123_subdomain_errors, label_value_errors, port_name_errors,
                     qualified_name_errors)
from ..objects import container_roles
from ..versions import SIDECAR_GATE, Behaviour, minor_in_span
from .images import SIGNAL_NUMBERS

# kind -> (apiVersion, model name in api_fields.json, which keeps the kubernetes client's names)
KINDS = {"Pod": ("v1", "V1Pod"), "Job": ("batch/v1", "V1Job"), "Deployment": ("apps/v1", "V1Deployment")}

MAX_INT32 = 2147483647
_SILENT = "this is labkit's explanation: the real API server does it silently"


@dataclass
class Admitted:
    """An object as the API server stored it, and what ``kubectl apply`` printed as warnings."""

    obj: dict
    warnings: list[str] = field(default_factory=list)


# --- messages, as k8s.io/apimachinery/pkg/util/validation/field formats them ---------------

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


def _port_number_errors(value: int) -> list[str]:
    return [] if 1 <= value <= 65535 else ["must be between 1 and 65535, inclusive"]


# --- roles and access ---------------------------------------------------------------------

def pod_spec_of(obj: dict) -> tuple[dict, str]:
    """The pod spec inside a Pod, Job or Deployment, and its field path prefix.

    >>> pod_spec_of({"kind": "Job", "spec": {"template": {"spec": {"containers": []}}}})
    ({'containers': []}, 'spec.template.spec')
    """
    kind = obj.get("kind")
    if kind == "Pod":
        return obj.get("spec") or {}, "spec"
    if kind in ("Job", "Deployment"):
        return ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}, "spec.template.spec"
    raise InvalidInput(f"not a Pod, Job or Deployment: kind {kind!r}", field="kind")


def _template_path(kind: str) -> str:
    return "spec" if kind == "Pod" else "spec.template.spec"


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


# --- 2. decoding --------------------------------------------------------------------------

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


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


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
            self.type_error = (path, f"json: cannot unmarshal {_json_type(value)} into Go struct field "
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


# --- 3. defaulting -----------------------------------------------------------------------

def _image_pull_policy(image: str) -> str:
    """``Always`` for ``:latest`` or no tag and no digest, else ``IfNotPresent`` (SetDefaults_Container).

    >>> [_image_pull_policy(i) for i in ("alpine", "alpine:3.20", "localhost:5000/x", "x@sha256:ab", "x:latest@sha256:ab")]
    ['Always', 'IfNotPresent', 'Always', 'IfNotPresent', 'Always']
    """
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else ("" if digest else "latest")
    return "Always" if tag == "latest" else "IfNotPresent"


def _default_handler(handler: Any) -> None:
    if isinstance(handler, dict) and isinstance(handler.get("httpGet"), dict):
        handler["httpGet"].setdefault("path", "/")
        handler["httpGet"].setdefault("scheme", "HTTP")


def _default_probe(probe: dict) -> None:
    # SetDefaults_Probe sets these when 0 (absent). initialDelaySeconds is not defaulted
    # upstream (an omitempty 0); labkit writes the 0 so readers need no fallback.
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1), ("failureThreshold", 3)):
        if not probe.get(key):
            probe[key] = value
    probe.setdefault("initialDelaySeconds", 0)
    _default_handler(probe)


def _default_container(c: dict) -> None:
    if not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = _image_pull_policy(c.get("image", ""))
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    for port in c.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        if isinstance(c.get(key), dict):
            _default_probe(c[key])
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        _default_handler(lifecycle.get("postStart"))
        _default_handler(lifecycle.get("preStop"))


def _default_pod_spec(spec: dict) -> None:
    """SetDefaults_PodSpec and the defaulters of everything inside it."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        if isinstance(c, dict):
            _default_container(c)
    for volume in spec.get("volumes") or []:
        # SetDefaults_Volume: a volume with no source is an emptyDir.
        if isinstance(volume, dict) and not any(k != "name" for k in volume):
            volume["emptyDir"] = {}


def _set_defaults(obj: dict, kind: str) -> None:
    meta = obj.setdefault("metadata", {})
    meta.setdefault("namespace", "default")  # kubectl fills in the context's namespace
    if kind == "Pod":
        spec = obj.setdefault("spec", {})
        _default_pod_spec(spec)
        # SetDefaults_Pod (Pods only, not templates): requests default to limits.
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            resources = c.get("resources") or {}
            for name, quantity in (resources.get("limits") or {}).items():
                resources.setdefault("requests", {}).setdefault(name, quantity)
        return
    spec = obj.setdefault("spec", {})
    template = spec.setdefault("template", {})
    _default_pod_spec(template.setdefault("spec", {}))
    if kind == "Deployment":  # apps/v1 SetDefaults_Deployment
        spec.setdefault("replicas", 1)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxUnavailable", "25%")
            rolling.setdefault("maxSurge", "25%")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
    else:  # batch/v1 SetDefaults_Job
        if "completions" not in spec and "parallelism" not in spec:
            spec["completions"] = 1
        spec.setdefault("parallelism", 1)
        spec.setdefault("backoffLimit", MAX_INT32 if "backoffLimitPerIndex" in spec else 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        labels = (template.get("metadata") or {}).get("labels")
        if labels and not meta.get("labels"):
            meta["labels"] = dict(labels)


# --- 4. PrepareForCreate -----------------------------------------------------------------

def _prepare_for_create(obj: dict, kind: str, beh: Behaviour, warnings: list[str], notes: dict[str, str]) -> None:
    obj.pop("status", None)
    meta = obj["metadata"]
    # The API server gives every object a random UID; labkit derives it from the object's
    # identity so that a simulated run is reproducible.
    meta["uid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"labkit-sim/{kind}/{meta['namespace']}/{meta['name']}"))
    spec, prefix = pod_spec_of(obj)
    if kind == "Pod" and isinstance(spec.get("terminationGracePeriodSeconds"), int) and spec["terminationGracePeriodSeconds"] < 0:
        # Convert_v1_Pod_To_core_Pod (1.27+, kubernetes#115606) turns a negative value into 1.
        spec["terminationGracePeriodSeconds"] = 1
        warnings.append(f"labkit: spec.terminationGracePeriodSeconds was negative; the API server stores 1 "
                        f"({_SILENT})")
    _drop_disabled_fields(spec, prefix, beh, warnings, notes)
    if kind == "Job":
        _generate_job_selector(obj)


def _drop_disabled_fields(spec: dict, prefix: str, beh: Behaviour, warnings: list[str], notes: dict[str, str]) -> None:
    """dropDisabledPodFields for the gates labkit models; every drop gets a labkit warning."""
    inits, regular = spec.get("initContainers") or [], spec.get("containers") or []
    if beh.sidecar_gate != "absent" and not beh.sidecars_enabled:
        why = (f"the {SIDECAR_GATE} feature gate is off on this Kubernetes 1.{beh.minor} cluster"
               + (" (the 1.28 default; the blog's kind config turns it on)" if beh.sidecar_gate == "alpha" else ""))
        for i, c in enumerate(inits):
            if "restartPolicy" in c:
                path = f"{prefix}.initContainers[{i}].restartPolicy"
                del c["restartPolicy"]
                name = c.get("name", f"#{i}")
                notes[f"{prefix}.initContainers[{i}]"] = (
                    f"{why}, so the API server dropped {path} and {name!r} became a plain init container")
                warnings.append(
                    f"labkit: {path} was dropped: {why}, so the API server removes the field and {name!r} "
                    "runs as a plain init container, not a sidecar; one that never exits keeps the pod in "
                    f"Init forever ({_SILENT})")
    if beh.container_restart_rules_dropped:
        # ContainerRestartRules is alpha (off) in 1.34: dropContainerRestartRules removes
        # container-level restartPolicy from regular containers, any value but Always from init
        # containers, and every restartPolicyRules (pkg/api/pod/util.go).
        why = "the ContainerRestartRules feature gate is off (alpha in Kubernetes 1.34)"
        for group, containers in (("initContainers", inits), ("containers", regular)):
            for i, c in enumerate(containers):
                for key in ("restartPolicy", "restartPolicyRules"):
                    if key not in c or (group == "initContainers" and key == "restartPolicy" and c[key] == "Always"):
                        continue
                    del c[key]
                    warnings.append(f"labkit: {prefix}.{group}[{i}].{key} was dropped: {why}, so the API server "
                                    f"removes the field and the pod's restartPolicy applies ({_SILENT})")
    if beh.container_stop_signals_dropped:
        # dropContainerStopSignals (pkg/api/pod/util.go): with ContainerStopSignals off the
        # field is wiped, and a lifecycle left empty with it.
        why = "the ContainerStopSignals feature gate is off (alpha, off by default, from Kubernetes 1.33)"
        for group, containers in (("initContainers", inits), ("containers", regular)):
            for i, c in enumerate(containers):
                lifecycle = c.get("lifecycle")
                if isinstance(lifecycle, dict) and "stopSignal" in lifecycle:
                    del lifecycle["stopSignal"]
                    if not lifecycle:
                        del c["lifecycle"]
                    warnings.append(f"labkit: {prefix}.{group}[{i}].lifecycle.stopSignal was dropped: {why}, so the "
                                    f"image's STOPSIGNAL (or SIGTERM) is sent ({_SILENT})")
    if beh.sleep_action_dropped:
        # PodLifecycleSleepAction is alpha (off) in 1.29 and beta (on) from 1.30.
        for group, containers in (("initContainers", inits), ("containers", regular)):
            for i, c in enumerate(containers):
                for hook in ("postStart", "preStop"):
                    handler = (c.get("lifecycle") or {}).get(hook)
                    if handler and "sleep" in handler:
                        del handler["sleep"]
                        path = f"{prefix}.{group}[{i}].lifecycle.{hook}"
                        why = "the PodLifecycleSleepAction feature gate is off (alpha in Kubernetes 1.29)"
                        notes[path] = f"{why}, so the API server dropped {path}.sleep"
                        warnings.append(f"labkit: {path}.sleep was dropped: {why} ({_SILENT})")


def _generate_job_selector(job: dict) -> None:
    """The Job strategy's generateSelector: labels on the template, selector on the uid."""
    spec = job["spec"]
    if spec.get("manualSelector") is True:
        return
    meta = job["metadata"]
    labels = spec["template"].setdefault("metadata", {}).setdefault("labels", {})
    for key in ("batch.kubernetes.io/controller-uid", "controller-uid"):
        labels.setdefault(key, meta["uid"])
    for key in ("batch.kubernetes.io/job-name", "job-name"):
        labels.setdefault(key, meta["name"])
    selector = spec.setdefault("selector", {})
    if isinstance(selector, dict):
        selector.setdefault("matchLabels", {}).setdefault("batch.kubernetes.io/controller-uid", meta["uid"])


# --- 5. validation -----------------------------------------------------------------------

def _validate_labels(labels: Any, path: str, errs: _Errors) -> None:
    for key in sorted(labels or {}):
        for msg in qualified_name_errors(key):
            errs.add(path, invalid(key, msg))
        for msg in label_value_errors(labels[key]):
            errs.add(path, invalid(labels[key], msg))


def _validate_object_meta(meta: dict, errs: _Errors) -> None:
    """ValidateObjectMeta with NameIsDNSSubdomain (Pods, Jobs and Deployments alike)."""
    name = meta.get("name", "")
    for msg in dns1123_subdomain_errors(name):
        errs.add("metadata.name", invalid(name, msg))
    namespace = meta.get("namespace", "")
    for msg in dns1123_label_errors(namespace):
        errs.add("metadata.namespace", invalid(namespace, msg))
    _validate_labels(meta.get("labels"), "metadata.labels", errs)
    for key in sorted(meta.get("annotations") or {}):
        for msg in qualified_name_errors(key.lower()):
            errs.add("metadata.annotations", invalid(key, msg))


def _nonnegative(value: Any, path: str, errs: _Errors) -> None:
    if isinstance(value, int) and value < 0:
        errs.add(path, invalid(value, "must be greater than or equal to 0"))


def _validate_port(port: Any, path: str, errs: _Errors) -> None:
    """ValidatePortNumOrName: a number 1-65535 or an IANA port name."""
    if isinstance(port, int):
        for msg in _port_number_errors(port):
            errs.add(path, invalid(port, msg))
    elif isinstance(port, str):
        for msg in port_name_errors(port):
            errs.add(path, invalid(port, msg))


def _validate_handler(handler: dict, kinds: tuple[str, ...], grace: int | None, beh: Behaviour, path: str, errs: _Errors) -> None:
    """validateHandler: exactly one action, each action valid."""
    count = 0
    for kind in kinds:
        action = handler.get(kind)
        if action is None:
            continue
        if count:
            errs.add(f"{path}.{kind}", forbidden("may not specify more than 1 handler type"))
            continue
        count += 1
        if kind == "exec" and not action.get("command"):
            errs.add(f"{path}.exec.command", required())
        elif kind == "httpGet":
            if not action.get("path"):
                errs.add(f"{path}.httpGet.path", required())
            _validate_port(action.get("port", 0), f"{path}.httpGet.port", errs)
            if action.get("scheme") not in ("HTTP", "HTTPS"):
                errs.add(f"{path}.httpGet.scheme", not_supported(action.get("scheme", ""), ["HTTP", "HTTPS"]))
        elif kind == "tcpSocket":
            _validate_port(action.get("port", 0), f"{path}.tcpSocket.port", errs)
        elif kind == "grpc":
            _validate_port(action.get("port", 0), f"{path}.grpc.port", errs)
        elif kind == "sleep" and grace is not None:
            seconds = action.get("seconds", 0)
            if beh.sleep_zero_allowed:  # PodLifecycleSleepActionAllowZero: beta (on) from 1.33
                if seconds < 0 or seconds > grace:
                    errs.add(f"{path}.sleep", invalid(seconds, f"must be non-negative and less than terminationGracePeriodSeconds ({grace})"))
            elif seconds <= 0 or seconds > grace:
                suffix = (". Enable AllowPodLifecycleSleepActionZeroValue feature gate for zero sleep."
                          if beh.sleep_zero_gate_alpha else "")
                errs.add(f"{path}.sleep", invalid(seconds, f"must be greater than 0 and less than terminationGracePeriodSeconds ({grace}){suffix}"))
    if count == 0:
        errs.add(path, required("must specify a handler type"))


_PROBE_ACTIONS = ("exec", "httpGet", "tcpSocket", "grpc")
_HOOK_ACTIONS = ("exec", "httpGet", "tcpSocket", "sleep")


def _validate_probe(probe: Any, which: str, grace: int | None, beh: Behaviour, path: str, errs: _Errors) -> None:
    """validateLivenessProbe / validateReadinessProbe / validateStartupProbe."""
    if probe is None:
        return
    _validate_handler(probe, _PROBE_ACTIONS, grace, beh, path, errs)
    for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        _nonnegative(probe.get(key), f"{path}.{key}", errs)
    probe_grace = probe.get("terminationGracePeriodSeconds")
    if probe_grace is not None and probe_grace <= 0:
        errs.add(f"{path}.terminationGracePeriodSeconds", invalid(probe_grace, "must be greater than 0"))
    if which == "readinessProbe":
        if probe_grace is not None:
            errs.add(f"{path}.terminationGracePeriodSeconds", invalid(probe_grace, "must not be set for readinessProbes"))
    elif probe.get("successThreshold") != 1:
        errs.add(f"{path}.successThreshold", invalid(probe.get("successThreshold"), "must be 1"))


def _validate_lifecycle(c: dict, grace: int | None, beh: Behaviour, path: str, errs: _Errors) -> None:
    lifecycle = c.get("lifecycle")
    if lifecycle is None:
        return
    for hook in ("postStart", "preStop"):
        if lifecycle.get(hook) is not None:
            _validate_handler(lifecycle[hook], _HOOK_ACTIONS, grace, beh, f"{path}.lifecycle.{hook}", errs)


def _validate_probes_and_hooks(c: dict, grace: int | None, beh: Behaviour, path: str, errs: _Errors) -> None:
    _validate_lifecycle(c, grace, beh, path, errs)
    for which in ("livenessProbe", "readinessProbe", "startupProbe"):
        _validate_probe(c.get(which), which, grace, beh, f"{path}.{which}", errs)


def _validate_container_common(c: dict, volumes: set[str], path: str, errs: _Errors) -> None:
    """validateContainerCommon: name, image, termination message, ports, env, mounts, pull policy."""
    name = c.get("name", "")
    if not name:
        errs.add(f"{path}.name", required())
    else:
        for msg in dns1123_label_errors(name):
            errs.add(f"{path}.name", invalid(name, msg))
    if not c.get("image"):
        errs.add(f"{path}.image", required())
    policy = c.get("terminationMessagePolicy")
    if policy not in ("File", "FallbackToLogsOnError"):
        errs.add(f"{path}.terminationMessagePolicy", not_supported(policy, ["File", "FallbackToLogsOnError"]))
    port_names: set[str] = set()
    for i, port in enumerate(c.get("ports") or []):
        port_path = f"{path}.ports[{i}]"
        if port.get("name"):
            msgs = port_name_errors(port["name"])
            for msg in msgs:
                errs.add(f"{port_path}.name", invalid(port["name"], msg))
            if not msgs and port["name"] in port_names:
                errs.add(f"{port_path}.name", duplicate(port["name"]))
            port_names.add(port["name"])
        if not port.get("containerPort"):
            errs.add(f"{port_path}.containerPort", required())
        else:
            for msg in _port_number_errors(port["containerPort"]):
                errs.add(f"{port_path}.containerPort", invalid(port["containerPort"], msg))
        if port.get("hostPort"):
            for msg in _port_number_errors(port["hostPort"]):
                errs.add(f"{port_path}.hostPort", invalid(port["hostPort"], msg))
        if port.get("protocol") not in ("SCTP", "TCP", "UDP"):
            errs.add(f"{port_path}.protocol", not_supported(port.get("protocol"), ["SCTP", "TCP", "UDP"]))
    for i, env in enumerate(c.get("env") or []):
        if not env.get("name"):
            errs.add(f"{path}.env[{i}].name", required())
    mount_paths: set[str] = set()
    for i, mount in enumerate(c.get("volumeMounts") or []):
        mount_path = f"{path}.volumeMounts[{i}]"
        if not mount.get("name"):
            errs.add(f"{mount_path}.name", required())
        if mount.get("name", "") not in volumes:
            errs.add(f"{mount_path}.name", not_found(mount.get("name", "")))
        if not mount.get("mountPath"):
            errs.add(f"{mount_path}.mountPath", required())
        if mount.get("mountPath", "") in mount_paths:
            errs.add(f"{mount_path}.mountPath", invalid(mount["mountPath"], "must be unique"))
        mount_paths.add(mount.get("mountPath", ""))
    pull = c.get("imagePullPolicy")
    if pull not in ("Always", "IfNotPresent", "Never"):
        errs.add(f"{path}.imagePullPolicy", not_supported(pull, ["Always", "IfNotPresent", "Never"]))


_CONTAINER_RESTART_POLICIES = ["Always", "OnFailure", "Never"]


def _validate_restart_rules(c: dict, path: str, errs: _Errors) -> None:
    """Container restartPolicyRules (KEP-5307, 1.35+): the structural limits of the API."""
    rules = c.get("restartPolicyRules")
    if not rules:
        return
    if "restartPolicy" not in c:
        errs.add(f"{path}.restartPolicy", required("must be specified when restartPolicyRules are specified"))
    if len(rules) > 20:
        errs.add(f"{path}.restartPolicyRules", too_many(len(rules), 20))
    for i, rule in enumerate(rules):
        rule_path = f"{path}.restartPolicyRules[{i}]"
        if rule.get("action") != "Restart":
            errs.add(f"{rule_path}.action", not_supported(rule.get("action", ""), ["Restart"]))
        codes = rule.get("exitCodes")
        if codes is None:
            errs.add(f"{rule_path}.exitCodes", required("must be specified"))
            continue
        if codes.get("operator") not in ("In", "NotIn"):
            errs.add(f"{rule_path}.exitCodes.operator", not_supported(codes.get("operator", ""), ["In", "NotIn"]))
        if len(codes.get("values") or []) > 255:
            errs.add(f"{rule_path}.exitCodes.values", too_many(len(codes["values"]), 255))


def _validate_containers(spec: dict, volumes: set[str], grace: int | None, beh: Behaviour, path: str, errs: _Errors) -> None:
    """validateContainers (regular containers)."""
    containers = spec.get("containers") or []
    if not containers:
        errs.add(f"{path}.containers", required())
        return
    names: set[str] = set()
    for i, c in enumerate(containers):
        c_path = f"{path}.containers[{i}]"
        _validate_container_common(c, volumes, c_path, errs)
        if c.get("name", "") in names:
            errs.add(f"{c_path}.name", duplicate(c.get("name", "")))
        names.add(c.get("name", ""))
        _validate_probes_and_hooks(c, grace, beh, c_path, errs)
        if "restartPolicy" in c:
            if beh.container_restart_rules:
                if c["restartPolicy"] not in _CONTAINER_RESTART_POLICIES:
                    errs.add(f"{c_path}.restartPolicy", not_supported(c["restartPolicy"], _CONTAINER_RESTART_POLICIES))
            else:
                errs.add(f"{c_path}.restartPolicy", forbidden("may not be set for non-init containers"))
        if beh.container_restart_rules:
            _validate_restart_rules(c, c_path, errs)


def _validate_init_containers(spec: dict, volumes: set[str], grace: int | None, beh: Behaviour, path: str, errs: _Errors) -> None:
    """validateInitContainers: sidecars get probes and hooks, plain init containers may not."""
    names = {c.get("name", "") for c in spec.get("containers") or []}
    for i, c in enumerate(spec.get("initContainers") or []):
        c_path = f"{path}.initContainers[{i}]"
        _validate_container_common(c, volumes, c_path, errs)
        policy = c.get("restartPolicy")
        if policy is not None:
            # Only Always until ContainerRestartRules is on (1.35), which also allows
            # OnFailure and Never on init containers (KEP-5307).
            allowed = _CONTAINER_RESTART_POLICIES if beh.container_restart_rules else ["Always"]
            if policy not in allowed:
                errs.add(f"{c_path}.restartPolicy", not_supported(policy, allowed))
        name = c.get("name", "")
        if name in names:
            errs.add(f"{c_path}.name", duplicate(name))
        elif name:
            names.add(name)
        if policy == "Always":
            _validate_probes_and_hooks(c, grace, beh, c_path, errs)
        else:
            for key in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if c.get(key) is not None:
                    errs.add(f"{c_path}.{key}", forbidden("may not be set for init containers without restartPolicy=Always"))
        if beh.container_restart_rules:
            _validate_restart_rules(c, c_path, errs)


def _validate_pod_spec(spec: dict, beh: Behaviour, path: str, errs: _Errors) -> None:
    """ValidatePodSpec, in upstream order."""
    grace = spec.get("terminationGracePeriodSeconds")
    volumes: set[str] = set()
    for i, volume in enumerate(spec.get("volumes") or []):
        v_path = f"{path}.volumes[{i}]"
        sources = [k for k in volume if k != "name"]
        if len(sources) > 1:
            errs.add(f"{v_path}.{sources[1]}", forbidden("may not specify more than 1 volume type"))
        name = volume.get("name", "")
        if not name:
            errs.add(f"{v_path}.name", required())
        else:
            for msg in dns1123_label_errors(name):
                errs.add(f"{v_path}.name", invalid(name, msg))
        if name in volumes:
            errs.add(f"{v_path}.name", duplicate(name))
        volumes.add(name)
    _validate_containers(spec, volumes, grace, beh, path, errs)
    _validate_init_containers(spec, volumes, grace, beh, path, errs)
    _validate_stop_signals(spec, path, errs)
    policy = spec.get("restartPolicy")
    if policy not in ("Always", "OnFailure", "Never"):
        errs.add(f"{path}.restartPolicy", not_supported(policy, ["Always", "OnFailure", "Never"]))
    dns = spec.get("dnsPolicy")
    if dns not in ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"):
        errs.add(f"{path}.dnsPolicy", not_supported(dns, ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]))
    _validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector", errs)
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and not 1 <= deadline <= MAX_INT32:
        errs.add(f"{path}.activeDeadlineSeconds", invalid(deadline, f"must be between 1 and {MAX_INT32}, inclusive"))


def _validate_stop_signals(spec: dict, path: str, errs: _Errors) -> None:
    """lifecycle.stopSignal (kept only with ContainerStopSignals on): KEP-4960's cross-validation
    with spec.os.name: the pod must name its OS; Linux pods take any Linux signal,
    Windows pods only SIGTERM and SIGKILL (supportedStopSignalsLinux/Windows)."""
    os_name = (spec.get("os") or {}).get("name")
    for group in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(group) or []):
            signal = (c.get("lifecycle") or {}).get("stopSignal")
            if signal is None:
                continue
            where = f"{path}.{group}[{i}].lifecycle.stopSignal"
            if not os_name:
                errs.add(where, forbidden("may not be set for pods without spec.os.name (labkit's wording; "
                                          "the valid signals depend on the pod's OS)"))
            elif os_name == "windows" and signal not in ("SIGKILL", "SIGTERM"):
                errs.add(where, not_supported(signal, ["SIGKILL", "SIGTERM"]))
            elif os_name == "linux" and signal not in SIGNAL_NUMBERS:
                errs.add(where, invalid(signal, "must be a Linux signal name such as SIGTERM, SIGQUIT or SIGINT"))


def _validate_pod_template(template: dict, beh: Behaviour, path: str, errs: _Errors) -> None:
    """ValidatePodTemplateSpec."""
    meta = template.get("metadata") or {}
    _validate_labels(meta.get("labels"), f"{path}.labels", errs)
    for key in sorted(meta.get("annotations") or {}):
        for msg in qualified_name_errors(key.lower()):
            errs.add(f"{path}.annotations", invalid(key, msg))
    _validate_pod_spec(template.get("spec") or {}, beh, f"{path}.spec", errs)
    if template.get("spec", {}).get("ephemeralContainers"):
        errs.add(f"{path}.spec.ephemeralContainers", forbidden("ephemeral containers not allowed in pod template"))


def _validate_selector(selector: dict, path: str, errs: _Errors) -> None:
    """ValidateLabelSelector."""
    _validate_labels(selector.get("matchLabels"), f"{path}.matchLabels", errs)
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        e_path = f"{path}.matchExpressions[{i}]"
        op, values = expr.get("operator"), expr.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                errs.add(f"{e_path}.values", required("must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.add(f"{e_path}.values", forbidden("may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            errs.add(f"{e_path}.operator", invalid(op or "", "not a valid selector operator"))
        for msg in qualified_name_errors(expr.get("key", "")):
            errs.add(f"{e_path}.key", invalid(expr.get("key", ""), msg))


def _selector_is_usable(selector: dict | None) -> bool:
    """Whether LabelSelectorAsSelector would accept it (In/NotIn need values, Exists none)."""
    for expr in (selector or {}).get("matchExpressions") or []:
        op, values = expr.get("operator"), expr.get("values") or []
        if op in ("In", "NotIn") and not values or op in ("Exists", "DoesNotExist") and values:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def selector_matches(selector: dict | None, labels: dict | None) -> bool:
    """Whether a LabelSelector selects ``labels``; a missing selector selects nothing.

    >>> selector_matches({"matchLabels": {"app": "web"}}, {"app": "web", "tier": "x"})
    True
    """
    if selector is None:
        return False
    labels = labels or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _validate_int_or_percent(value: Any, path: str, errs: _Errors) -> None:
    if isinstance(value, int):
        _nonnegative(value, path, errs)
    elif isinstance(value, str):
        if not re.fullmatch(r"[0-9]+%", value):
            errs.add(path, invalid(value, "a valid percent string must be a numeric string followed by an ending '%' "
                                          "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"))


def _percent_or_int(value: Any) -> tuple[int, bool]:
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        return int(value[:-1]), True
    return (value if isinstance(value, int) else 0), False


def _validate_deployment(obj: dict, beh: Behaviour, errs: _Errors) -> None:
    """ValidateDeploymentSpec (pkg/apis/apps/validation)."""
    spec = obj["spec"]
    _nonnegative(spec.get("replicas"), "spec.replicas", errs)
    selector = spec.get("selector")
    if selector is None:
        errs.add("spec.selector", required())
    else:
        _validate_selector(selector, "spec.selector", errs)
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            errs.add("spec.selector", invalid(selector, "empty selector is invalid for deployment"))
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not _selector_is_usable(selector):
        # Upstream skips the whole template when the selector cannot be parsed.
        errs.add("spec.selector", invalid(selector, "invalid label selector"))
    else:
        if selector is None or selector.get("matchLabels") or selector.get("matchExpressions"):
            if not selector_matches(selector, labels):
                errs.add("spec.template.metadata.labels", invalid(labels, "`selector` does not match template `labels`"))
        _validate_pod_template(template, beh, "spec.template", errs)
        policy = template.get("spec", {}).get("restartPolicy")
        if policy != "Always":
            errs.add("spec.template.spec.restartPolicy", not_supported(policy, ["Always"]))
        if template.get("spec", {}).get("activeDeadlineSeconds") is not None:
            errs.add("spec.template.spec.activeDeadlineSeconds", forbidden("activeDeadlineSeconds in ReplicaSet is not Supported"))
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        if strategy.get("rollingUpdate") is not None:
            errs.add("spec.strategy.rollingUpdate", forbidden("may not be specified when strategy `type` is 'Recreate'"))
    elif strategy.get("type") == "RollingUpdate":
        rolling = strategy.get("rollingUpdate") or {}
        unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
        _validate_int_or_percent(unavailable, "spec.strategy.rollingUpdate.maxUnavailable", errs)
        _validate_int_or_percent(surge, "spec.strategy.rollingUpdate.maxSurge", errs)
        if _percent_or_int(surge)[0] == 0 and _percent_or_int(unavailable)[0] == 0:
            errs.add("spec.strategy.rollingUpdate.maxUnavailable", invalid(unavailable, "may not be 0 when `maxSurge` is 0"))
        number, is_percent = _percent_or_int(unavailable)
        if is_percent and number > 100:
            errs.add("spec.strategy.rollingUpdate.maxUnavailable", invalid(unavailable, "must not be greater than 100%"))
    else:
        # Upstream reports it on spec.strategy (printing the whole strategy); labkit prints the type.
        errs.add("spec.strategy", not_supported(strategy.get("type"), ["Recreate", "RollingUpdate"]))
    _nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds", errs)
    _nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit", errs)
    deadline = spec.get("progressDeadlineSeconds")
    if isinstance(deadline, int):
        _nonnegative(deadline, "spec.progressDeadlineSeconds", errs)
        if deadline <= spec.get("minReadySeconds", 0):
            errs.add("spec.progressDeadlineSeconds", invalid(deadline, "must be greater than minReadySeconds"))


def _validate_job(obj: dict, beh: Behaviour, errs: _Errors) -> None:
    """ValidateJob: generated selector, validateJobSpec, selector (pkg/apis/batch/validation)."""
    spec, meta = obj["spec"], obj["metadata"]
    selector = spec.get("selector")
    if spec.get("manualSelector") is not True and selector is not None:
        expected = {"batch.kubernetes.io/controller-uid": meta["uid"], "batch.kubernetes.io/job-name": meta["name"],
                    "controller-uid": meta["uid"], "job-name": meta["name"]}
        if not selector_matches(selector, expected):
            errs.add("spec.selector", invalid(selector, "`selector` not auto-generated"))
    for key in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished"):
        _nonnegative(spec.get(key), f"spec.{key}", errs)
    if spec.get("completionMode") not in ("NonIndexed", "Indexed"):
        errs.add("spec.completionMode", not_supported(spec.get("completionMode"), ["NonIndexed", "Indexed"]))
    template = spec.get("template") or {}
    _validate_pod_template(template, beh, "spec.template", errs)
    # Since kubernetes#95747 (1.20) a missing policy (defaulted to Always) is "Required".
    policy = template.get("spec", {}).get("restartPolicy")
    if policy in ("Always", "", None):
        errs.add("spec.template.spec.restartPolicy", required('valid values: "OnFailure", "Never"'))
    elif policy not in ("OnFailure", "Never"):
        errs.add("spec.template.spec.restartPolicy", not_supported(policy, ["OnFailure", "Never"]))
    if selector is None:
        errs.add("spec.selector", required())
    else:
        _validate_selector(selector, "spec.selector", errs)
        labels = (template.get("metadata") or {}).get("labels") or {}
        if _selector_is_usable(selector) and not selector_matches(selector, labels):
            errs.add("spec.template.metadata.labels", invalid(labels, "`selector` does not match template `labels`"))


def _validate(obj: dict, kind: str, beh: Behaviour) -> _Errors:
    errs = _Errors()
    _validate_object_meta(obj["metadata"], errs)
    if kind == "Pod":
        _validate_pod_spec(obj["spec"], beh, "spec", errs)
        for group in ("containers", "initContainers"):  # validateContainersOnlyForPod
            for i, c in enumerate(obj["spec"].get(group) or []):
                image = c.get("image", "")
                if image != image.strip():
                    errs.add(f"spec.{group}[{i}].image", invalid(image, "must not have leading or trailing whitespace"))
    elif kind == "Job":
        _validate_job(obj, beh, errs)
    else:
        _validate_deployment(obj, beh, errs)
    return errs


def _warnings_for_pod_spec(spec: dict, kind: str) -> list[str]:
    """The parts of pkg/api/pod/warnings.go that matter here."""
    warnings = []
    prefix = _template_path(kind)
    grace = spec.get("terminationGracePeriodSeconds")
    if isinstance(grace, int) and grace < 0:  # templates keep it; their pods get 1
        warnings.append(f"{prefix}.terminationGracePeriodSeconds: must be >= 0; negative values are invalid and will be treated as 1")
    return warnings


# --- the entry point ---------------------------------------------------------------------

def admit(obj: dict, behaviour: Behaviour, *, source: str = "<input>") -> Admitted:
    """Create ``obj`` (a Pod, Job or Deployment) on a simulated API server of that version.

    Returns the defaulted object as the API server stores it (a deep copy) and the warnings
    ``kubectl apply`` prints; warnings that start with ``labkit:`` are labkit's explanation of
    something the real server does silently. Raises InvalidInput, naming ``source`` and the
    field path, where the real API server (or kubectl) would refuse the object; with several
    errors the message is the first one in the server's order plus "(and N more errors)".
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
        path, message = errors[0]
        for prefix, note in notes.items():
            if path == prefix or path.startswith(prefix + "."):
                message += f" (labkit: {note})"
                break
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
        raise InvalidInput(message, source=source, field=path)
    spec, _ = pod_spec_of(stored)
    return Admitted(stored, _warnings_for_pod_spec(spec, kind) + warnings)
