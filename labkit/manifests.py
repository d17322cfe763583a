"""Load Kubernetes manifests and scenario files into documents, the way ``kubectl apply -f`` reads them.

``load_documents`` takes file paths (a directory means its ``*.yaml``, ``*.yml`` and
``*.json`` files, sorted, as ``kubectl apply -f DIR`` does), YAML text, or objects already
parsed (a dict, or a list of any of these). Multi-document YAML is split at ``---``, empty
documents are skipped and ``kind: List`` is expanded into its items. Every problem is an
``InvalidInput`` naming the file and where in it:

>>> docs = load_documents("kind: Pod\\napiVersion: v1\\n---\\n---\\nkind: Job\\napiVersion: batch/v1\\n")
>>> [(d.obj["kind"], d.index) for d in docs]
[('Pod', 0), ('Job', 2)]
>>> load_documents("kind: Pod\\nmetadata: [\\n")
Traceback (most recent call last):
...
labkit.errors.InvalidInput: <input>: invalid YAML at line 3, column 1: expected the node content, but found '<stream end>' (while parsing a flow node)

``manifest_input`` tells every backend's ``apply`` whether its source is a file (``kubectl
apply -f PATH``) or YAML to pass on stdin.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import InvalidInput

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass
class Document:
    """One parsed YAML document: a Kubernetes object, or a scenario (the scenario format of tests/data/scenarios/README.md)."""

    obj: dict
    source: str  # the file name as given, for error messages
    index: int  # the document's position in its file, counting from 0 (empty documents count too);
    # messages count from 1, as people do: index 1 is "document 2"
    line: int | None = None  # the line the document starts on, when it came from YAML text

    @property
    def is_scenario(self) -> bool:
        """A scenario file has a ``pod`` and a ``behaviour`` block and no ``kind`` of its own."""
        return "pod" in self.obj and "behaviour" in self.obj and "kind" not in self.obj

    @property
    def where(self) -> str:
        """``file`` for its first document, ``file (document N, line L)`` for the others (N from 1)."""
        if self.index == 0:
            return self.source
        return f"{self.source} (document {self.index + 1}" + (f", line {self.line})" if self.line else ")")


class _Loader(yaml.SafeLoader):
    """YAML as kubectl reads it: timestamps stay strings, a repeated key is an error."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # "<<: *anchor" is flattened by the base class
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # the base class reports unhashable keys
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f'key "{key}" already set in map (first at line {seen[key] + 1})', key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


# sigs.k8s.io/yaml does not turn 2024-01-01 into a date: keep timestamps as plain strings.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _looks_like_text(value: str) -> bool:
    """YAML text has a newline or a ``key: value``; a file name has neither. "" is (empty) text, not ".", the folder."""
    return not value.strip() or "\n" in value or ": " in value or value.lstrip().startswith(("{", "["))


def _parse(text: str, source: str) -> list[Document]:
    if text.lstrip().startswith("{"):
        # kubectl reads a document that starts with "{" as JSON, where tabs are fine; if it is
        # not valid JSON, the YAML parser below says where the problem is.
        try:
            return _expand(json.loads(text), source, 0, 1)
        except json.JSONDecodeError:
            pass
    loader = _Loader(text)
    docs: list[Document] = []
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            obj = loader.construct_document(node)
            docs.extend(_expand(obj, source, index, node.start_mark.line + 1))
            index += 1
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = err.problem or "not valid YAML"
        context = ""
        if err.context:
            started = err.context_mark
            context = f" ({err.context}" + (f" started at line {started.line + 1}" if started and started is not mark else "") + ")"
        raise InvalidInput(f"invalid YAML{where}: {problem}{context}", source=source) from None
    except yaml.YAMLError as err:
        raise InvalidInput(f"invalid YAML: {err}", source=source) from None
    finally:
        loader.dispose()
    return docs


