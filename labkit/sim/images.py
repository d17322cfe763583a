"""The image table (``labkit/data/images.yaml``) as the simulator reads it: each row's programs,
signal handling, ports and whether it exits by itself (docs/images.md). Which row an image names
and the STOPSIGNAL column live in :mod:`labkit.images`, which the recorder reads too.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput
from ..images import DATA, entries, row_index, signal_name


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
    """Every row, parsed once."""
    return tuple(_row(entry, i) for i, entry in enumerate(entries()))


@functools.cache
def _by_program() -> dict[str, ImageRow]:
    return {program: row for row in table() for program in row.programs}


def lookup(image: str) -> ImageRow | None:
    """The row of an image reference, or None (:func:`labkit.images.row_index`)."""
    i = row_index(image)
    return None if i is None else table()[i]


def for_program(program: str) -> ImageRow | None:
    """The row whose image ships ``program`` (``/usr/sbin/nginx`` -> the nginx row)."""
    return _by_program().get(program.rsplit("/", 1)[-1])
