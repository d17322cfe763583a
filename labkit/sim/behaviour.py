"""The ``behaviour`` block: what a scenario (or the pod annotation) says a container's process does.

A block, given per container in a scenario file or as YAML/JSON in the pod annotation
``labkit.sidecar-lab.io/behaviour``, wins over what the simulator infers from the spec,
field by field (docs/scenarios.md). This module reads and checks blocks and lays one over an
inferred :class:`~labkit.sim.process.ProcessModel`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import yaml

from ..errors import InvalidInput
from . import timing
from .process import Hook, ProbeModel, ProcessModel, Run

BEHAVIOUR_ANNOTATION = "labkit.sidecar-lab.io/behaviour"
PROCESS_KINDS = ("e2e-helper", "shell-script", "sleep", "agnhost-pause", "pause", "http-server", "program")
PROBE_TYPES = ("startup", "readiness", "liveness")

LIFECYCLE_FIELDS = {"process", "run_seconds", "runs", "exit_code", "handles_sigterm", "sigterm_exit_after_seconds"}
_BLOCK_FIELDS = {
    "process", "start_delay_seconds", "run_seconds", "exit_code", "handles_sigterm",
    "sigterm_exit_after_seconds", "sigterm_exit_code", "on_sigterm", "runs", "image_pull_fails",
    "hooks", "probes", "note",
}


def _num(value: Any, where: str, source: str, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise InvalidInput(f"expected a number of seconds >= 0, got {value!r}", source=source, field=where)
    return float(value)


def _int(value: Any, where: str, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"expected an integer, got {value!r}", source=source, field=where)
    return value


def _bool(value: Any, where: str, source: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"expected true or false, got {value!r}", source=source, field=where)
    return value


def parse_behaviour_annotation(text: Any, *, source: str, where: str) -> dict:
    """The annotation's YAML/JSON text as a {container: block} mapping."""
    if not isinstance(text, str):
        raise InvalidInput("expected a YAML or JSON string", source=source, field=where)
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        try:
            data = json.loads(text)
        except ValueError:
            raise InvalidInput(f"not valid YAML/JSON: {exc}".splitlines()[0], source=source, field=where) from None
    if not isinstance(data, dict):
        raise InvalidInput("expected a mapping of container name to behaviour", source=source, field=where)
    return data


def validate_behaviour(blocks: Any, containers: list[str], *, source: str, where: str = "behaviour") -> dict[str, dict]:
    """Check a {container: block} mapping; bad input names the field path."""
    if blocks is None:
        return {}
    if not isinstance(blocks, dict):
        raise InvalidInput("expected a mapping of container name to behaviour", source=source, field=where)
    for name, block in blocks.items():
        path = f"{where}.{name}"
        if name not in containers:
            raise InvalidInput(f"no container named {name!r} in the pod (containers: {', '.join(containers)})",
                               source=source, field=path)
        if not isinstance(block, dict):
            raise InvalidInput("expected a mapping", source=source, field=path)
        unknown = set(block) - _BLOCK_FIELDS
        if unknown:
            raise InvalidInput(f"unknown field(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(_BLOCK_FIELDS))})",
                               source=source, field=path)
        if "process" in block and block["process"] not in PROCESS_KINDS:
            raise InvalidInput(f"unknown process {block['process']!r} (known: {', '.join(PROCESS_KINDS)})",
                               source=source, field=f"{path}.process")
        for key in ("start_delay_seconds", "sigterm_exit_after_seconds"):
            if key in block:
                _num(block[key], f"{path}.{key}", source)
        if "run_seconds" in block:
            _num(block["run_seconds"], f"{path}.run_seconds", source, allow_none=True)
        for key in ("exit_code", "sigterm_exit_code"):
            if key in block:
                _int(block[key], f"{path}.{key}", source)
        for key in ("handles_sigterm", "image_pull_fails"):
            if key in block:
                _bool(block[key], f"{path}.{key}", source)
        if "runs" in block:
            runs = block["runs"]
            if not isinstance(runs, list) or not runs:
                raise InvalidInput("expected a non-empty list of {run_seconds, exit_code}", source=source, field=f"{path}.runs")
            for i, run in enumerate(runs):
                if not isinstance(run, dict):
                    raise InvalidInput("expected a mapping", source=source, field=f"{path}.runs[{i}]")
                _num(run.get("run_seconds"), f"{path}.runs[{i}].run_seconds", source, allow_none=True)
                _int(run.get("exit_code", 0), f"{path}.runs[{i}].exit_code", source)
        hooks = block.get("hooks") or {}
        if not isinstance(hooks, dict):
            raise InvalidInput("expected a mapping with preStop/postStart", source=source, field=f"{path}.hooks")
        for hook_name, hook in hooks.items():
            hpath = f"{path}.hooks.{hook_name}"
            if hook_name not in ("preStop", "postStart"):
                raise InvalidInput("expected preStop or postStart", source=source, field=hpath)
            if not isinstance(hook, dict):
                raise InvalidInput("expected a mapping", source=source, field=hpath)
            for key in ("run_seconds", "start_delay_seconds", "loop_period_s"):
                if key in hook:
                    _num(hook[key], f"{hpath}.{key}", source, allow_none=key == "run_seconds")
            if "exit_code" in hook:
                _int(hook["exit_code"], f"{hpath}.exit_code", source)
            if "loop_forever" in hook:
                _bool(hook["loop_forever"], f"{hpath}.loop_forever", source)
        probes = block.get("probes") or {}
        if not isinstance(probes, dict):
            raise InvalidInput("expected a mapping with startup/readiness/liveness", source=source, field=f"{path}.probes")
        for ptype, probe in probes.items():
            ppath = f"{path}.probes.{ptype}"
            if ptype not in PROBE_TYPES:
                raise InvalidInput(f"expected one of {', '.join(PROBE_TYPES)}", source=source, field=ppath)
            if not isinstance(probe, dict) or "result" not in probe:
                raise InvalidInput("expected a mapping with a 'result'", source=source, field=ppath)
            probe_from_block(probe, f"{ppath}.result", source)
    return blocks


