"""What a container's process does, as the simulator models it (docs/images.md).

The kubelet only sees a process start, run, maybe exit, and react (or not) to its stop
signal. This module turns a container spec into that description (:class:`ProcessModel`):

1. an explicit ``behaviour`` block (the scenario format's, or the pod annotation
   ``labkit.sidecar-lab.io/behaviour`` holding the same block as YAML/JSON) wins, field by
   field;
2. a known image run with its own entrypoint (no ``command``): its row of the image table
   (``labkit/data/images.yaml``, read by :mod:`labkit.sim.images`): STOPSIGNAL, what the
   program does with each signal, its ports, whether it exits by itself;
3. a command that runs a known program, directly or as the last command of ``sh -c``;
4. otherwise the shell forms of ``command``/``args`` are read: ``sleep N``, ``exit N``,
   ``echo``, ``touch``, ``while true; do ...; done``, ``trap '...' TERM``, ``tail -F``,
   ``sleep N & wait $!`` (the upstream e2e helper), functions used as trap handlers;
5. an unknown image with no command is a program that handles its stop signal and exits
   promptly; an unreadable command runs until stopped and ignores SIGTERM, like a shell
   loop as PID 1. Both come with a warning that says so and how to describe the container.

The stop signal is the pod's ``lifecycle.stopSignal`` (1.33+, ContainerStopSignals), else the
image's STOPSIGNAL, else SIGTERM; a process reacts to the signal it gets.

PID 1 rule: a process without a handler for its stop signal ignores it (the kernel drops
default-disposition signals to a namespace's init), so it ends only by SIGKILL (137) at
the end of its grace period. With ``shareProcessNamespace: true`` the pause container is
PID 1 and such a process gets the signal's default action (143 for SIGTERM).

A trap runs only when the shell's current foreground command returns: a trap set before a
foreground ``sleep 10`` loop runs up to 10 s after SIGTERM; with ``sleep N & wait $!``
(the e2e helper) it runs at once.

Probes without an explicit result model: exec probes are read like scripts (``true``,
``false``, ``exit N``, ``sleep N`` beyond the timeout, ``cat``/``test -f``/``ls`` of a file
the process creates or its trap removes); httpGet/tcpSocket/grpc probes succeed on a known
server once it listens on that port, fail when the process is known not to listen
(a shell script, ``sleep``), and otherwise succeed once the process runs past its start
delay.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from ..errors import InvalidInput
from . import images, timing
from .images import DEFAULT_STOP_SIGNAL, NON_TERMINATING, ImageRow, Reaction

BEHAVIOUR_ANNOTATION = "labkit.sidecar-lab.io/behaviour"
PROCESS_KINDS = ("e2e-helper", "shell-script", "sleep", "agnhost-pause", "pause", "http-server", "program")
PROBE_TYPES = ("startup", "readiness", "liveness")

# Commands that return at once and do not change what the simulator cares about.
_INSTANT_COMMANDS = frozenset({
    ":", "true", "cat", "date", "ls", "mkdir", "cp", "mv", "ln", "chmod", "chown", "export",
    "set", "cd", "env", "printenv", "hostname", "id", "whoami", "sync", "uname", "test", "[",
    "[[", "touch", "rm", "echo", "printf", "sed", "grep", "awk", "head", "wc", "tee", "nslookup",
})


@dataclass(frozen=True)
class Run:
    """One instance's own lifetime: ``seconds`` until it exits by itself (None: never)."""

    seconds: float | None
    exit_code: int = 0


@dataclass(frozen=True)
class Hook:
    """A postStart/preStop handler: how long it takes (None: never returns) and its result.

    ``in_container``: an exec or HTTP handler runs in (or against) the container, so it ends
    when the container does; the ``sleep`` action is a timer in the kubelet
    (``runSleepHandler``) and runs its full length whatever the container does.
    """

    seconds: float | None
    exit_code: int = 0
    in_container: bool = True


