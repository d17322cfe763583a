"""The simulator's reader of shell scripts (``sh -c`` text, exec hooks and probes).

It does not run anything. It parses the script with a real shell grammar (tree-sitter's
bash grammar, MIT, from PyPI; imported only when a script is read, so ``import labkit``
stays light) and walks the syntax tree in virtual time, recording what the kubelet can see
(docs/images.md): ``sleep N``, ``exit N``, ``echo``/``printf`` (to the log or a file),
``touch``/``rm``, ``while true``/``until false`` loops, ``for`` loops over words (with the
loop variable expanded), ``&&``/``||`` by exit status, ``trap '...' TERM`` and functions used
as handlers, ``tail -F``, ``cmd &`` and ``wait`` (``sleep N & wait $!``, the upstream e2e
helper), variables set in the script. A construct it does not model (``if``, ``case``,
``$(...)``, a loop on another condition, an unknown program) raises
:class:`UnreadableScript`; the caller falls back to a default and warns, and the warning is
shown where the manifest was applied (the notebook, ``sim run``).

Simplifications, all on the side of what the kubelet cannot tell apart: ``[``/``test``
succeed; the members of a pipeline run one after another and only the last one's output
reaches the log; a variable nobody set expands to the container's ``env`` value or to "".

One module (~600 lines) on purpose: one walk over one syntax tree, each node kind's case
beside the others, sharing the walk's state (variables, traps, the clock).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field

from ..images import signal_name
from . import images, timing
from .images import ImageRow
from .process import ProcessModel, Run, Segment

# Commands that return at once and do not change what the simulator cares about.
_INSTANT_COMMANDS = frozenset({
    ":", "true", "cat", "date", "ls", "mkdir", "cp", "mv", "ln", "chmod", "chown", "export",
    "set", "cd", "env", "printenv", "hostname", "id", "whoami", "sync", "uname", "test", "[",
    "[[", "touch", "rm", "echo", "printf", "sed", "grep", "awk", "head", "wc", "tee", "nslookup",
    "local", "readonly", "unset", "shift", "return",
})


class UnreadableScript(Exception):
    """The script does something the reader does not model."""


# --- parsing: tree-sitter's syntax tree to a small tree of tuples ------------------------------
#
# A word is a tuple of parts: a literal str, or ("var", name, quoted). Statements:
#   ("cmd", words, background, assigns)      ("assign", [(name, word)])
#   ("and"|"or", left, right)                ("not", statement)
#   ("pipe", [statements])                   ("redir", statement, target word | None)
#   ("while", cond, body, "while"|"until")   ("for", name, [words] | None, body)
#   ("func", name, body)                     ("group", body)


@functools.lru_cache(maxsize=1)
def _parser():
    import tree_sitter
    import tree_sitter_bash

    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language()))


@functools.lru_cache(maxsize=512)
def parse(script: str) -> tuple:
    """The script's statements; raises UnreadableScript on a syntax error."""
    source = script.encode()
    root = _parser().parse(source).root_node
    if root.has_error:
        bad = _first_error(root)
        where = source[bad.start_byte:bad.end_byte].decode(errors="replace")[:30] if bad else ""
        raise UnreadableScript(f"a shell syntax error near {where!r}" if where else "a shell syntax error")
    return tuple(_statements(root, source))


def _first_error(node):
    if node.type == "ERROR" or node.is_missing:
        return node
    for child in node.children:
        if child.has_error or child.is_missing:
            return _first_error(child)
    return None


def _statements(node, src: bytes) -> list:
    """The statements among ``node``'s children; a ``&`` after one puts it in the background."""
    out: list = []
    for child in node.children:
        if child.type == "&":
            if not out or out[-1][0] != "cmd":
                raise UnreadableScript("a compound command run in the background (&)")
            out[-1] = ("cmd", out[-1][1], True, out[-1][3])
            continue
        if not child.is_named or child.type == "comment":
            continue
        out.append(_statement(child, src))
    return out