def _expand(obj: Any, source: str, index: int, line: int | None) -> list[Document]:
    """One document: skipped if empty, a List's items if a List, else itself; must be a mapping."""
    if obj is None:
        return []
    name = f"document {index + 1}" + (f" (line {line})" if line else "")
    if not isinstance(obj, dict):
        raise InvalidInput(f"{name} is not a mapping but a {_type_name(obj)}; "
                           "a manifest document must be a Kubernetes object", source=source)
    if obj.get("kind") == "List" and "items" in obj:
        items = obj["items"] or []
        if not isinstance(items, list):
            raise InvalidInput(f"{name}: items of a List must be a list, got a {_type_name(items)}",
                               source=source, field="items")
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise InvalidInput(f"{name}: items[{i}] is not a mapping but a {_type_name(item)}",
                                   source=source, field=f"items[{i}]")
        return [Document(item, source, index, line) for item in items]
    return [Document(obj, source, index, line)]


def _type_name(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), type(value).__name__)


def _read_file(path: Path, source: str) -> list[Document]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in MANIFEST_SUFFIXES and p.is_file())
        return [doc for p in files for doc in _read_file(p, os.path.join(source, p.name))]
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput("no such file", source=source) from None
    except OSError as err:
        raise InvalidInput(f"cannot read file: {err.strerror}", source=source) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InvalidInput(f"not UTF-8 text (byte {err.start})", source=source) from None
    return _parse(text, source)


def source_names(paths_or_text: Any) -> list[str]:
    """The names ``load_documents`` gives the inputs in messages: file names, ``<input>`` for text and objects."""
    if isinstance(paths_or_text, (list, tuple)):
        return list(dict.fromkeys(name for item in paths_or_text for name in source_names(item)))
    if isinstance(paths_or_text, os.PathLike) or (isinstance(paths_or_text, str) and not _looks_like_text(paths_or_text)):
        return [os.fspath(paths_or_text)]
    return ["<input>"]


def load_documents(paths_or_text: Any) -> list[Document]:
    """Every document in ``paths_or_text``: file paths, YAML text, dicts, or a list of these.

    A ``str`` with a newline or a ``key: value`` in it is YAML text (source ``<input>``);
    any other ``str`` and every ``Path`` is a file name. Dicts are taken as they are.
    """
    if isinstance(paths_or_text, (list, tuple)):
        docs: list[Document] = []
        for position, item in enumerate(paths_or_text):
            if isinstance(item, dict):
                docs.extend(_expand(item, "<input>", position, None))
            else:
                docs.extend(load_documents(item))
        return docs
    if isinstance(paths_or_text, dict):
        return _expand(paths_or_text, "<input>", 0, None)
    if isinstance(paths_or_text, Path):
        return _read_file(paths_or_text, str(paths_or_text))
    if isinstance(paths_or_text, str):
        if _looks_like_text(paths_or_text):
            return _parse(paths_or_text, "<input>")
        return _read_file(Path(paths_or_text), paths_or_text)
    if isinstance(paths_or_text, Iterable) and not isinstance(paths_or_text, (bytes, bytearray)):
        return load_documents(list(paths_or_text))
    raise InvalidInput(f"expected file names, YAML text or objects, got {type(paths_or_text).__name__}")


def manifest_input(source: Any) -> tuple[str | None, str | None]:
    """(path, None) for a manifest file, (None, YAML text) for text or objects."""
    if isinstance(source, os.PathLike):
        return os.fspath(source), None
    if isinstance(source, str):
        if "\n" not in source and (source.endswith((".yaml", ".yml", ".json")) or os.path.exists(source)):
            if not os.path.exists(source):
                raise InvalidInput("no such file", source=source)
            return source, None
        return None, source
    if isinstance(source, (dict, list, tuple)):
        objects = list(source) if isinstance(source, (list, tuple)) else [source]
        return None, yaml.safe_dump_all(objects, sort_keys=False)
    raise InvalidInput(f"cannot apply {type(source).__name__}: give a path, YAML text or objects", field="source")