@dataclass(frozen=True)
class ProbeModel:
    """How a probe's result depends on time. ``kind``: success, failure, timeout, after
    (succeeds from ``value`` s after the instance started), until (succeeds for ``value`` s),
    until_sigterm, file (``path`` exists), listening (server listens on the port),
    running (the process runs past its start delay)."""

    kind: str
    value: float = 0.0
    path: str | None = None
    exec_seconds: float | None = None


@dataclass(frozen=True)
class Segment:
    """A stretch of the main script: a foreground command (trap deferred to its end) or not."""

    start: float
    end: float
    foreground: bool


@dataclass
class ProcessModel:
    kind: str
    description: str
    runs: tuple[Run, ...] = (Run(None),)
    start_delay: float = 0.0
    handles_sigterm: bool = False
    sigterm_exit_after: float | None = 0.0     # None: the handler does not end the process
    sigterm_exit_code: int = 0
    # Foreground stretches of the script (for deferred traps); `loop` repeats from its
    # first segment's start with `loop_period` (None: no loop).
    segments: tuple[Segment, ...] = ()
    loop_segments: tuple[Segment, ...] = ()
    loop_period: float | None = None
    listen_ports: tuple[int, ...] | None = None    # None: not known to be a server
    listens: bool | None = None                    # False: known not to listen anywhere
    files: dict[str, float] = field(default_factory=dict)
    files_removed_by_trap: tuple[str, ...] = ()
    stdout: tuple[tuple[float, str], ...] = ()
    loop_stdout: tuple[tuple[float, str], ...] = ()
    image_pull_fails: bool = False
    post_start: Hook | None = None
    pre_stop: Hook | None = None
    probes: dict[str, ProbeModel] = field(default_factory=dict)
    shared_pid_namespace: bool = False
    # The signal the runtime sends to stop it: the pod's lifecycle.stopSignal, else the
    # image's STOPSIGNAL, else SIGTERM (KEP-4960: "Stop signal from Container Spec >
    # STOPSIGNAL from container image > Default stop signal of container runtime").
    stop_signal: str = DEFAULT_STOP_SIGNAL
    # Which signals the SIGTERM fields above describe: None, whatever stop signal is sent (a
    # behaviour block, an unknown program); a script's trapped signals otherwise.
    trapped: frozenset[str] | None = None
    # A known image's program: its reaction to each signal it handles (None: not from the table).
    reactions: dict[str, Reaction] | None = None
    image_row: str | None = None        # the image table's row this model came from

    def run(self, attempt: int) -> Run:
        return self.runs[min(attempt, len(self.runs) - 1)]

    def handles(self, signal: str) -> bool:
        """Whether the process has a handler for ``signal`` (as PID 1 it gets no other)."""
        if self.reactions is not None:
            return signal in self.reactions
        if self.trapped is not None and signal not in self.trapped:
            return False
        return self.handles_sigterm

    def exit_after(self, signal: str) -> tuple[float | None, int]:
        """(seconds from its handler starting to its exit, or None: it keeps running; exit code)."""
        if self.reactions is not None and signal in self.reactions:
            reaction = self.reactions[signal]
            return reaction.exit_after, reaction.exit_code
        return self.sigterm_exit_after, self.sigterm_exit_code

    def trap_delay(self, offset: float, signal: str = DEFAULT_STOP_SIGNAL) -> float | None:
        """Seconds from the stop signal (at ``offset`` s into the instance) until the process reacts.

        None: it never reacts (the signal ignored). For a handled signal this is when the
        handler starts; the caller adds :meth:`exit_after`. Without a handler, the process
        reacts at once only when it is not PID 1 (``shareProcessNamespace``) and the
        signal's default action ends it.
        """
        if not self.handles(signal):
            if self.shared_pid_namespace and signal not in NON_TERMINATING:
                return 0.0
            return None
        segment = self._segment_at(offset)
        if segment is None or not segment.foreground:
            return 0.0
        if math.isinf(segment.end):
            return None
        return max(0.0, segment.end - offset)

    def _segment_at(self, offset: float) -> Segment | None:
        for seg in self.segments:
            if seg.start <= offset < seg.end:
                return seg
        if self.loop_period and self.loop_segments:
            base = self.loop_segments[0].start
            if offset >= base:
                k = math.floor((offset - base) / self.loop_period + 1e-9)
                rel = offset - k * self.loop_period
                for seg in self.loop_segments:
                    if seg.start <= rel < seg.end:
                        return Segment(seg.start + k * self.loop_period, seg.end + k * self.loop_period, seg.foreground)
        return None

    def stdout_lines(self, since: float, until: float) -> list[tuple[float, str]]:
        """Lines the process writes to stdout between two offsets (for ``logs``)."""
        lines = [(t, text) for t, text in self.stdout if since <= t <= until]
        if self.loop_period and self.loop_stdout:
            k = 0
            while True:
                base = k * self.loop_period
                if base + self.loop_stdout[0][0] > until or len(lines) > 10_000:
                    break
                lines.extend((base + t, text) for t, text in self.loop_stdout if since <= base + t <= until)
                k += 1
        return sorted(lines)


