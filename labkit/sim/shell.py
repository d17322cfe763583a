"""The simulator's reader of shell scripts (``sh -c`` text, exec hooks and probes).

It does not run anything: it walks the script in virtual time and records what the kubelet
can see (docs/images.md): ``sleep N``, ``exit N``, ``echo``, ``touch``, ``while true; do ...;
done``, ``trap '...' TERM``, ``tail -F``, ``sleep N & wait $!`` (the upstream e2e helper),
functions used as trap handlers. A construct it does not model raises :class:`UnreadableScript`,
and the caller falls back to a default with a warning.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass, field

from . import images, timing
from .images import ImageRow
from .process import ProcessModel, Run, Segment

# Commands that return at once and do not change what the simulator cares about.
_INSTANT_COMMANDS = frozenset({
    ":", "true", "cat", "date", "ls", "mkdir", "cp", "mv", "ln", "chmod", "chown", "export",
    "set", "cd", "env", "printenv", "hostname", "id", "whoami", "sync", "uname", "test", "[",
    "[[", "touch", "rm", "echo", "printf", "sed", "grep", "awk", "head", "wc", "tee", "nslookup",
})


class UnreadableScript(Exception):
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


def shell_tokens(script: str) -> list[str]:
    lexer = shlex.shlex(script.replace("\n", " ; "), posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        raw = list(lexer)
    except ValueError as exc:
        raise UnreadableScript(f"cannot parse the shell text ({exc})") from None
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
                raise UnreadableScript("a for loop over computed values")
            body, pos = _parse(tokens, end + 1, ("done",))
            nodes.append(("for", len(words) - 2, body))
            pos += 1
            continue
        if tok in ("if", "case", "select"):
            raise UnreadableScript(f"an '{tok}' statement")
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
            raise UnreadableScript("a function without braces")
        node, end = _parse_command(tokens, pos)
        if end == pos:
            raise UnreadableScript(f"'{tok}' out of place")
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


def sleep_seconds(words: list[str]) -> float:
    if len(words) < 2:
        raise UnreadableScript("sleep without a duration")
    total = 0.0
    for arg in words[1:]:
        if arg in ("infinity", "inf"):
            return math.inf
        match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd]?)", arg)
        if not match:
            raise UnreadableScript(f"sleep {arg}")
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
        raise UnreadableScript(f"a loop with condition '{' '.join(cond_words)}'")
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
        seconds = sleep_seconds(words)
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
        # Not as the script's last command (see program_at_end): the shell stays PID 1.
        raise UnreadableScript(f"the program '{name}' started from a script before other commands")
    if name not in _INSTANT_COMMANDS:
        raise UnreadableScript(f"the command '{words[0]}'")
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
        nodes, _ = _parse(shell_tokens(handler))
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
    """Model a ``sh -c`` script; raises UnreadableScript for constructs the reader does not model."""
    nodes, _ = _parse(shell_tokens(script))
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


def program_at_end(script: str) -> tuple[ImageRow, list[str], float] | None:
    """A script that ends by running a known program (``...; exec nginx -g 'daemon off;'``):
    the shell replaces itself with it (``exec``, or the last command of ``sh -c`` without
    traps: busybox ash's EV_EXIT), so that program is PID 1. Returns its row, its arguments
    and how long the script before it takes."""
    try:
        tokens = shell_tokens(script)
    except UnreadableScript:
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
    except UnreadableScript:
        return None
    if state.forever or state.exit_code is not None:
        return None
    return row, words[1:], state.t