def _statement(node, src: bytes) -> tuple:
    kind = node.type
    if kind == "command":
        words, assigns = [], []
        for i, child in enumerate(node.children):
            name = node.field_name_for_child(i)
            if child.type == "variable_assignment":
                assigns.append(_assignment(child, src))
            elif name == "name":
                words.append(_word(child.named_children[0] if child.named_children else child, src))
            elif name == "argument":
                words.append(_word(child, src))
            elif child.type in ("file_redirect", "herestring_redirect"):
                continue
        return ("cmd", words, False, assigns)
    if kind == "variable_assignment":
        return ("assign", [_assignment(node, src)])
    if kind == "declaration_command":
        return ("assign", [_assignment(c, src) for c in node.named_children if c.type == "variable_assignment"])
    if kind == "unset_command":
        return ("cmd", [("unset",)], False, [])
    if kind == "test_command":
        return ("cmd", [("test",)], False, [])
    if kind == "redirected_statement":
        body = node.child_by_field_name("body")
        target = None
        for child in node.children:
            if child.type == "heredoc_redirect":
                raise UnreadableScript("a here-document")
            if child.type != "file_redirect":
                continue
            descriptor = child.child_by_field_name("descriptor")
            operator = next(c.type for c in child.children if not c.is_named)
            dest = child.child_by_field_name("destination")
            if operator in (">", ">>", ">|") and (descriptor is None or src[descriptor.start_byte:descriptor.end_byte] == b"1"):
                target = _word(dest, src)
        inner = _statement(body, src) if body is not None else ("cmd", [], False, [])
        return ("redir", inner, target)
    if kind == "list":
        left, op, right = node.children[0], node.children[1], node.children[2]
        return ("and" if op.type == "&&" else "or", _statement(left, src), _statement(right, src))
    if kind == "pipeline":
        return ("pipe", [_statement(c, src) for c in node.named_children])
    if kind == "negated_command":
        return ("not", _statement(node.named_children[0], src))
    if kind == "while_statement":
        keyword = node.children[0].type
        cond = [_statement(c, src) for i, c in enumerate(node.children)
                if node.field_name_for_child(i) == "condition" and c.is_named]
        return ("while", cond, _statements(node.child_by_field_name("body"), src), keyword)
    if kind == "for_statement":
        values = [_word(c, src) for i, c in enumerate(node.children) if node.field_name_for_child(i) == "value"]
        has_in = any(c.type == "in" for c in node.children)
        name = _text(node.child_by_field_name("variable"), src)
        return ("for", name, values if has_in else None, _statements(node.child_by_field_name("body"), src))
    if kind == "function_definition":
        return ("func", _text(node.child_by_field_name("name"), src),
                _statements(node.child_by_field_name("body"), src))
    if kind in ("compound_statement", "subshell", "do_group"):
        return ("group", _statements(node, src))
    described = {"if_statement": "an 'if' statement", "case_statement": "a 'case' statement",
                 "c_style_for_statement": "a C-style for loop", "command_substitution": "a command substitution $(...)",
                 "arithmetic_expansion": "an arithmetic expansion $((...))"}
    raise UnreadableScript(described.get(kind, f"a shell construct ({kind.replace('_', ' ')})"))


def _text(node, src: bytes) -> str:
    return src[node.start_byte:node.end_byte].decode()


def _assignment(node, src: bytes) -> tuple[str, tuple]:
    value = node.child_by_field_name("value")
    return _text(node.child_by_field_name("name"), src), (_word(value, src) if value is not None else ())


_UNESCAPE = re.compile(r"\\(.)", re.S)
_UNESCAPE_DQ = re.compile(r'\\([$`"\\])')


def _word(node, src: bytes) -> tuple:
    """One shell word as literal parts and variable references."""
    kind = node.type
    if kind in ("word", "number", "command_name", "special_variable_name", "variable_name", "test_operator"):
        return (_UNESCAPE.sub(r"\1", _text(node, src)),)
    if kind == "raw_string":
        return (_text(node, src)[1:-1],)
    if kind == "ansi_c_string":
        return (_text(node, src)[2:-1].encode().decode("unicode_escape"),)
    if kind in ("simple_expansion", "expansion"):
        return (_expansion(node, src, quoted=False),)
    if kind == "concatenation":
        return tuple(part for child in node.named_children for part in _word(child, src))
    if kind == "string":
        parts: list = []
        pos = node.start_byte + 1
        for child in node.named_children:
            if child.type == "string_content":
                parts.append(_UNESCAPE_DQ.sub(r"\1", src[pos:child.end_byte].decode()))
                pos = child.end_byte
            elif child.type in ("simple_expansion", "expansion"):
                dollar = src.index(b"$", child.start_byte)   # the node may start at a blank before it
                parts.append(_UNESCAPE_DQ.sub(r"\1", src[pos:dollar].decode()))
                parts.append(_expansion(child, src, quoted=True))
                pos = child.end_byte
            else:
                _statement(child, src)      # raises for $(...) and the like
        parts.append(_UNESCAPE_DQ.sub(r"\1", src[pos:node.end_byte - 1].decode()))
        return tuple(p for p in parts if p != "")
    _statement(node, src)
    raise UnreadableScript(f"a shell word ({kind})")


def _expansion(node, src: bytes, *, quoted: bool) -> tuple:
    names = [c for c in node.named_children if c.type in ("variable_name", "special_variable_name")]
    if len(names) != 1 or len(node.named_children) != 1:
        raise UnreadableScript(f"the expansion {_text(node, src).strip()}")
    return ("var", _text(names[0], src), quoted)


