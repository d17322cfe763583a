"""The kernels ``labkit run`` starts for its notebooks: the manager side of :mod:`labkit.kernel`.

papermill starts each notebook's kernel through a jupyter_client kernel manager;
:func:`headless_kernel_manager` is that manager adapted to labkit run (this interpreter, the
notebook's folder, the headless environment), and :class:`KernelsAhead` starts the next
notebooks' kernels (``python -m labkit.kernel``) while one runs and hands each to its
notebook's manager. Both lean on jupyter_client's internals, so they live here, apart from
what :mod:`labkit.run` does with notebooks, and apart from :mod:`labkit.kernel`, the kernel
process itself, which must stay light.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# ipykernel warns on stderr at every start that TCP is unencrypted (local kernels only here),
# and may log "KeyboardInterrupt caught in kernel." when jupyter_client interrupts it on
# shutdown. What a notebook's cells do is in the executed notebook, not in the kernel's log.
KERNEL_ARGS = ["--IPKernelApp.log_level=CRITICAL"]
# A kernel cannot tell that papermill runs it headless: tell labkit.progress, so slow steps
# print one line instead of a bar that would be redrawn into the notebook's output.
_KERNEL_ENV = {"LABKIT_PROGRESS": "0"}


def _kernel_environment(kernel_env: dict[str, str] | None) -> dict[str, str]:
    """A kernel's environment: ours, with ``_KERNEL_ENV`` and ``kernel_env`` on top."""
    return {**os.environ, **_KERNEL_ENV, **(kernel_env or {})}


class KernelsAhead:
    """Kernels started ahead of need: when a notebook starts, the kernels of the next ``ahead``
    notebooks are started too (:mod:`labkit.kernel`), so that their start-up and imports
    happen while notebooks run. Each is for one notebook (its folder is the kernel's working
    directory) and is used by nothing else; a notebook without one starts its kernel as usual.
    """

    def __init__(self, notebooks: list[Path], ahead: int, kernel_env: dict[str, str] | None):
        import threading

        self.order = notebooks
        self.ahead = ahead
        self.env = _kernel_environment(kernel_env)
        self.env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")  # as ipykernel sets it
        self.started: dict[Path, Any] = {}   # notebook -> its waiting kernel process (None once taken)
        self.lock = threading.Lock()

    def starting(self, notebook: Path) -> None:
        """``notebook`` starts now: start the kernels of the notebooks after it."""
        from jupyter_client.launcher import launch_kernel
        from subprocess import PIPE

        index = self.order.index(notebook)
        with self.lock:
            for upcoming in self.order[index + 1:index + 1 + self.ahead]:
                if upcoming not in self.started:
                    self.started[upcoming] = launch_kernel(  # Popen as jupyter_client starts a kernel
                        [sys.executable, "-m", "labkit.kernel", *KERNEL_ARGS], stdin=PIPE, env=self.env,
                        cwd=str(upcoming.resolve().parent))

    def take(self, notebook: Path) -> Any:
        """The kernel process started for ``notebook``, still waiting for its connection file; else None."""
        with self.lock:
            process = self.started.get(notebook)
            self.started[notebook] = None
        if process is None or process.poll() is not None:
            return None
        return process

    def close(self) -> None:
        """End the kernels no notebook took (an empty line tells them to exit)."""
        with self.lock:
            left = [p for p in self.started.values() if p is not None]
            self.started = {notebook: None for notebook in self.started}
        for process in left:
            try:
                process.stdin.close()
                process.wait(timeout=10)
            except Exception:  # noqa: BLE001 - stuck or gone: make sure it is gone
                process.kill()
                process.wait()


def headless_kernel_manager(kernel_env: dict[str, str] | None = None, cwd: Path | None = None,
                             take: Callable[[], Any] | None = None) -> type:
    """nbclient's kernel manager, adapted to labkit run.

    The kernel runs in this interpreter (where labkit is installed), even when a ``python3``
    kernelspec found first on the Jupyter path names another Python; it starts in ``cwd``
    (the notebook's folder, as Jupyter does) with ``_KERNEL_ENV`` and ``kernel_env`` added to
    our environment. ``take()`` may hand it a kernel process started ahead
    (:class:`KernelsAhead`): it is given the connection file instead of a new process
    being started.
    """
    from jupyter_client.manager import AsyncKernelManager

    class HeadlessKernelManager(AsyncKernelManager):
        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            command = super().format_kernel_cmd(extra_arguments)
            if command[1:3] == ["-m", "ipykernel_launcher"]:
                command[0] = sys.executable
            return command

        async def start_kernel(self, **kw: Any) -> None:
            kw["env"] = {**(kw.get("env") or {}), **_kernel_environment(kernel_env)}
            if cwd is not None:
                kw["cwd"] = str(cwd)
            await super().start_kernel(**kw)

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            process = take() if take is not None else None
            if process is None:
                await super()._async_launch_kernel(kernel_cmd, **kw)
                return
            process.stdin.write(f"{self.connection_file}\n".encode())  # written by now (pre_launch)
            process.stdin.close()
            provisioner = self.provisioner  # what LocalProvisioner.launch_kernel records of the process
            provisioner.process, provisioner.pid = process, process.pid
            provisioner.pgid = os.getpgid(process.pid) if hasattr(os, "getpgid") else None
            provisioner.cwd = kw.get("cwd")
            self._reconcile_connection_info(provisioner.connection_info)

    return HeadlessKernelManager