def probe_from_block(probe: dict, where: str, source: str) -> ProbeModel:
    result = probe["result"]
    exec_seconds = probe.get("exec_seconds")
    if exec_seconds is not None:
        exec_seconds = _num(exec_seconds, where.rsplit(".", 1)[0] + ".exec_seconds", source)
    if result in ("success", "failure", "success_until_sigterm"):
        return ProbeModel("until_sigterm" if result == "success_until_sigterm" else result)
    if result == "timeout":
        return ProbeModel("timeout", exec_seconds=exec_seconds)
    if isinstance(result, dict) and len(result) == 1:
        (key, value), = result.items()
        if key == "success_after_seconds":
            return ProbeModel("after", _num(value, f"{where}.{key}", source))
        if key == "success_until_seconds":
            return ProbeModel("until", _num(value, f"{where}.{key}", source))
    raise InvalidInput(
        f"unknown probe result {result!r} (expected success, failure, timeout, success_until_sigterm, "
        "{success_after_seconds: N} or {success_until_seconds: N})", source=source, field=where)


def hook_from_block(hook: dict) -> Hook:
    if hook.get("loop_forever"):
        return Hook(None, 0)
    seconds = hook.get("run_seconds", 0.0)
    if seconds is None:
        return Hook(None, int(hook.get("exit_code", 0)))
    return Hook(float(hook.get("start_delay_seconds", 0.0)) + float(seconds), int(hook.get("exit_code", 0)))


def _summary(kind: str, runs: tuple[Run, ...], handles: bool, after: float | None, code: int) -> str:
    """One line for a model described by a behaviour block."""
    run = runs[0]
    life = "runs until stopped" if run.seconds is None else f"exits {run.exit_code} after {run.seconds:g} s"
    if len(runs) > 1:
        life += f" (first run; {len(runs)} runs described)"
    if not handles:
        signal = "ignores SIGTERM (PID 1 without a handler)"
    elif after is None:
        signal = "traps SIGTERM and keeps running"
    else:
        signal = f"exits {code} {after:g} s after SIGTERM"
    return f"{kind} (behaviour block): {life}, {signal}"


# What a process kind does with SIGTERM when the block does not say: (handles, exit after, exit code).
# agnhost pause exits 2 on SIGTERM (test/images/agnhost/pause/pause.go; labkit/data/images.yaml).
_KIND_SIGTERM = {
    "e2e-helper": (True, 0.0, 0), "shell-script": (False, 0.0, 0), "sleep": (False, 0.0, 0),
    "agnhost-pause": (True, 0.0, 2), "pause": (True, 0.0, 0), "http-server": (True, timing.SERVER_SHUTDOWN_S, 0),
    "program": (True, timing.SERVER_SHUTDOWN_S, 0),
}


def apply_block(model: ProcessModel, block: dict, spec: dict) -> ProcessModel:
    """The inferred model with the block's fields on top. A block naming another process
    kind than the one inferred starts from that kind's defaults; the script's shape (its
    foreground stretches, files, output) is kept when the container runs a script."""
    kind = block.get("process", model.kind if model.kind != "unknown" else "shell-script")
    same = kind == model.kind
    script = model.kind in ("shell-script", "sleep")
    handles_default, after_default, code_default = (_KIND_SIGTERM[kind] if not same else
                                                    (model.handles_sigterm, model.sigterm_exit_after,
                                                     model.sigterm_exit_code))
    runs = model.runs if same or script else (Run(None),)
    if "runs" in block:
        runs = tuple(Run(None if r.get("run_seconds") is None else float(r["run_seconds"]), int(r.get("exit_code", 0)))
                     for r in block["runs"])
    elif "run_seconds" in block or "exit_code" in block:
        seconds = block.get("run_seconds", runs[0].seconds)
        runs = (Run(None if seconds is None else float(seconds), int(block.get("exit_code", runs[0].exit_code))),)
    handles = bool(block.get("handles_sigterm", handles_default))
    after = block.get("sigterm_exit_after_seconds", after_default)
    after = None if after is None else float(after)
    code = int(block.get("sigterm_exit_code", code_default))
    ports = model.listen_ports
    if kind == "http-server" and ports is None:
        ports = tuple(p.get("containerPort") for p in spec.get("ports") or [] if p.get("containerPort"))
    keep_shape = same or script
    # A block that says how the process meets its stop signal speaks for whatever signal it gets.
    says_signal = bool({"process", "handles_sigterm", "sigterm_exit_after_seconds", "sigterm_exit_code"} & set(block))
    return replace(
        model,
        trapped=None if says_signal else model.trapped,
        reactions=None if says_signal else model.reactions,
        kind=kind,
        description=_summary(kind, runs, handles, after, code),
        runs=runs,
        start_delay=float(block.get("start_delay_seconds", model.start_delay if same else 0.0)),
        handles_sigterm=handles,
        sigterm_exit_after=after,
        sigterm_exit_code=code,
        segments=model.segments if keep_shape else (),
        loop_segments=model.loop_segments if keep_shape else (),
        loop_period=model.loop_period if keep_shape else None,
        listen_ports=ports if kind == "http-server" else None,
        listens=True if kind == "http-server" else None if kind == "program" else False,
        image_pull_fails=bool(block.get("image_pull_fails", False)),
    )
