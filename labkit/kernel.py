"""A notebook kernel started ahead of need by ``labkit run``: ``python -m labkit.kernel ARGS``.

It does what ``python -m ipykernel_launcher -f FILE ARGS`` does, in two steps. First it
imports ipykernel and what the lab's notebooks import (matplotlib, labkit's lab, simulator
and plots), which takes a few seconds, while the notebook before it still runs. Then it
waits for one line on stdin, the path of its connection file, which its kernel manager
writes when the notebook is due, and runs the kernel. The notebook still gets a process and
a namespace of its own: only modules are loaded earlier, as if a first cell had imported
them. An empty line or the end of stdin (the run needed no more kernels) ends it.

The process is started with ``MPLBACKEND`` set as ipykernel would set it (the inline
backend, unless set already), so matplotlib is imported with the backend a kernel uses.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

# What nearly every notebook of the lab imports in its first cells. The simulator by its modules:
# ``labkit.sim`` itself loads SimLab and simulate only when first used (a notebook's connect()).
PRELOAD = ("matplotlib.pyplot", "labkit.checks", "labkit.lab", "labkit.notebook", "labkit.versions",
           "labkit.sim.lab", "labkit.sim.run", "labkit.plot", "labkit.display")


def preload() -> None:
    """Import PRELOAD; a module that fails is left for the notebook's own cell to report."""
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the notebook meets the same error in its own cell
            pass


def main() -> int:
    # As ipykernel_launcher: the working directory leaves sys.path while ipykernel loads;
    # InteractiveShellApp.init_path puts it back for the notebook.
    if sys.path and (sys.path[0] == "" or Path(sys.path[0]) == Path.cwd()):
        del sys.path[0]
    from ipykernel import kernelapp

    preload()
    connection_file = sys.stdin.readline().strip()
    if not connection_file:
        return 0
    kernelapp.launch_new_instance(argv=["-f", connection_file, *sys.argv[1:]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
