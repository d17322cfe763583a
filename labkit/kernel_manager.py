"""The kernels ``labkit run`` starts for its notebooks: the manager side of :mod:`labkit.kernel`.

papermill starts each notebook's kernel through a jupyter_client kernel manager;
:func:`headless_kernel_manager` is that manager adapted to labkit run (this interpreter, the
notebook's folder, the headless environment), and :class:`RunKernels` has each notebook's
kernel forked from a process that imported the lab once (``python -m labkit.kernel``), hands
it to the notebook's manager, and stops every kernel of the run when it ends. Both lean on
jupyter_client's internals, so they live here, apart from what :mod:`labkit.run` does with
notebooks, and apart from :mod:`labkit.kernel`, the kernel process itself, which must stay light.
"""

from __future__ import annotations

import os
import signal
import sys
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


class ForkedKernel:
    """A kernel forked by :mod:`labkit.kernel`, as its manager sees it: what jupyter_client's
    LocalProvisioner uses of a ``Popen``. It is the fork server's child, not ours, so it is
    watched by its pid and the start time that pid had (a pid the fork server reaped may be
    reused), and its exit status stays with the fork server."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int):
        self.pid = pid
        self.started = _start_time(pid)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """None while the kernel runs; 0 once it is gone (its status is not ours to read)."""
        if self.returncode is None and (self.started is None or _start_time(self.pid) != self.started):
            self.returncode = 0
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        import subprocess
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _start_time(pid: int) -> str | None:
    """When ``pid`` started (``/proc/PID/stat``), or None if it is gone or a zombie the fork
    server has yet to reap."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return None if fields[0] in ("Z", "X") else fields[19]


class KernelsStopped(RuntimeError):
    """labkit run is stopping (Ctrl-C, a failure): no kernel starts any more."""


class RunKernels:
    """The kernels of one ``labkit run``, which it stops when the run ends, also on Ctrl-C.

    On Linux each is forked from a process that imported the lab once (:mod:`labkit.kernel`):
    one such process per folder of notebooks (matplotlib reads a ``matplotlibrc`` in the working
    directory when it is imported), started at once, so that its imports overlap whatever comes
    before the first notebook. Elsewhere, or when a fork server fails, :meth:`fork` gives None
    and the kernel starts as usual; :meth:`started` then records it. After :meth:`close` no
    kernel starts: :meth:`fork` raises :class:`KernelsStopped`.
    """

    ANSWER_TIMEOUT_S = 120.0     # a fork server answers its first fork after its imports: seconds

    def __init__(self, notebooks: list[Path], kernel_env: dict[str, str] | None):
        import threading

        self.servers: dict[Path, Any] = {}
        self.locks: dict[Path, threading.Lock] = {}
        self.forked: set[Any] = set()        # the servers that forked a kernel
        self.plain: list[Any] = []           # kernels started as usual (Popen)
        self.closed = False
        if not sys.platform.startswith("linux"):
            return
        from subprocess import PIPE, Popen

        env = _kernel_environment(kernel_env)
        env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")  # as ipykernel sets it
        for folder in dict.fromkeys(path.resolve().parent for path in notebooks):
            self.locks[folder] = threading.Lock()
            self.servers[folder] = Popen([sys.executable, "-m", "labkit.kernel", *KERNEL_ARGS], stdin=PIPE,
                                         stdout=PIPE, env=env, cwd=str(folder), start_new_session=True)

    def fork(self, cwd: Path, connection_file: str) -> ForkedKernel | None:
        """A kernel for the notebook in ``cwd``, connected through ``connection_file``; None if
        there is no fork server for that folder or it failed (it is then stopped)."""
        import json
        import select

        if self.closed:
            raise KernelsStopped("labkit run is stopping: no kernel starts")
        server = self.servers.get(cwd)
        if server is None:
            return None
        with self.locks[cwd]:
            if server.poll() is not None:
                return None
            try:
                server.stdin.write((json.dumps({"cwd": str(cwd), "connection_file": connection_file}) + "\n").encode())
                server.stdin.flush()
                ready, _, _ = select.select([server.stdout], [], [], self.ANSWER_TIMEOUT_S)
                answer = server.stdout.readline() if ready else b""
            except (OSError, ValueError):        # closed under us: the run is stopping
                answer = b""
            if not answer.strip().isdigit():
                server.kill()
                if self.closed:
                    raise KernelsStopped("labkit run is stopping: no kernel starts")
                return None
            self.forked.add(server)
        return ForkedKernel(int(answer))

    def started(self, process: Any) -> None:
        """Record a kernel started as usual, to stop it with the run (at once if it has ended)."""
        self.plain.append(process)
        if self.closed:
            self._stop_plain()

    def __enter__(self) -> "RunKernels":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop starting kernels; end the fork servers (the end of their stdin: each stops any
        kernel of its own still running; one that forked nothing, bad input say, is killed: it is
        still importing) and stop the kernels started as usual that still run."""
        self.closed = True
        servers, self.servers = list(self.servers.values()), {}
        for server in servers:
            try:
                if server not in self.forked:
                    server.kill()
                server.stdin.close()
                server.wait(timeout=10)
            except Exception:  # noqa: BLE001 - stuck or gone: make sure it is gone
                server.kill()
                server.wait()
            server.stdout.close()
        self._stop_plain()

    def _stop_plain(self) -> None:
        for process in list(self.plain):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)     # its own session, as jupyter_client starts it
                except OSError:
                    process.terminate()


def headless_kernel_manager(kernel_env: dict[str, str] | None = None, cwd: Path | None = None,
                             kernels: "RunKernels | None" = None) -> type:
    """nbclient's kernel manager, adapted to labkit run.

    The kernel runs in this interpreter (where labkit is installed), even when a ``python3``
    kernelspec found first on the Jupyter path names another Python; it starts in ``cwd``
    (the notebook's folder, as Jupyter does) with ``_KERNEL_ENV`` and ``kernel_env`` added to
    our environment. ``kernels`` (:class:`RunKernels`) forks the kernel for it when it can, and
    records it otherwise, so that the run can stop it.
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
            forkable = kernels is not None and cwd is not None
            kernel = kernels.fork(cwd, self.connection_file) if forkable else None  # the file is written by now
            if kernel is None:
                await super()._async_launch_kernel(kernel_cmd, **kw)
                if kernels is not None:
                    kernels.started(self.provisioner.process)
                return
            provisioner = self.provisioner  # what LocalProvisioner.launch_kernel records of the process
            provisioner.process, provisioner.pid = kernel, kernel.pid
            provisioner.pgid = kernel.pid     # the kernel's own session (labkit.kernel)
            provisioner.cwd = kw.get("cwd")
            self._reconcile_connection_info(provisioner.connection_info)

    return HeadlessKernelManager
