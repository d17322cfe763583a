"""From a container spec to the :class:`~labkit.sim.process.ProcessModel` the kubelet runs.

:func:`build` gives one container's model, looked for in this order:

1. an explicit ``behaviour`` block (the scenario format's, or the pod annotation
   ``labkit.sidecar-lab.io/behaviour`` holding the same block as YAML/JSON) wins, field by
   field (:mod:`labkit.sim.behaviour`);
2. a known image run with its own entrypoint (no ``command``): its row of the image table
   (``labkit/data/images.yaml``, read by :mod:`labkit.sim.images`): STOPSIGNAL, what the
   program does with each signal, its ports, whether it exits by itself;
3. a command that runs a known program, directly or as the last command of ``sh -c``;
4. otherwise the shell forms of ``command``/``args`` are read (:mod:`labkit.sim.shell`);
5. an unknown image with no command is a program that handles its stop signal and exits
   promptly; an unreadable command runs until stopped and ignores SIGTERM, like a shell
   loop as PID 1. Both come with a warning that says so and how to describe the container.

Probes without an explicit result model: exec probes are read like scripts (``true``,
``false``, ``exit N``, ``sleep N`` beyond the timeout, ``cat``/``test -f``/``ls`` of a file
the process creates or its trap removes); httpGet/tcpSocket/grpc probes succeed on a known
server once it listens on that port, fail when the process is known not to listen
(a shell script, ``sleep``), and otherwise succeed once the process runs past its start
delay.
"""

from __future__ import annotations

import shlex
from dataclasses import replace

from ..images import DEFAULT_STOP_SIGNAL, repository
from . import images, timing
from .behaviour import (BEHAVIOUR_ANNOTATION, LIFECYCLE_FIELDS, PROBE_TYPES, apply_block, hook_from_block,
                        probe_from_block)
from .images import ImageRow, Reaction
from .process import Hook, ProbeModel, ProcessModel, Run
from .shell import UnreadableScript, first_command, program_at_end, read_script, sleep_seconds

_SHELLS = {"sh", "bash", "ash", "dash", "zsh"}


def image_name(image: str) -> tuple[str, str]:
    """``ghcr.io/x/y:2.1@sha256:..`` -> ("x/y", "2.1"); registry host and ``library/`` dropped."""
    return repository(image)


def _flag_value(words: list[str], *flags: str) -> str | None:
    for i, word in enumerate(words):
        for flag in flags:
            if word == flag and i + 1 < len(words):
                return words[i + 1]
            if word.startswith(flag + "="):
                return word.split("=", 1)[1]
    return None


def _when(reaction: Reaction) -> str:
    if reaction.exit_after is None:
        return "handled, keeps running"
    if reaction.exit_after <= timing.SERVER_SHUTDOWN_S:
        return f"exits {reaction.exit_code} at once"
    return f"exits {reaction.exit_code} {reaction.exit_after:g} s later"


def _from_row(row: ImageRow, tag: str, words: list[str], env: dict[str, str], *, how: str) -> ProcessModel | None:
    """The model of ``row``'s program run with arguments ``words``; None when the row does not
    say what those arguments do (an agnhost subcommand it does not list)."""
    sub: dict = {}
    if row.subcommands:
        first = words[0] if words else ""
        if first in row.subcommands:
            sub = row.subcommands[first]
        elif row.subcommands_only:
            return None
    label = f"{row.row}{' ' + words[0] if sub else ''} (image table row {row.row!r}{how})"
    if row.exits_by_itself is not None:
        if words:
            return None             # no entrypoint: the arguments are the command
        after, code = row.exits_by_itself
        return ProcessModel(kind="shell-script", description=f"{label}: a shell without input, exits {code} at once",
                            runs=(Run(after, code),), listens=False, stop_signal=row.stop_signal,
                            trapped=frozenset(), image_row=row.row)
    ports = tuple(sub.get("ports", row.ports))
    major = tag.split(".")[0].split("-")[0]
    ports = row.ports_by_tag.get(major, ports)
    flags = tuple(sub.get("port_flags", row.port_flags))
    explicit = _flag_value(words, *flags) if flags else None
    if explicit is None and row.port_env:
        explicit = env.get(row.port_env) or None
    if explicit is not None and str(explicit).isdigit():
        ports = (int(explicit),)
    reactions = dict(sub.get("on_signal", row.on_signal))
    for flag, code in row.exit_code_flags.items():
        if flag in words or any(w.startswith(flag + "=") and w.split("=", 1)[1] != "false" for w in words):
            term = reactions[DEFAULT_STOP_SIGNAL]
            reactions[DEFAULT_STOP_SIGNAL] = Reaction(term.exit_after, code)
    stop = row.stop_signal
    reaction = reactions.get(stop)
    pause = row.row == "pause" or (row.row == "agnhost" and sub is row.subcommands.get("pause"))
    kind = "pause" if pause else "http-server" if ports else "program"
    listening = f"listens on :{', :'.join(map(str, ports))} after {timing.SERVER_LISTEN_S:g} s; " if ports else ""
    if reaction is None:
        on_stop = f"stop signal {stop}: no handler, ignored as PID 1"
    else:
        on_stop = f"stop signal {stop}: {_when(reaction)}"
    return ProcessModel(
        kind=kind, description=f"{label}: {listening}{on_stop}", runs=(Run(None),),
        start_delay=0.0 if pause else timing.SERVER_LISTEN_S,
        handles_sigterm=reaction is not None,
        sigterm_exit_after=reaction.exit_after if reaction else 0.0,
        sigterm_exit_code=reaction.exit_code if reaction else 0,
        listen_ports=ports or None, listens=True if ports else False if pause else None,
        stop_signal=stop, reactions=reactions, image_row=row.row,
    )