# --- interpreting in virtual time --------------------------------------------------------------


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
    trap: str | None = None             # handler text or function name
    trap_set: bool = False
    trapped: set[str] = field(default_factory=set)   # signals the trap handles (SIGTERM, SIGQUIT, ...)
    functions: dict[str, list] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    background_until: float | None = None   # when the last background job ends (inf: never)
    first_marker: float | None = None   # when the first file appears (e2e helper's "Started")
    stdout_to: str | None = None        # a redirect of the statement being run (None: the log)

    def fork(self) -> "_Script":
        """A copy for trying a loop body once (same time, files, trap, variables)."""
        return _Script(t=self.t, files=dict(self.files), trap=self.trap, trap_set=self.trap_set,
                       trapped=set(self.trapped), functions=self.functions, variables=dict(self.variables),
                       background_until=self.background_until, stdout_to=self.stdout_to)


def _expand(word: tuple, state: _Script) -> list[str]:
    """A word's fields after expansion (an unquoted variable is split on blanks)."""
    text, split = "", False
    for part in word:
        if isinstance(part, str):
            text += part
            continue
        _, name, quoted = part
        value = str(state.status) if name == "?" else state.variables.get(name, "")
        text += value
        split = split or not quoted
    if split:
        return text.split()
    return [text]


def _words(words: list, state: _Script) -> list[str]:
    return [field_ for word in words for field_ in _expand(word, state)]


def _run_nodes(nodes, state: _Script) -> None:
    """Advance ``state`` through the statements; stops at exit or at a never-ending part."""
    for node in nodes:
        if state.exit_code is not None or state.forever:
            return
        _run_node(node, state)


def _run_node(node: tuple, state: _Script) -> None:
    kind = node[0]
    if kind == "func":
        state.functions[node[1]] = node[2]
    elif kind == "group":
        _run_nodes(node[1], state)
    elif kind == "assign":
        for name, word in node[1]:
            state.variables[name] = " ".join(_expand(word, state)) if word else ""
        state.status = 0
    elif kind in ("and", "or"):
        _run_node(node[1], state)
        if state.exit_code is None and not state.forever and (state.status == 0) == (kind == "and"):
            _run_node(node[2], state)
    elif kind == "not":
        _run_node(node[1], state)
        state.status = 0 if state.status else 1
    elif kind == "pipe":
        to = state.stdout_to
        for i, member in enumerate(node[1]):
            state.stdout_to = to if i == len(node[1]) - 1 else "/dev/null"
            _run_node(member, state)
        state.stdout_to = to
    elif kind == "redir":
        to = state.stdout_to
        if node[2] is not None:
            state.stdout_to = " ".join(_expand(node[2], state))
        _run_node(node[1], state)
        state.stdout_to = to
    elif kind == "for":
        _, name, values, body = node
        for value in _words(values or [], state):
            state.variables[name] = value
            _run_nodes(body, state)
            if state.exit_code is not None or state.forever:
                return
    elif kind == "while":
        _run_while(node, state)
    else:
        _run_command(node, state)


_ALWAYS_TRUE = (["true"], [":"], ["/bin/true"], ["test"])


def _run_while(node: tuple, state: _Script) -> None:
    _, cond, body, keyword = node
    if len(cond) != 1 or cond[0][0] != "cmd":
        raise UnreadableScript(f"a '{keyword}' loop on a compound condition")
    cond_words = _words(cond[0][1], state)
    infinite = (keyword == "while" and cond_words in _ALWAYS_TRUE) or \
               (keyword == "until" and cond_words in (["false"], ["/bin/false"]))
    if not infinite:
        raise UnreadableScript(f"a loop with condition '{' '.join(cond_words)}'")
    start = state.t
    probe = state.fork()
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
    _, raw_words, background, _assigns = node
    words = _words(raw_words, state)
    if not words:
        return
    name = words[0].rsplit("/", 1)[-1]
    if name == "exec":
        words = words[1:]
        if not words:
            return
        name = words[0].rsplit("/", 1)[-1]
    if name in state.functions and not background:
        _run_nodes(state.functions[name], state)
        return
    if name == "trap":
        if len(words) < 3:
            return
        handler = words[1]
        signals = {signal_name(w) for w in words[2:]} - {None}
        if handler in ("-", ""):
            state.trapped -= signals        # default action / ignored: no handler either way
        else:
            state.trap = handler
            state.trapped |= signals
        state.trap_set = bool(state.trapped)
        return
    if background:
        _start_background(name, words, state)
        return
    if name == "sleep":
        _advance(state, sleep_seconds(words), foreground=True)
        return
    if name == "wait":
        if state.background_until is not None:
            _advance(state, max(0.0, state.background_until - state.t), foreground=False)
            state.background_until = None
        state.status = 0
        return
    if name == "exit":
        code = words[1] if len(words) > 1 else str(state.status)
        state.exit_code = int(code) % 256 if code.lstrip("-").isdigit() else 2
        return
    if name == "tail" and _follows(words):
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
        args = words[1:]
        if name == "echo":
            while args and args[0] in ("-n", "-e", "-ne", "-en"):
                args = args[1:]
        text = " ".join(args)
        if state.stdout_to is None:
            state.stdout.append((state.t, text))
        elif state.stdout_to not in ("/dev/null", "/dev/stderr", "/dev/stdout"):
            state.files.setdefault(state.stdout_to, state.t)
        elif state.stdout_to in ("/dev/stderr", "/dev/stdout"):
            state.stdout.append((state.t, text))


