"""Where labkit keeps its own files (clusters' kubeconfigs, the served simulator's, the node's builds)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """labkit's own folder: ``$XDG_CACHE_HOME/labkit`` or ``~/.cache/labkit``.

    >>> cache_dir({"XDG_CACHE_HOME": "/tmp/c"}).as_posix()
    '/tmp/c/labkit'
    """
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".cache")
    return Path(base) / "labkit"