def _image_model(image: str, command: list[str] | None, args: list[str] | None, env: dict[str, str]) -> ProcessModel | None:
    if command:
        return None   # the command replaces the image's entrypoint: read the command instead
    row = images.lookup(image)
    if row is None:
        return None
    return _from_row(row, repository(image)[1], list(args or []), env, how="")


def _hint(name: str, block: str, purpose: str) -> str:
    """How to describe container ``name`` with the annotation: a line to paste under annotations."""
    return (f"Describe it with the {BEHAVIOUR_ANNOTATION} annotation on the pod (spec.template.metadata in a "
            f"Deployment or Job), e.g. {purpose}: {BEHAVIOUR_ANNOTATION}: '{{{name}: {block}}}' (fields: docs/images.md)")


_DEFAULT_DESCRIPTION = "unknown program: assumed to run until stopped and to ignore SIGTERM (like a shell loop as PID 1)"
_PROGRAM_DESCRIPTION = ("unknown image run with its own entrypoint: assumed to be a program that handles its stop "
                        "signal and exits 0 promptly")


def infer(spec: dict) -> tuple[ProcessModel, list[str]]:
    """Model a container from its spec alone; returns the model and any warnings."""
    name = spec.get("name", "?")
    image = spec.get("image", "")
    command = spec.get("command")
    args = spec.get("args")
    env = {e.get("name"): str(e.get("value", "")) for e in spec.get("env") or [] if isinstance(e, dict)}
    model = _image_model(image, command, args, env)
    if model is not None:
        return model, []
    argv = list(command or []) + list(args or [])
    if not argv:
        # An image started by its own entrypoint is almost always a server or agent that
        # handles its stop signal; the PID 1 rule's pessimistic default is for scripts.
        return _program(), [
            f"container {name}: image {image!r} is not in the simulator's image table and runs its own entrypoint "
            "(no command), so it is assumed to be a program that handles its stop signal (SIGTERM) and exits 0 "
            "promptly, not a script that ignores it. "
            + _hint(name, "{handles_sigterm: false}", "for a program that ignores its stop signal")]
    ignore_hint = _hint(name, "{handles_sigterm: true, sigterm_exit_after_seconds: 1}",
                        "for one that exits 1 s after its stop signal")
    program = argv[0].rsplit("/", 1)[-1]
    tag = repository(image)[1]
    row = images.for_program(program)
    if row is not None and not (program in _SHELLS):
        model = _from_row(row, tag, argv[1:], env, how=f", started as {program}")
        if model is not None:
            return model, []
    try:
        if program in _SHELLS and len(argv) >= 3 and argv[1] in ("-c", "-ec", "-xc", "-exc"):
            found = program_at_end(argv[2])
            if found is not None:
                row, words, before = found
                model = _from_row(row, tag, words, env, how=f", started by a {program} -c script")
                if model is not None:
                    return replace(model, start_delay=model.start_delay + before), []
            return read_script(argv[2], env), []
        if program in ("sleep", "tail", "echo", "true", "false", "exit"):
            model = read_script(shlex.join(argv))
            if program == "sleep":
                model = replace(model, kind="sleep", description=f"sleep as PID 1: {model.description.split(': ', 1)[1]}")
            return model, []
    except UnreadableScript as why:
        return _unknown(), [f"container {name}: the simulator cannot read {why} in {shlex.join(argv)!r}; "
                            f"{_DEFAULT_DESCRIPTION}. {ignore_hint}"]
    return _unknown(), [f"container {name}: the simulator does not know what {shlex.join(argv)!r} does; "
                        f"{_DEFAULT_DESCRIPTION}. {ignore_hint}"]


def _unknown() -> ProcessModel:
    return ProcessModel(kind="unknown", description=_DEFAULT_DESCRIPTION, runs=(Run(None),), handles_sigterm=False)


def _program() -> ProcessModel:
    return ProcessModel(kind="program", description=_PROGRAM_DESCRIPTION, runs=(Run(None),), handles_sigterm=True,
                        sigterm_exit_after=timing.SERVER_SHUTDOWN_S, sigterm_exit_code=0)