# -- the behaviour block ------------------------------------------------------------------
_LIFECYCLE_FIELDS = {"process", "run_seconds", "runs", "exit_code", "handles_sigterm", "sigterm_exit_after_seconds"}
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
            _probe_from_block(probe, f"{ppath}.result", source)
    return blocks


def _probe_from_block(probe: dict, where: str, source: str) -> ProbeModel:
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


def _hook_from_block(hook: dict) -> Hook:
    if hook.get("loop_forever"):
        return Hook(None, 0)
    seconds = hook.get("run_seconds", 0.0)
    if seconds is None:
        return Hook(None, int(hook.get("exit_code", 0)))
    return Hook(float(hook.get("start_delay_seconds", 0.0)) + float(seconds), int(hook.get("exit_code", 0)))


# -- shell scripts -----------------------------------------------------------------------------
class _Unknown(Exception):
    """The script does something the reader does not model."""


@dataclass
class _Script:
    """What reading a script found (times are offsets from the process start)."""

    t: float = 0.0
    exit_code: int | None = None        # set when the script ends by itself
    forever: bool = False
    status: int = 0
    segments: list[Segment] = field(default_factory=list)
    loop_segments: list[Segment] = field(default_factory=list)
    loop_period: float | None = None
    files: dict[str, float] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    stdout: list[tuple[float, str]] = field(default_factory=list)
    loop_stdout: list[tuple[float, str]] = field(default_factory=list)
    trap: str | None = None             # handler text or function body
    trap_set: bool = False
    trapped: set[str] = field(default_factory=set)   # signals the trap handles (SIGTERM, SIGQUIT, ...)
    functions: dict[str, list] = field(default_factory=dict)
    background_sleep: float | None = None
    first_marker: float | None = None   # when the first file appears (e2e helper's "Started")


