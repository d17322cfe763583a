"""The table of images the simulator knows (``labkit/data/images.yaml``), read once when first used.

An image reference names a row through its repository path: the registry host, a
``library/`` prefix, the tag and the digest do not matter (``docker.io/library/nginx:1.27``,
``mirror.gcr.io/library/nginx`` and ``nginx@sha256:...`` are one row). See
``docs/images.md`` for what a row says and how the simulator uses it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput

DATA = "data/images.yaml"
DEFAULT_STOP_SIGNAL = "SIGTERM"   # containerd's and CRI-O's default when the image declares none

# Linux signal numbers (x86/arm; signal(7)), for exit codes 128 + n and the default actions.
SIGNAL_NUMBERS = {
    "SIGHUP": 1, "SIGINT": 2, "SIGQUIT": 3, "SIGILL": 4, "SIGTRAP": 5, "SIGABRT": 6, "SIGIOT": 6, "SIGBUS": 7,
    "SIGFPE": 8, "SIGKILL": 9, "SIGUSR1": 10, "SIGSEGV": 11, "SIGUSR2": 12, "SIGPIPE": 13, "SIGALRM": 14,
    "SIGTERM": 15, "SIGSTKFLT": 16, "SIGCHLD": 17, "SIGCLD": 17, "SIGCONT": 18, "SIGSTOP": 19, "SIGTSTP": 20,
    "SIGTTIN": 21, "SIGTTOU": 22, "SIGURG": 23, "SIGXCPU": 24, "SIGXFSZ": 25, "SIGVTALRM": 26, "SIGPROF": 27,
    "SIGWINCH": 28, "SIGIO": 29, "SIGPOLL": 29, "SIGPWR": 30, "SIGSYS": 31,
    # The real-time signals by the names Kubernetes' API uses (core.SIGRTMINPLUS1, ...).
    "SIGRTMIN": 34, **{f"SIGRTMINPLUS{i}": 34 + i for i in range(1, 16)},
    **{f"SIGRTMAXMINUS{i}": 64 - i for i in range(1, 15)}, "SIGRTMAX": 64,
}
# Signals whose default action is not to end the process (signal(7): Ign, Cont, Stop).
NON_TERMINATING = frozenset({"SIGCHLD", "SIGCLD", "SIGCONT", "SIGURG", "SIGWINCH", "SIGSTOP", "SIGTSTP", "SIGTTIN",
                             "SIGTTOU"})


def signal_name(value: Any) -> str | None:
    """``TERM``, ``sigterm``, ``15`` -> ``SIGTERM``; None when it is no signal labkit knows."""
    text = str(value).strip().upper()
    if text.isdigit():
        return next((name for name, number in SIGNAL_NUMBERS.items() if number == int(text)), None)
    name = text if text.startswith("SIG") else "SIG" + text
    return name if name in SIGNAL_NUMBERS else None


@dataclass(frozen=True)
class Reaction:
    """What a program does with one signal it handles: exits after ``exit_after`` s with
    ``exit_code``, or keeps running (``exit_after`` None)."""

    exit_after: float | None
    exit_code: int


@dataclass(frozen=True)
class ImageRow:
    row: str
    names: tuple[str, ...]
    programs: tuple[str, ...]
    stop_signal: str
    on_signal: dict[str, Reaction]
    ports: tuple[int, ...]
    exits_by_itself: tuple[float, int] | None         # (after_s, exit_code)
    port_flags: tuple[str, ...] = ()
    port_env: str | None = None
    ports_by_tag: dict[str, tuple[int, ...]] = field(default_factory=dict)
    exit_code_flags: dict[str, int] = field(default_factory=dict)
    subcommands: dict[str, dict] = field(default_factory=dict)
    subcommands_only: bool = False
    sources: dict[str, str] = field(default_factory=dict)


def _seconds(value: Any, where: str, prompt: float, instant: float) -> float | None:
    if value is None:
        return None
    if value == "prompt":
        return prompt
    if value == "instant":
        return instant
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise InvalidInput(f"expected seconds >= 0, 'prompt' or null, got {value!r}", source=DATA, field=where)
    return float(value)


def _reactions(on_signal: dict | None, where: str) -> dict[str, Reaction]:
    from . import timing

    result = {}
    for sig, what in (on_signal or {}).items():
        if signal_name(sig) != sig:
            raise InvalidInput(f"not a signal name: {sig!r}", source=DATA, field=where)
        after = _seconds(what.get("exit_after_s"), f"{where}.{sig}.exit_after_s",
                         timing.SERVER_SHUTDOWN_S, timing.INSTANT_PROCESS_S)
        result[sig] = Reaction(after, int(what.get("exit_code", 0)))
    return result


def _row(entry: dict, i: int) -> ImageRow:
    from . import timing

    where = f"images[{i}]"
    for key in ("row", "names", "stop_signal", "on_signal", "ports", "exits_by_itself", "sources"):
        if key not in entry:
            raise InvalidInput(f"missing {key!r}", source=DATA, field=where)
    if signal_name(entry["stop_signal"]) != entry["stop_signal"]:
        raise InvalidInput(f"not a signal name: {entry['stop_signal']!r}", source=DATA, field=f"{where}.stop_signal")
    on_signal = _reactions(entry["on_signal"], f"{where}.on_signal")
    subcommands = {}
    for name, sub in (entry.get("subcommands") or {}).items():
        sub = dict(sub)
        if "on_signal" in sub:  # a subcommand with its own signal handling (agnhost pause)
            sub["on_signal"] = _reactions(sub["on_signal"], f"{where}.subcommands.{name}.on_signal")
        subcommands[name] = sub
    alone = entry["exits_by_itself"]
    exits = None if alone is None else (
        _seconds(alone.get("after_s"), f"{where}.exits_by_itself.after_s", timing.SERVER_SHUTDOWN_S,
                 timing.INSTANT_PROCESS_S), int(alone.get("exit_code", 0)))
    return ImageRow(
        row=entry["row"], names=tuple(entry["names"]), programs=tuple(entry.get("programs") or ()),
        stop_signal=entry["stop_signal"], on_signal=on_signal, ports=tuple(entry["ports"]), exits_by_itself=exits,
        port_flags=tuple(entry.get("port_flags") or ()), port_env=entry.get("port_env"),
        ports_by_tag={str(k): tuple(v) for k, v in (entry.get("ports_by_tag") or {}).items()},
        exit_code_flags=dict(entry.get("exit_code_flags") or {}),
        subcommands=subcommands, subcommands_only=bool(entry.get("subcommands_only")),
        sources=dict(entry["sources"]),
    )


@functools.cache
def table() -> tuple[ImageRow, ...]:
    """Every row, parsed once (the YAML file is read at the first lookup, not at import)."""
    from importlib.resources import files

    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(files("labkit").joinpath(DATA).read_text(encoding="utf-8"), Loader=loader)
    return tuple(_row(entry, i) for i, entry in enumerate(data["images"]))


@functools.cache
def _index() -> tuple[dict[str, ImageRow], dict[str, ImageRow]]:
    by_name: dict[str, ImageRow] = {}
    by_program: dict[str, ImageRow] = {}
    for row in table():
        for name in row.names:
            by_name[name] = row
        for program in row.programs:
            by_program[program] = row
    return by_name, by_program


def repository(image: str) -> tuple[str, str]:
    """``ghcr.io/x/y:2.1@sha256:..`` -> ("x/y", "2.1"): the path without registry host,
    ``library/`` prefix, tag or digest; the tag is ``latest`` when none is given."""
    ref = image.strip().split("@", 1)[0]
    path, tag = ref, "latest"
    if ":" in ref.rsplit("/", 1)[-1]:
        path, tag = ref.rsplit(":", 1)
    parts = path.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    path = "/".join(parts)
    for prefix in ("docker/library/", "library/"):
        if path.startswith(prefix):
            path = path[len(prefix):]
    return path, tag


def lookup(image: str) -> ImageRow | None:
    """The row of an image reference, or None. A name with a "/" also matches at the end of
    a longer path (a pull-through cache), and ``.../library/NAME`` matches NAME."""
    path, _ = repository(image)
    by_name, _ = _index()
    if path in by_name:
        return by_name[path]
    if "/library/" in path:
        rest = path.rsplit("/library/", 1)[1]
        if rest in by_name:
            return by_name[rest]
    parts = path.split("/")
    for start in range(1, len(parts) - 1):
        suffix = "/".join(parts[start:])
        if suffix in by_name:
            return by_name[suffix]
    return None


def for_program(program: str) -> ImageRow | None:
    """The row whose image ships ``program`` (``/usr/sbin/nginx`` -> the nginx row)."""
    return _index()[1].get(program.rsplit("/", 1)[-1])