def _hook_model(handler: dict | None, process: ProcessModel) -> Hook | None:
    if not handler:
        return None
    if "sleep" in handler:
        return Hook(float((handler.get("sleep") or {}).get("seconds", 0)), 0, in_container=False)
    if "exec" in handler:
        argv = list((handler.get("exec") or {}).get("command") or [])
        script = argv[2] if len(argv) >= 3 and argv[0].rsplit("/", 1)[-1] in _SHELLS and argv[1] == "-c" else shlex.join(argv)
        try:
            model = read_script(script)
        except UnreadableScript:
            return Hook(timing.INSTANT_HOOK_S, 0)
        run = model.runs[0]
        return Hook(run.seconds, run.exit_code)
    if "httpGet" in handler or "tcpSocket" in handler:
        return Hook(timing.INSTANT_HOOK_S, 0 if process.listens is not False else 1)
    return Hook(timing.INSTANT_HOOK_S, 0)


def _probe_model(probe: dict, process: ProcessModel) -> ProbeModel:
    if "exec" in probe:
        argv = list((probe.get("exec") or {}).get("command") or [])
        if not argv:
            return ProbeModel("failure")
        program = argv[0].rsplit("/", 1)[-1]
        if program in _SHELLS and len(argv) >= 3 and argv[1] == "-c":
            argv = first_command(argv[2])
            program = argv[0].rsplit("/", 1)[-1] if argv else ""
        if program == "true" or program == ":":
            return ProbeModel("success")
        if program == "false":
            return ProbeModel("failure")
        if program == "exit":
            return ProbeModel("success" if argv[1:2] in (["0"], []) else "failure")
        if program == "sleep":
            try:
                return ProbeModel("timeout", exec_seconds=sleep_seconds(argv))
            except UnreadableScript:
                return ProbeModel("running")
        if program in ("cat", "test", "ls", "[", "stat"):
            path = next((w for w in argv[1:] if w.startswith("/") or (w not in ("-f", "-e", "-s", "]") and not w.startswith("-"))), None)
            if path is not None:
                return ProbeModel("file", path=path)
        return ProbeModel("running")
    port = None
    for key in ("httpGet", "tcpSocket", "grpc"):
        if key in probe:
            port = (probe.get(key) or {}).get("port")
    if process.listen_ports is not None:
        return ProbeModel("listening", value=float(port) if isinstance(port, int) else -1.0)
    if process.listens is False:
        return ProbeModel("failure")
    return ProbeModel("running")


def build(spec: dict, block: dict | None, *, shared_pid_namespace: bool = False) -> tuple[ProcessModel, list[str]]:
    """The model of one container: inferred from the spec, overridden by ``block``."""
    model, warnings = infer(spec)
    if block:
        model = apply_block(model, block, spec)
        if LIFECYCLE_FIELDS & set(block):
            warnings = []      # the block says what the program does
    lifecycle = spec.get("lifecycle") or {}
    hooks = (block or {}).get("hooks") or {}
    post_start = hook_from_block(hooks["postStart"]) if "postStart" in hooks else _hook_model(lifecycle.get("postStart"), model)
    pre_stop = hook_from_block(hooks["preStop"]) if "preStop" in hooks else _hook_model(lifecycle.get("preStop"), model)
    probes = {}
    block_probes = (block or {}).get("probes") or {}
    for ptype in PROBE_TYPES:
        probe = spec.get(f"{ptype}Probe")
        if not probe:
            continue
        if ptype in block_probes:
            probes[ptype] = probe_from_block(block_probes[ptype], f"behaviour.{spec.get('name')}.probes.{ptype}.result", "<behaviour>")
        else:
            probes[ptype] = _probe_model(probe, model)
        if probes[ptype].kind == "listening" and probes[ptype].value < 0:
            probes[ptype] = _resolve_named_port(probe, spec, probes[ptype])
        if ptype not in block_probes and probes[ptype].kind == "listening" and model.listen_ports \
                and int(probes[ptype].value) not in model.listen_ports:
            # A guess, and it decides the timeline (a startup probe that never passes holds the
            # pod in Init): say so rather than let the learner read it as the program's behaviour.
            name = spec.get("name")
            port = int(probes[ptype].value)
            warnings = [*warnings, (
                f"container {name}: its {ptype} probe checks port {port}, but the simulator's image table knows "
                f"{model.kind} listening only on {', '.join(map(str, model.listen_ports))} by default, so the probe is "
                f"taken to fail. If the program listens on {port} (its configuration may say so), "
                + _hint(name, f"{{probes: {{{ptype}: {{result: success}}}}}}", "for a probe that passes"))]
    # lifecycle.stopSignal reaches the kubelet only where the API server kept it (1.33+,
    # ContainerStopSignals on: labkit.sim.api drops or refuses it otherwise).
    stop_signal = lifecycle.get("stopSignal") or model.stop_signal
    model = replace(model, post_start=post_start, pre_stop=pre_stop, probes=probes,
                    shared_pid_namespace=shared_pid_namespace, stop_signal=stop_signal)
    return model, warnings


def _resolve_named_port(probe: dict, spec: dict, model: ProbeModel) -> ProbeModel:
    port = None
    for key in ("httpGet", "tcpSocket", "grpc"):
        if key in probe:
            port = (probe.get(key) or {}).get("port")
    for declared in spec.get("ports") or []:
        if declared.get("name") == port:
            return replace(model, value=float(declared.get("containerPort")))
    return model