def _follows(words: list[str]) -> bool:
    return any(flag in words for flag in ("-f", "-F", "--follow", "-f1")) or \
        any(w.startswith("-") and not w.startswith("--") and ("f" in w or "F" in w) for w in words[1:])


def _start_background(name: str, words: list[str], state: _Script) -> None:
    """``cmd &``: the script goes on at once; ``wait`` waits for the job to end."""
    if name == "sleep":
        seconds = sleep_seconds(words)
    elif name == "tail" and _follows(words):
        seconds = math.inf
    elif name in _INSTANT_COMMANDS or name in ("false",):
        seconds = 0.0
    else:
        raise UnreadableScript(f"the command '{words[0]}' in the background")
    end = state.t + seconds
    state.background_until = end if state.background_until is None else max(end, state.background_until)
    state.status = 0


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
    nodes = state.functions[handler] if handler in state.functions else parse(handler)
    sub = _Script(functions=state.functions, variables=dict(state.variables))
    _run_nodes(nodes, sub)
    if sub.forever:
        return None, 0, tuple(sub.removed)
    if sub.exit_code is None:
        # The handler returns and the interrupted script goes on; the simulator treats the
        # process as ending there with the shell's status for a signal (143).
        return sub.t, 143, tuple(sub.removed)
    return sub.t, sub.exit_code, tuple(sub.removed)


def read_script(script: str, env: dict[str, str] | None = None) -> ProcessModel:
    """Model a ``sh -c`` script; raises UnreadableScript for constructs the reader does not model.

    >>> read_script("echo app start; sleep 3; echo app done").stdout
    ((0.0, 'app start'), (3.0, 'app done'))
    """
    nodes = parse(script)
    state = _Script(variables=dict(env or {}))
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


def first_command(script: str) -> list[str]:
    """The words of the script's first simple command (an exec probe's ``sh -c 'cat /tmp/x'``);
    [] when it has none or cannot be read."""
    try:
        nodes = list(parse(script))
    except UnreadableScript:
        return []
    while nodes:
        node = nodes.pop(0)
        if node[0] == "cmd":
            try:
                return _words(node[1], _Script())
            except UnreadableScript:
                return []
        if node[0] in ("and", "or", "not", "redir"):
            nodes.insert(0, node[1])
        elif node[0] in ("group", "pipe"):
            nodes[:0] = list(node[1])
    return []


_KINDS = {"cmd", "assign", "and", "or", "not", "pipe", "redir", "while", "for", "func", "group"}


def _walk(node: tuple):
    """Every statement in ``node``, itself included."""
    yield node
    for part in node[1:]:
        for child in (part if isinstance(part, list) else [part]):
            if isinstance(child, tuple) and len(child) > 1 and child[0] in _KINDS:
                yield from _walk(child)


def _mentions_trap(nodes) -> bool:
    return any(n[0] == "cmd" and len(n) == 4 and n[1][:1] == [("trap",)] for top in nodes for n in _walk(top))


def program_at_end(script: str) -> tuple[ImageRow, list[str], float] | None:
    """A script that ends by running a known program (``...; exec nginx -g 'daemon off;'``):
    the shell replaces itself with it (``exec``, or the last command of ``sh -c`` without
    traps: busybox ash's EV_EXIT), so that program is PID 1. Returns its row, its arguments
    and how long the script before it takes."""
    try:
        nodes = list(parse(script))
    except UnreadableScript:
        return None
    if not nodes or _mentions_trap(nodes):
        return None
    last = nodes.pop()
    if last[0] == "and":
        nodes.append(last[1])
        last = last[2]
    if last[0] != "cmd" or last[2]:
        return None
    state = _Script()
    try:
        words = _words(last[1], state)
    except UnreadableScript:
        return None
    if words and words[0] == "exec":
        words = words[1:]
    row = images.for_program(words[0].rsplit("/", 1)[-1]) if words else None
    if row is None:
        return None
    try:
        _run_nodes(nodes, state)
    except UnreadableScript:
        return None
    if state.forever or state.exit_code is not None:
        return None
    return row, words[1:], state.t
