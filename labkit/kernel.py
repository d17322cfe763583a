"""Where ``labkit run``'s notebook kernels come from: ``python -m labkit.kernel ARGS``.

Every kernel of the lab imports the same things (ipykernel, matplotlib, labkit's lab, simulator
and plots): about 1.7 s of CPU each, eleven times a run. This process imports them once, then
forks one kernel per notebook: it reads one JSON line per kernel on stdin
(``{"cwd": ..., "connection_file": ...}``), forks, and answers the child's pid on stdout. The
child becomes the kernel, as ``python -m ipykernel_launcher -f FILE ARGS`` would, in its
notebook's folder and its own session. Each notebook still gets a process and a namespace of
its own: only modules are loaded earlier, as if a first cell had imported them, and what a
notebook changes dies with its process. An empty line or the end of stdin ends the run: the
kernels still running (only after a failure) are stopped, then this process exits.

It runs on Linux only (``labkit.kernel_manager`` never starts it elsewhere): forking a process
that has loaded numpy or matplotlib is not safe with macOS's system libraries. The process is
started with ``MPLBACKEND`` set as ipykernel would set it (the inline backend, unless set
already), so matplotlib is imported with the backend a kernel uses.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
from pathlib import Path

# What nearly every notebook of the lab imports in its first cells. The simulator by its modules:
# ``labkit.sim`` itself loads SimLab and simulate only when first used (a notebook's connect()).
PRELOAD = ("matplotlib.pyplot", "labkit.checks", "labkit.lab", "labkit.notebook", "labkit.versions",
           "labkit.sim.lab", "labkit.sim.run", "labkit.plot", "labkit.display")

_kernels: set[int] = set()   # pids of the kernels forked and not yet reaped


def preload() -> None:
    """Import PRELOAD; a module that fails is left for the notebook's own cell to report."""
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the notebook meets the same error in its own cell
            pass


def _reap(signum: int = 0, frame: object = None) -> None:
    """Collect the exit of every kernel that ended, so none stays a zombie."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _kernels.discard(pid)


def _become_kernel(request: dict, argv: list[str]) -> None:
    """In the forked child: be the notebook's kernel, then exit (never back into the fork loop)."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)   # the kernel's own subprocesses are its business
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        os.setsid()                                      # as jupyter_client starts a kernel: its own session
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)                              # stdin and stdout carry the fork requests and
        os.dup2(2, 1)                                    # answers: the kernel gets neither
        os.close(devnull)
        os.chdir(request["cwd"])
        numpy = sys.modules.get("numpy")
        if numpy is not None:    # seeded once in this process: every kernel would draw the same numbers
            numpy.random.seed()
        from ipykernel import kernelapp

        # ipykernel's watch on its parent: this fork server, whose end (the run's) ends the kernel
        kernelapp.launch_new_instance(argv=["-f", request["connection_file"],
                                            f"--IPKernelApp.parent_handle={os.getppid()}", *argv])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - say why the kernel died, then die
        import traceback

        traceback.print_exc()
    finally:
        try:
            import atexit

            atexit._run_exitfuncs()      # what a kernel process runs as it exits (IPython's history)
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve(argv: list[str]) -> int:
    """Preload, then fork one kernel per request line until an empty line or the end of stdin."""
    from ipykernel import kernelapp  # noqa: F401 - imported once, here, for every kernel

    preload()
    signal.signal(signal.SIGCHLD, _reap)
    requests, answers = sys.stdin.buffer, sys.stdout
    try:
        for line in requests:
            if not line.strip():
                break
            request = json.loads(line)
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})    # reaped only once recorded
            pid = os.fork()
            if pid == 0:
                _become_kernel(request, argv)
            _kernels.add(pid)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            answers.write(f"{pid}\n")
            answers.flush()
    finally:
        for pid in list(_kernels):     # a kernel its notebook did not shut down: the run failed
            try:
                os.killpg(pid, signal.SIGTERM)
            except OSError:           # not yet in a session of its own
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:
                    pass
    return 0


def main() -> int:
    # As ipykernel_launcher: the working directory leaves sys.path while ipykernel loads;
    # InteractiveShellApp.init_path puts the kernel's own back for the notebook.
    if sys.path and (sys.path[0] == "" or Path(sys.path[0]) == Path.cwd()):
        del sys.path[0]
    return serve(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