def _tokens(script: str) -> list[str]:
    lexer = shlex.shlex(script.replace("\n", " ; "), posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        raw = list(lexer)
    except ValueError as exc:
        raise _Unknown(f"cannot parse the shell text ({exc})") from None
    # shlex glues neighbouring punctuation ("()", ");"); split all but real operators.
    tokens: list[str] = []
    for tok in raw:
        if tok and all(ch in ";&|()<>" for ch in tok) and tok not in _OPERATORS:
            tokens.extend(tok)
        else:
            tokens.append(tok)
    return tokens


_OPERATORS = {";", "&", "&&", "|", "||", ";;", "(", ")", "<", ">", ">>", ">&", "<&", ">|"}


_SEPARATORS = {";", "&", "&&", "||", "|", ";;"}


def _parse(tokens: list[str], pos: int = 0, stop: tuple[str, ...] = ()) -> tuple[list, int]:
    """Parse a command list into nodes: ('cmd', words, background, redirect) / ('while', cond, body) /
    ('for', count, body) / ('func', name, body) / ('group', body)."""
    nodes: list = []
    while pos < len(tokens):
        tok = tokens[pos]
        if tok in stop:
            return nodes, pos
        if tok in _SEPARATORS:
            if tok == "&" and nodes and nodes[-1][0] == "cmd":
                nodes[-1] = ("cmd", nodes[-1][1], True, nodes[-1][3])
            if tok in ("||", "|"):
                # `a || b` / `a | b`: keep a, skip b (b rarely changes the lifecycle).
                pos += 1
                _, pos = _parse_command(tokens, pos)
                continue
            pos += 1
            continue
        if tok in ("while", "until"):
            cond, pos = _parse(tokens, pos + 1, ("do",))
            body, pos = _parse(tokens, pos + 1, ("done",))
            nodes.append(("while", cond, body, tok))
            pos += 1
            continue
        if tok == "for":
            end = tokens.index("do", pos) if "do" in tokens[pos:] else len(tokens)
            words = [w for w in tokens[pos + 1:end] if w not in (";",)]
            if len(words) < 2 or words[1] != "in" or any("$" in w for w in words[2:]):
                raise _Unknown("a for loop over computed values")
            body, pos = _parse(tokens, end + 1, ("done",))
            nodes.append(("for", len(words) - 2, body))
            pos += 1
            continue
        if tok in ("if", "case", "select"):
            raise _Unknown(f"an '{tok}' statement")
        if tok == "{":
            body, pos = _parse(tokens, pos + 1, ("}",))
            nodes.append(("group", body))
            pos += 1
            continue
        if tok == "(":
            body, pos = _parse(tokens, pos + 1, (")",))
            nodes.append(("group", body))
            pos += 1
            continue
        if pos + 2 < len(tokens) and tokens[pos + 1] == "(" and tokens[pos + 2] == ")":
            name = tok
            pos += 3
            if pos < len(tokens) and tokens[pos] == "{":
                body, pos = _parse(tokens, pos + 1, ("}",))
                nodes.append(("func", name, body))
                pos += 1
                continue
            raise _Unknown("a function without braces")
        node, end = _parse_command(tokens, pos)
        if end == pos:
            raise _Unknown(f"'{tok}' out of place")
        nodes.append(node)
        pos = end
    return nodes, pos


def _parse_command(tokens: list[str], pos: int) -> tuple[tuple, int]:
    words: list[str] = []
    redirect = None
    while pos < len(tokens) and tokens[pos] not in _SEPARATORS and tokens[pos] not in (")", "}", "do", "done"):
        tok = tokens[pos]
        if tok in (">", ">>", "<", ">&", "<&", ">|"):
            target = tokens[pos + 1] if pos + 1 < len(tokens) else ""
            if tok in (">", ">>", ">|") and words and words[-1].isdigit():
                words.pop()   # 2>/dev/null: stderr redirect, stdout unchanged
                pos += 2
                continue
            if tok in (">", ">>", ">|"):
                redirect = target
            pos += 2
            continue
        words.append(tok)
        pos += 1
    return ("cmd", words, False, redirect), pos


def _sleep_seconds(words: list[str]) -> float:
    if len(words) < 2:
        raise _Unknown("sleep without a duration")
    total = 0.0
    for arg in words[1:]:
        if arg in ("infinity", "inf"):
            return math.inf
        match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd]?)", arg)
        if not match:
            raise _Unknown(f"sleep {arg}")
        total += float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return total


def _run_nodes(nodes: list, state: _Script) -> None:
    """Advance ``state`` through the nodes; stops at exit or at a never-ending part."""
    for node in nodes:
        if state.exit_code is not None or state.forever:
            return
        kind = node[0]
        if kind == "func":
            state.functions[node[1]] = node[2]
        elif kind == "group":
            _run_nodes(node[1], state)
        elif kind == "for":
            for _ in range(node[1]):
                _run_nodes(node[2], state)
        elif kind == "while":
            _run_while(node, state)
        else:
            _run_command(node, state)


