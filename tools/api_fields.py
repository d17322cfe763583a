"""Derive ``labkit/sim/api_fields.json``: the fields the simulated API server knows, per minor.

The simulator's strict decoder rejects a field the Kubernetes version does not have
(``strict decoding error: unknown field``). Which fields a version has is in that version's
OpenAPI document (``api/openapi-spec/swagger.json`` at the release tag). The official Python
client (``kubernetes`` on PyPI) is generated from it, one major per minor: client 29.x from
``release-1.29`` (its ``configuration.py`` says ``Version of the API: release-1.29``), and
each model class lists its fields in ``openapi_types`` (Python name -> type) and
``attribute_map`` (Python name -> JSON name).

So this script reads those two dicts from the wheels, without importing them (11 client
versions cannot be imported into one process; ``ast`` reads the literals), starting at Pod, Job
and Deployment and following every field whose type is another model. It writes one JSON
file in which each field carries the minors it exists in.

Run it once when labkit supports a new minor (download the wheels with pip, no install):

    for v in 27.2.0 28.1.0 29.0.0 30.1.0 31.0.0 32.0.1 33.1.0 34.1.0 35.0.0 36.0.3 37.0.2; do
        pip download --no-deps kubernetes==$v -d /tmp/k8s-clients
    done
    python tools/api_fields.py /tmp/k8s-clients/*.whl > labkit/sim/api_fields.json
"""

from __future__ import annotations

import ast
import json
import re
import sys
import zipfile

ROOTS = ("V1Pod", "V1Job", "V1Deployment")
SCALARS = {"str", "int", "float", "bool", "object", "datetime", "date", "bytes"}


def _dict_literal(tree: ast.Module, name: str) -> dict[str, str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            return ast.literal_eval(node.value)
    raise LookupError(name)


def _normal(type_: str) -> str:
    """One spelling for both generators: ``list[X]`` and ``dict(str, X)``."""
    if m := re.fullmatch(r"[Ll]ist\[(.*)\]", type_):
        return f"list[{_normal(m.group(1))}]"
    if m := re.fullmatch(r"(?:[Dd]ict\[str, (.*)\]|dict\(str, (.*)\))", type_):
        return f"dict(str, {_normal(m.group(1) or m.group(2))})"
    return type_


def _inner_models(type_: str) -> list[str]:
    return [t for t in re.findall(r"[A-Za-z0-9]+", type_) if t not in SCALARS and t not in ("list", "dict")]


def read_wheel(path: str) -> tuple[int, dict[str, dict[str, str]]]:
    """(minor, {model: {json name: type}}) for the models reachable from ROOTS."""
    with zipfile.ZipFile(path) as wheel:
        config = wheel.read("kubernetes/client/configuration.py").decode()
        minor = int(re.search(r"Version of the API: release-1\.(\d+)", config).group(1))
        # models/__init__.py: "from kubernetes.client.models.v1_pod_spec import V1PodSpec"
        index = wheel.read("kubernetes/client/models/__init__.py").decode()
        files = {cls: f"kubernetes/client/models/{module}.py"
                 for module, cls in re.findall(r"^ *from kubernetes\.client\.models\.(\w+) import (\w+)$", index, re.M)}
        models: dict[str, dict[str, str]] = {}
        todo = list(ROOTS)
        while todo:
            model = todo.pop()
            if model in models:
                continue
            tree = ast.parse(wheel.read(files[model]).decode())
            types, names = _dict_literal(tree, "openapi_types"), _dict_literal(tree, "attribute_map")
            models[model] = {names[attr]: _normal(type_) for attr, type_ in types.items()}
            todo.extend(m for t in models[model].values() for m in _inner_models(t))
    return minor, models


def merge(per_minor: dict[int, dict[str, dict[str, str]]]) -> dict:
    """{model: {field: spelling}}: a field in every minor with one type is just its type; otherwise
    a list of [type, first minor, last minor] runs (null at the ends of the range: open)."""
    minors = sorted(per_minor)
    merged: dict[str, dict[str, object]] = {}
    for model in sorted({m for models in per_minor.values() for m in models}):
        fields: dict[str, object] = {}
        for name in sorted({f for models in per_minor.values() for f in models.get(model, {})}):
            runs: list[list] = []
            for minor in minors:
                type_ = per_minor[minor].get(model, {}).get(name)
                if type_ is not None and runs and runs[-1][0] == type_ and runs[-1][2] == minor - 1:
                    runs[-1][2] = minor
                elif type_ is not None:
                    runs.append([type_, minor, minor])
            for run in runs:
                run[1] = None if run[1] == minors[0] else run[1]
                run[2] = None if run[2] == minors[-1] else run[2]
            fields[name] = runs[0][0] if len(runs) == 1 and runs[0][1:] == [None, None] else runs
        merged[model] = fields
    return merged


def main(paths: list[str]) -> None:
    read = {p: read_wheel(p) for p in paths}
    per_minor = dict(read.values())
    minors = sorted(per_minor)
    sources = ", ".join(f"1.{minor} from {p.rsplit('/', 1)[-1].split('-py')[0]}"
                        for p, (minor, _) in sorted(read.items(), key=lambda item: item[1][0]))
    data = {
        "about": ("Fields of Pod, Job and Deployment and every type they contain, per Kubernetes minor, "
                  "as the strict decoder of the API server knows them. A field is its type when every minor "
                  "has it with that type, else a list of [type, first minor, last minor] (null: from/until the ends "
                  "of 'minors'). Made by "
                  "tools/api_fields.py from the openapi_types/attribute_map of the kubernetes Python client "
                  "generated from each release's OpenAPI: " + sources + ". Do not edit by hand."),
        "minors": [minors[0], minors[-1]],
        "models": merge(per_minor),
    }
    # One model a line: small, and a diff after regenerating shows which types changed.
    lines = [f"{json.dumps(name)}: {json.dumps(fields, separators=(',', ':'))}" for name, fields in data["models"].items()]
    sys.stdout.write(f'{{"about": {json.dumps(data["about"])},\n"minors": {json.dumps(data["minors"])},\n'
                     '"models": {\n' + ",\n".join(lines) + "\n}}\n")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit("usage: python tools/api_fields.py kubernetes-NN*.whl... > labkit/sim/api_fields.json")
    main(sys.argv[1:])
