"""What the image table (``labkit/data/images.yaml``) says that needs no model of a process: which
row an image reference names, and the image's STOPSIGNAL, which the runtime uses when the pod names
no stop signal. The recorder reads it for real traces (the kubelet reports a container's stop
signal only with the ContainerStopSignals gate, alpha and off through 1.37); the simulator reads
the rest of each row in :mod:`labkit.sim.images`. An image reference names a row through its
repository path: the registry host, a ``library/`` prefix, the tag and the digest do not matter
(``docker.io/library/nginx:1.27``, ``mirror.gcr.io/library/nginx`` and ``nginx@sha256:...`` are one
row); docs/images.md.
"""

from __future__ import annotations

import functools
from typing import Any

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


@functools.cache
def entries() -> tuple[dict, ...]:
    """The table's rows as written (the YAML file is read at the first use, not at import)."""
    from importlib.resources import files

    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return tuple(yaml.load(files("labkit").joinpath(DATA).read_text(encoding="utf-8"), Loader=loader)["images"])


@functools.cache
def _by_name() -> dict[str, int]:
    return {name: i for i, entry in enumerate(entries()) for name in entry.get("names") or ()}


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


def row_index(image: str) -> int | None:
    """The index of the row an image reference names, or None. A name with a "/" also matches at
    the end of a longer path (a pull-through cache), and ``.../library/NAME`` matches NAME."""
    path, _ = repository(image)
    by_name = _by_name()
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


def stop_signal(image: str) -> str:
    """The signal the runtime stops a container of ``image`` with when its pod names none: the
    image's STOPSIGNAL as the table records it, else the runtime's default.

    >>> stop_signal("joseluisq/static-web-server:2.44.0"), stop_signal("example.com/unknown:1")
    ('SIGQUIT', 'SIGTERM')
    """
    i = row_index(image)
    return entries()[i]["stop_signal"] if i is not None else DEFAULT_STOP_SIGNAL