def _run_while(node: tuple, state: _Script) -> None:
    _, cond, body, keyword = node
    cond_words = [w for c in cond if c[0] == "cmd" for w in c[1]]
    infinite = cond_words in (["true"], [":"], ["[", "1", "]"], ["/bin/true"]) and keyword == "while"
    if not infinite:
        raise _Unknown(f"a loop with condition '{' '.join(cond_words)}'")
    start = state.t
    probe = _Script(t=start, files=dict(state.files), trap=state.trap, trap_set=state.trap_set,
                    trapped=set(state.trapped), functions=state.functions)
    _run_nodes(body, probe)
    if probe.exit_code is not None or probe.forever:
        # The body ends the script (or never returns): it runs once.
        state.t = probe.t
        state.exit_code, state.forever, state.status = probe.exit_code, probe.forever, probe.status
        state.segments.extend(probe.segments)
        state.files.update(probe.files)
        state.stdout.extend(probe.stdout)
        state.trap, state.trap_set, state.trapped = probe.trap, probe.trap_set, probe.trapped
        return
    period = probe.t - start
    state.forever = True
    state.files.update({f: t for f, t in probe.files.items() if f not in state.files})
    if period <= 0:
        state.segments.append(Segment(start, math.inf, True))
        return
    state.loop_period = period
    state.loop_segments = list(probe.segments) or [Segment(start, start + period, True)]
    state.loop_stdout = list(probe.stdout)
    state.trap, state.trap_set, state.trapped = probe.trap, probe.trap_set, probe.trapped


def _run_command(node: tuple, state: _Script) -> None:
    _, words, background, redirect = node
    if not words:
        return
    name = words[0].rsplit("/", 1)[-1]
    if name == "exec":
        words = words[1:]
        if not words:
            return
        name = words[0].rsplit("/", 1)[-1]
    if name == "trap":
        if len(words) < 3:
            return
        handler = words[1]
        signals = {images.signal_name(w) for w in words[2:]} - {None}
        if handler in ("-", ""):
            state.trapped -= signals        # default action / ignored: no handler either way
        else:
            state.trap = handler
            state.trapped |= signals
        state.trap_set = bool(state.trapped)
        return
    if name == "sleep":
        seconds = _sleep_seconds(words)
        if background:
            state.background_sleep = seconds
            return
        _advance(state, seconds, foreground=True)
        return
    if name == "wait":
        if state.background_sleep is not None:
            _advance(state, state.background_sleep, foreground=False)
            state.background_sleep = None
        return
    if name == "exit":
        code = words[1] if len(words) > 1 else str(state.status)
        state.exit_code = int(code) if code.lstrip("-").isdigit() else 1
        return
    if name == "tail" and any(flag in words for flag in ("-f", "-F", "--follow", "-f1")):
        _advance(state, math.inf, foreground=True)
        return
    if name == "false":
        state.status = 1
        return
    if images.for_program(name) is not None:
        # Not as the script's last command (see _program_at_end): the shell stays PID 1.
        raise _Unknown(f"the program '{name}' started from a script before other commands")
    if name not in _INSTANT_COMMANDS:
        raise _Unknown(f"the command '{words[0]}'")
    state.status = 0
    if name == "touch":
        for path in words[1:]:
            if not path.startswith("-"):
                state.files.setdefault(path, state.t)
                state.first_marker = state.t if state.first_marker is None else state.first_marker
    if name == "rm":
        state.removed.extend(p for p in words[1:] if not p.startswith("-"))
    if name in ("echo", "printf"):
        if redirect:
            if redirect not in ("/dev/null", "/dev/stderr"):
                state.files.setdefault(redirect, state.t)
        else:
            text = " ".join(w for w in words[1:] if not (name == "echo" and w in ("-n", "-e")))
            state.stdout.append((state.t, text))


def _advance(state: _Script, seconds: float, *, foreground: bool) -> None:
    if math.isinf(seconds):
        state.segments.append(Segment(state.t, math.inf, foreground))
        state.forever = True
        return
    if seconds > 0:
        state.segments.append(Segment(state.t, state.t + seconds, foreground))
    state.t += seconds
    state.status = 0


def _read_handler(state: _Script) -> tuple[float | None, int, tuple[str, ...]]:
    """The trap handler's duration, exit code and the files it removes."""
    handler = state.trap or ""
    if handler in state.functions:
        nodes = state.functions[handler]
    else:
        nodes, _ = _parse(_tokens(handler))
    sub = _Script(functions=state.functions)
    _run_nodes(nodes, sub)
    if sub.forever:
        return None, 0, tuple(sub.removed)
    if sub.exit_code is None:
        # The handler returns and the interrupted script goes on; the simulator treats the
        # process as ending there with the shell's status for a signal (143).
        return sub.t, 143, tuple(sub.removed)
    return sub.t, sub.exit_code, tuple(sub.removed)


def read_script(script: str) -> ProcessModel:
    """Model a ``sh -c`` script; raises _Unknown for constructs the reader does not model."""
    nodes, _ = _parse(_tokens(script))
    state = _Script()
    _run_nodes(nodes, state)
    if state.exit_code is None and not state.forever:
        state.exit_code = state.status
    runs = (Run(None),) if state.forever else (Run(max(state.t, timing.INSTANT_PROCESS_S), state.exit_code or 0),)
    handles = state.trap_set
    after, code, removed = (0.0, 0, ())
    if handles:
        after, code, removed = _read_handler(state)
    looping = state.forever and state.loop_period is not None
    what = "loops forever" if looping else "runs forever" if state.forever else f"exits {state.exit_code} after {runs[0].seconds:g} s"
    trapped = frozenset(state.trapped)
    sig = (f"handles {', '.join(sorted(trapped))} (trap)" if handles
           else "ignores SIGTERM (PID 1 without a handler)")
    return ProcessModel(
        kind="shell-script",
        description=f"shell script: {what}, {sig}",
        runs=runs,
        start_delay=state.first_marker or 0.0,
        handles_sigterm=handles,
        sigterm_exit_after=after,
        sigterm_exit_code=code,
        trapped=trapped,
        segments=tuple(state.segments),
        loop_segments=tuple(state.loop_segments),
        loop_period=state.loop_period,
        listens=False,
        files=dict(state.files),
        files_removed_by_trap=removed,
        stdout=tuple(state.stdout),
        loop_stdout=tuple(state.loop_stdout),
    )


# -- images ----------------------------------------------------------------------------------
_SHELLS = {"sh", "bash", "ash", "dash", "zsh"}


def image_name(image: str) -> tuple[str, str]:
    """``ghcr.io/x/y:2.1@sha256:..`` -> ("x/y", "2.1"); registry host and ``library/`` dropped."""
    return images.repository(image)


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
    reactions = dict(row.on_signal)
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
    return _from_row(row, images.repository(image)[1], list(args or []), env, how="")


def _program_at_end(script: str) -> tuple[ImageRow, list[str], float] | None:
    """A script that ends by running a known program (``...; exec nginx -g 'daemon off;'``):
    the shell replaces itself with it (``exec``, or the last command of ``sh -c`` without
    traps: busybox ash's EV_EXIT), so that program is PID 1. Returns its row, its arguments
    and how long the script before it takes."""
    try:
        tokens = _tokens(script)
    except _Unknown:
        return None
    while tokens and tokens[-1] in (";", "&&"):
        tokens.pop()
    if not tokens or "trap" in tokens:
        return None
    cut = max((i for i, tok in enumerate(tokens) if tok in (";", "&&")), default=-1)
    words = tokens[cut + 1:]
    if any(tok in _SEPARATORS or tok in ("(", ")") for tok in words):
        return None
    if words and words[0] == "exec":
        words = words[1:]
    row = images.for_program(words[0]) if words else None
    if row is None:
        return None
    state = _Script()
    try:
        nodes, _ = _parse(tokens[:cut + 1])
        _run_nodes(nodes, state)
    except _Unknown:
        return None
    if state.forever or state.exit_code is not None:
        return None
    return row, words[1:], state.t


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
    tag = images.repository(image)[1]
    row = images.for_program(program)
    if row is not None and not (program in _SHELLS):
        model = _from_row(row, tag, argv[1:], env, how=f", started as {program}")
        if model is not None:
            return model, []
    try:
        if program in _SHELLS and len(argv) >= 3 and argv[1] in ("-c", "-ec", "-xc", "-exc"):
            found = _program_at_end(argv[2])
            if found is not None:
                row, words, before = found
                model = _from_row(row, tag, words, env, how=f", started by a {program} -c script")
                if model is not None:
                    return replace(model, start_delay=model.start_delay + before), []
            return read_script(argv[2]), []
        if program in ("sleep", "tail", "echo", "true", "false", "exit"):
            model = read_script(shlex.join(argv))
            if program == "sleep":
                model = replace(model, kind="sleep", description=f"sleep as PID 1: {model.description.split(': ', 1)[1]}")
            return model, []
    except _Unknown as why:
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
        except _Unknown:
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
            argv = _tokens(argv[2])
            program = argv[0].rsplit("/", 1)[-1] if argv else ""
        if program == "true" or program == ":":
            return ProbeModel("success")
        if program == "false":
            return ProbeModel("failure")
        if program == "exit":
            return ProbeModel("success" if argv[1:2] in (["0"], []) else "failure")
        if program == "sleep":
            try:
                return ProbeModel("timeout", exec_seconds=_sleep_seconds(argv))
            except _Unknown:
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
        model = _apply_block(model, block, spec)
        if _LIFECYCLE_FIELDS & set(block):
            warnings = []      # the block says what the program does
    lifecycle = spec.get("lifecycle") or {}
    hooks = (block or {}).get("hooks") or {}
    post_start = _hook_from_block(hooks["postStart"]) if "postStart" in hooks else _hook_model(lifecycle.get("postStart"), model)
    pre_stop = _hook_from_block(hooks["preStop"]) if "preStop" in hooks else _hook_model(lifecycle.get("preStop"), model)
    probes = {}
    block_probes = (block or {}).get("probes") or {}
    for ptype in PROBE_TYPES:
        probe = spec.get(f"{ptype}Probe")
        if not probe:
            continue
        if ptype in block_probes:
            probes[ptype] = _probe_from_block(block_probes[ptype], f"behaviour.{spec.get('name')}.probes.{ptype}.result", "<behaviour>")
        else:
            probes[ptype] = _probe_model(probe, model)
        if probes[ptype].kind == "listening" and probes[ptype].value < 0:
            probes[ptype] = _resolve_named_port(probe, spec, probes[ptype])
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


# What a process kind does with SIGTERM when the block does not say: (handles, exit after).
_KIND_SIGTERM = {
    "e2e-helper": (True, 0.0), "shell-script": (False, 0.0), "sleep": (False, 0.0),
    "agnhost-pause": (True, 0.0), "pause": (True, 0.0), "http-server": (True, timing.SERVER_SHUTDOWN_S),
    "program": (True, timing.SERVER_SHUTDOWN_S),
}


def _apply_block(model: ProcessModel, block: dict, spec: dict) -> ProcessModel:
    """The inferred model with the block's fields on top. A block naming another process
    kind than the one inferred starts from that kind's defaults; the script's shape (its
    foreground stretches, files, output) is kept when the container runs a script."""
    kind = block.get("process", model.kind if model.kind != "unknown" else "shell-script")
    same = kind == model.kind
    script = model.kind in ("shell-script", "sleep")
    handles_default, after_default = _KIND_SIGTERM[kind] if not same else (model.handles_sigterm, model.sigterm_exit_after)
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
    code = int(block.get("sigterm_exit_code", model.sigterm_exit_code if same else 0))
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
