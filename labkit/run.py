"""``labkit run``: execute the lab's notebooks headless and write a report.

Each notebook runs with papermill in its own kernel, with the notebook's folder as the
working directory, and is saved executed (even when a cell fails) to ``OUT/<stem>.ipynb``.
The notebooks save their timelines to ``OUT/<stem>/`` (see :mod:`labkit.notebook`), and
``OUT/index.html`` shows one row per notebook: status, duration, timelines, the failing
cell. On kind one cluster is created up front, shared by every notebook (they are told
``keep_cluster=True``) and deleted at the end unless ``keep_cluster``.

A notebook can ask for parameters of its own when it runs headless, in its metadata::

    {"labkit": {"headless_parameters": {"use_solutions": true}}}

``labkit run`` passes them (09-exercises would otherwise stop at the first exercise the
learner has not solved); a ``-p`` of the same name wins over them.

From Python (a kernel per notebook: seconds, so not a doctest; ``tests/test_run.py`` runs it)::

    report = run_notebooks(["notebooks/04-native-sidecar-job.ipynb"], backend="sim")
    report.failed   # []
"""

from __future__ import annotations

import functools
import keyword
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import InvalidInput
from .kernel_manager import KERNEL_ARGS, RunKernels, headless_kernel_manager
from .lab import BACKEND_CHOICES, resolve_backend
from .run_report import NotebookResult, RunReport, summary, write_html
from .tools import first_line
from .versions import DEFAULT_K8S_VERSION, KubeVersion

KERNEL_NAME = "python3"
INTERRUPTED = "labkit run was interrupted (Ctrl-C) while it ran"
STOP_WAIT_S = 10.0   # after Ctrl-C, how long papermill gets to write a stopped notebook
# jupyter_client's words for a kernel that ended before it answered: it ran none of the notebook.
# Most often another process took a port jupyter_client had chosen for it before the kernel bound
# it ("Address already in use": jupyter/jupyter_client#487, likelier the busier the machine), so
# the notebook gets one more kernel, on new ports; a kernel that dies again is reported.
KERNEL_DIED_AT_START = "Kernel died before replying to kernel_info"
# Parameters labkit run sets from its own flags (-p may not set them), and the flag for each.
RUN_PARAMETERS = {"backend": "--backend", "k8s_version": "--k8s-version", "keep_cluster": "--keep-cluster",
                  "output_dir": "--out"}


# -- inputs --------------------------------------------------------------------------------
def default_notebooks() -> list[Path]:
    """Every notebook of the lab, in reading order (``notebooks/*.ipynb`` of the repository)."""
    from .notebook import repo_path

    folder = repo_path("notebooks")
    return sorted(folder.glob("[!_]*.ipynb"))


def parse_parameter(name: str, value: str, default: str | None = None) -> Any:
    """Turn ``-p NAME VALUE`` into a Python value like papermill, minding the notebook's default.

    ``default`` is the source text of the parameter's default in the notebook. Numbers and
    booleans are parsed as YAML scalars (``30``, ``2.5``, ``true``, ``False``); a parameter
    whose default is a string stays a string, so ``-p k8s_version 1.30`` is ``"1.30"``, not
    the float 1.3; one whose default is a number or a boolean must get one.

    >>> parse_parameter("grace_period_s", "5", default="30")
    5
    >>> parse_parameter("k8s_version", "1.30", default='"1.29"')
    '1.30'
    """
    import yaml

    kind = _literal_type(default)
    if kind is str:
        return value
    try:
        parsed = yaml.safe_load(value) if value.strip() else value
    except yaml.YAMLError:
        parsed = value
    if kind in (list, dict):
        if not isinstance(parsed, kind):
            shape = "list like [a, b]" if kind is list else "mapping like {a: 1}"
            raise InvalidInput(f"expected a YAML {shape}, as the notebook's default {default}, got {value!r}",
                               field=f"-p {name}")
        return parsed
    if isinstance(parsed, (dict, list)) or parsed is None and value.strip() not in ("None", "null", "~"):
        parsed = value  # not a scalar: keep the text as given
    if kind in (int, float, bool):
        if not _fits(parsed, kind):
            article = "an" if kind is int else "a"
            raise InvalidInput(f"expected {article} {kind.__name__} like the notebook's default {default}, got {value!r}",
                               field=f"-p {name}")
    return parsed


def _fits(value: Any, kind: type) -> bool:
    """``value`` suits a parameter whose default is a ``kind``: an int does for a float, a bool for no number."""
    allowed = (int, float) if kind is float else (kind,)
    return isinstance(value, allowed) and (kind is bool or not isinstance(value, bool))


def _literal_type(source: str | None) -> type | None:
    """The type of a default written as a Python literal (``"1.29"`` -> str), else None."""
    import ast

    try:
        return type(ast.literal_eval(source)) if source else None
    except (ValueError, SyntaxError):
        return None


def _inspect(path: Path) -> dict[str, dict[str, Any]]:
    """The parameters a notebook declares (name -> papermill's description), or InvalidInput."""
    import papermill

    try:
        return papermill.inspect_notebook(str(path))
    except Exception as exc:  # nbformat and papermill raise several types for unreadable files
        raise InvalidInput(f"not a readable notebook: {first_line(str(exc))}", source=str(path)) from None


def headless_parameters(path: Path, declared: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The parameters a notebook asks for when run headless: ``metadata.labkit.headless_parameters``.

    Each must be one of the notebook's parameters (``declared``, from papermill), not one
    that labkit run sets itself, with a value of its default's type (or null); anything
    else is :class:`InvalidInput` naming the notebook and the field.
    """
    import nbformat

    where = "metadata.labkit.headless_parameters"
    try:
        metadata = nbformat.read(path, as_version=4).metadata
    except Exception as exc:  # nbformat raises several types for unreadable files
        raise InvalidInput(f"not a readable notebook: {first_line(str(exc))}", source=str(path)) from None
    labkit = metadata.get("labkit") or {}
    wanted = labkit.get("headless_parameters", {}) if isinstance(labkit, dict) else None
    if not isinstance(wanted, dict):
        raise InvalidInput(f"expected a mapping of parameter names to values, got {wanted!r}", source=str(path),
                           field=where)
    declared = _inspect(path) if declared is None else declared
    for name, value in wanted.items():
        if name in RUN_PARAMETERS or name == "cluster_name":
            raise InvalidInput("set by labkit run itself, the same for every notebook", source=str(path),
                               field=f"{where}.{name}")
        if name not in declared:
            raise InvalidInput(f"the notebook has no parameter {name!r}", source=str(path), field=f"{where}.{name}")
        default = declared[name]["default"]
        kind = _literal_type(default)
        if value is not None and kind is not None and not _fits(value, kind):
            raise InvalidInput(f"expected a value like the notebook's default {default}, got {value!r}",
                               source=str(path), field=f"{where}.{name}")
    return dict(wanted)


def _check_inputs(notebooks: Sequence[str | Path], out: Path) -> list[Path]:
    paths = [Path(p) for p in notebooks] if notebooks else default_notebooks()
    if not paths:
        raise InvalidInput("no notebooks to run", field="NOTEBOOK")
    stems: dict[str, Path] = {}
    for path in paths:
        if path.suffix != ".ipynb":
            raise InvalidInput("not a notebook (expected a .ipynb file)", source=str(path))
        if not path.is_file():
            raise InvalidInput("no such notebook", source=str(path))
        if path.stem in stems:
            raise InvalidInput(f"two notebooks named {path.name} ({stems[path.stem]} and {path}); "
                               "their outputs would overwrite each other", source=str(path))
        stems[path.stem] = path
        if path.resolve().parent == out.resolve():
            raise InvalidInput(f"--out {out} is the notebook's own folder: running would overwrite the notebook",
                               source=str(path))
    return paths


# -- running -------------------------------------------------------------------------------
def run_notebooks(notebooks: Sequence[str | Path] = (), *, backend: str = "auto", k8s_version: str | None = None,
                  parameters: dict[str, str] | None = None, out: str | Path = "build", keep_cluster: bool = False,
                  progress: bool | None = None, jobs: int | str = "auto", kubeconfig: str | Path | None = None) -> RunReport:
    """Run notebooks in order on one backend; return the report (also written to OUT/index.html).

    ``parameters`` are ``-p`` pairs as text; each notebook gets those it declares, over the
    ones its metadata asks for headless (:func:`headless_parameters`). Bad input raises
    :class:`InvalidInput` before anything runs. ``progress=None`` shows a bar in a terminal
    and one line per notebook otherwise. ``jobs`` > 1 runs that many
    notebooks at once (each lab has its own namespace on a cluster, and its own model on the
    simulator, so they do not meet); ``"auto"`` is :func:`auto_jobs`. Every notebook runs in a
    kernel of its own, started for it: nothing one does is seen by another. ``kubeconfig``, with the
    cluster backend, is the cluster's kubeconfig file (a served simulator's, say): the kernels
    get it as ``KUBECONFIG`` (default: the ``KUBECONFIG`` of this process, else ``~/.kube/config``).
    ``k8s_version=None`` is the lab's default version, or on labkit's node the newest minor it pins.
    """
    started = time.monotonic()
    out = Path(out)
    if k8s_version is None:
        if backend == "node":
            from .node import default_minor

            k8s_version = default_minor()
        else:
            k8s_version = DEFAULT_K8S_VERSION
    version = KubeVersion.parse(k8s_version, field="--k8s-version")
    if backend not in BACKEND_CHOICES:
        raise InvalidInput(f"unknown backend {backend!r} (choose one of {', '.join(BACKEND_CHOICES)})", field="--backend")
    if jobs != "auto" and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise InvalidInput(f"must be a whole number >= 1 or auto, got {jobs!r}", field="--jobs")
    kernel_env = _kubeconfig_env(kubeconfig, backend)
    paths = _check_inputs(notebooks, out)
    with RunKernels(paths, kernel_env) as kernels:  # the lab imported once, while papermill reads the notebooks
        declared = {path: _inspect(path) for path in paths}
        headless = {path: headless_parameters(path, declared[path]) for path in paths}
        user = dict(parameters or {})
        typed: dict[Path, dict[str, Any]] = {path: {} for path in paths}  # each notebook's -p values, parsed
        for name, value in user.items():
            if not name.isidentifier() or keyword.iskeyword(name):
                raise InvalidInput(f"not a Python variable name: {name!r}", field=f"-p {name}")
            if name in RUN_PARAMETERS:
                raise InvalidInput(f"set by labkit run itself: use {RUN_PARAMETERS[name]}", field=f"-p {name}")
            owners = [p for p in paths if name in declared[p]]
            if not owners:
                raise InvalidInput(f"no notebook being run has a parameter {name!r}", field=f"-p {name}")
            for path in owners:  # typed by each notebook's own default
                typed[path][name] = parse_parameter(name, value, declared[path][name]["default"])

        backend, why = resolve_backend(backend, version)
        if jobs == "auto":
            jobs = auto_jobs(backend, len(paths))
        out.mkdir(parents=True, exist_ok=True)
        from .kind import DEFAULT_CLUSTER_NAME

        cluster = _SharedCluster(backend, version, user.get("cluster_name", DEFAULT_CLUSTER_NAME), keep_cluster)
        base = {"backend": backend, "k8s_version": k8s_version, "cluster_name": cluster.name,
                "keep_cluster": True if backend in ("kind", "node") else keep_cluster, "output_dir": str(out.resolve())}
        results = [NotebookResult(path, out / path.name,
                                  headless={k: v for k, v in headless[path].items() if k not in typed[path]})
                   for path in paths]
        report = RunReport(out, backend, why, k8s_version, {**base, **user}, results)
        work = [(result, {**{name: value for name, value in base.items() if name in declared[result.source]},
                          **result.headless, **typed[result.source]})
                for result in results]
        show = _Progress(len(paths), progress)
        try:
            cluster.up()
            if jobs > 1 and len(work) > 1:
                _execute_in_parallel(work, out, jobs, show, kernel_env, kernels)
            else:
                for result, mine in work:
                    show.starting(result)
                    _execute(result, mine, out, kernel_env, kernels)
                    show.finished(result)
        finally:
            show.close()
            kernels.close()     # every kernel stops before the cluster goes and the report is written
            try:
                cluster.down()
            finally:
                report.duration_s = time.monotonic() - started
                write_html(report)
    return report


def _kubeconfig_env(kubeconfig: str | Path | None, backend: str) -> dict[str, str]:
    """The kernels' ``KUBECONFIG`` for ``--kubeconfig`` (checked before anything runs)."""
    if kubeconfig is None:
        return {}
    if backend != "cluster":
        raise InvalidInput(f"a kubeconfig is for --backend cluster, not {backend!r}", field="--kubeconfig")
    path = Path(kubeconfig)
    if not path.is_file():
        raise InvalidInput("no such file", source=str(path), field="--kubeconfig")
    return {"KUBECONFIG": str(path.resolve())}


def auto_jobs(backend: str, notebooks: int) -> int:
    """``--jobs auto``: on the simulator, one notebook per processor this process may use (each
    notebook's kernel is busy computing, so a second one at a time on a second core halves
    the run); on kind or a cluster one at a time, so that the notebooks' containers do not
    compete for the machine whose timing the lab shows."""
    if backend != "sim":
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, notebooks))


def _execute_in_parallel(work: list[tuple[NotebookResult, dict[str, Any]]], out: Path, jobs: int,
                         show: "_Progress", kernel_env: dict[str, str] | None = None,
                         kernels: "RunKernels | None" = None) -> None:
    """Run the notebooks ``jobs`` at a time; results keep their order.

    Threads are enough: each thread only drives its notebook's kernel (a process of its own)
    and waits on it, and a thread costs nothing to start, where a worker process paid for
    importing papermill again. Nothing here changes the process's working directory (the
    kernel is started in the notebook's folder instead), so the threads do not meet.

    On Ctrl-C no further notebook starts and the running kernels are stopped; each running
    notebook ends "interrupted", written as far as it ran, before the report is made.
    """
    from concurrent.futures import ThreadPoolExecutor, as_completed

    pool = ThreadPoolExecutor(max_workers=min(jobs, len(work)), thread_name_prefix="labkit-run")
    futures = {}
    try:
        futures = {pool.submit(_execute, result, parameters, out, kernel_env, kernels): result
                   for result, parameters in work}
        for future in as_completed(futures):
            show.finished(future.result())
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        _stop_running({future: futures[future] for future in futures if future.running()}, kernels)
        raise
    pool.shutdown()


def _stop_running(running: dict, kernels: "RunKernels | None") -> None:
    """Stop the kernels of the notebooks still ``running`` (future -> result) and wait, at most
    STOP_WAIT_S, for papermill to write each as far as it ran; each that did not pass ends
    "interrupted".

    nbclient would log "Kernel died while waiting for execute reply" for each: papermill's
    logger is quiet meanwhile, as the run was stopped on purpose.
    """
    import logging
    from concurrent.futures import wait

    papermill_log = logging.getLogger("papermill")
    level = papermill_log.level
    papermill_log.setLevel(logging.CRITICAL)
    try:
        if kernels is not None:
            kernels.close()
        wait(running, timeout=STOP_WAIT_S)
    finally:
        papermill_log.setLevel(level)
    for result in running.values():
        if result.status != "passed":     # one that ended just before the kernels stopped keeps its pass
            result.status, result.error = "interrupted", INTERRUPTED


# papermill writes the whole executed notebook (validated, as JSON) before and after every cell:
# about 500 writes and 4 s of CPU over the lab, beside the kernels. labkit run's engine writes it
# at most this often while it runs, and always at the end (papermill ends with a save whatever
# happened: a failed cell, a kernel that died), so nothing a notebook did is lost.
SAVE_EVERY_S = 1.0
ENGINE = "labkit"


@functools.cache
def _register_engine() -> None:
    """Register :data:`ENGINE` with papermill, once: nbclient's engine, its saves spaced out."""
    from papermill.engines import NBClientEngine, papermill_engines

    class SpacedSaves(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
            save, complete = nb_man.save, nb_man.notebook_complete
            saved = [float("-inf")]

            def spaced_save(**kw: Any) -> None:
                if "nb" in kw or time.monotonic() - saved[0] >= SAVE_EVERY_S:
                    save(**kw)
                    saved[0] = time.monotonic()

            def complete_and_save(**kw: Any) -> None:   # papermill calls it last, in a finally
                nb_man.save = save
                complete(**kw)

            nb_man.save, nb_man.notebook_complete = spaced_save, complete_and_save
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register(ENGINE, SpacedSaves)


def _execute(result: NotebookResult, parameters: dict[str, Any], out: Path,
             kernel_env: dict[str, str] | None = None, kernels: "RunKernels | None" = None) -> NotebookResult:
    """Run one notebook with papermill (its kernel gets ``kernel_env`` on top of ours, and is
    started through ``kernels``, once more if it died before it answered: KERNEL_DIED_AT_START);
    record status, failing cell and produced files."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    _register_engine()
    began_wall = time.time()
    began = time.monotonic()
    notebook_folder = result.source.resolve().parent
    try:
        for last_start in (False, True):
            try:
                papermill.execute_notebook(  # no cwd=: papermill would chdir this whole process
                    str(result.source), str(result.executed), parameters=parameters, kernel_name=KERNEL_NAME,
                    progress_bar=False, log_output=False, extra_arguments=KERNEL_ARGS, engine_name=ENGINE,
                    kernel_manager_class=headless_kernel_manager(kernel_env, notebook_folder, kernels))
                break
            except RuntimeError as exc:
                if last_start or str(exc) != KERNEL_DIED_AT_START:
                    raise
        result.status = "passed"
    except PapermillExecutionError as exc:
        result.status = "failed"
        result.error = f"{exc.ename}: {exc.evalue}"
        result.failed_cell = _source_cell_number(result.executed, exc.cell_index)
        result.failed_source = first_line(exc.source)
    except Exception as exc:  # kernel died, kernel missing, unreadable notebook: keep going
        result.status = "failed"
        result.error = f"{type(exc).__name__}: {exc}"
    except KeyboardInterrupt:     # one notebook at a time: Ctrl-C reaches this thread
        result.status, result.error = "interrupted", INTERRUPTED
        raise
    result.duration_s = time.monotonic() - began
    folder = out / result.source.stem
    if folder.is_dir():  # only what this run wrote, not leftovers of an earlier run
        written = sorted((p.stat().st_mtime, p.name, p) for p in folder.iterdir())  # in the order the notebook made them
        fresh = [p for mtime, _, p in written if mtime >= began_wall - 1]
        result.figures = [p for p in fresh if p.suffix == ".png"]
        result.traces = [p for p in fresh if p.name.endswith(".trace.json")]
    return result


def _source_cell_number(executed: Path, cell_index: int) -> int:
    """1-based position of an executed cell in the source notebook.

    ``cell_index`` counts papermill's injected-parameters cell, but not the error notes it
    adds to the saved notebook after the failure (``papermill-error-cell-tag``).
    """
    import nbformat

    try:
        cells = nbformat.read(executed, as_version=4).cells
    except Exception:
        return cell_index + 1
    ran = [cell for cell in cells if "papermill-error-cell-tag" not in cell.get("metadata", {}).get("tags", [])]
    injected = sum(1 for cell in ran[:cell_index]
                   if "injected-parameters" in cell.get("metadata", {}).get("tags", []))
    return cell_index - injected + 1


class _SharedCluster:
    """On kind (and labkit's node): one cluster for the whole run, made before the first notebook and
    removed after (unless kept); a labkit cluster (node) that was already running is reused and left running."""

    def __init__(self, backend: str, version: KubeVersion, name: str, keep: bool):
        self.backend = backend
        self.version = version
        self.name = name
        self.keep = keep
        self.created = False

    def up(self) -> None:
        if self.backend == "node":
            from .node import Node

            self.created = Node(self.version).up()  # False: reused one that was running
        elif self.backend == "kind":
            from .kind import create_cluster

            self.created = create_cluster(self.name, self.version)  # False: reused one that was running

    def down(self) -> None:
        if not self.created or self.keep:
            return
        if self.backend == "node":
            from .node import Node

            Node(self.version).down()
            return
        from .kind import delete_cluster

        delete_cluster(self.name)


class _Progress:
    """A bar when a person watches (labkit.progress decides); otherwise one line per notebook on stderr."""

    def __init__(self, total: int, interactive: bool | None):
        from .progress import is_interactive, progress

        self.total = total
        self.done = 0
        if interactive is None:
            interactive = is_interactive(stream=sys.stderr)
        self.bar = progress(total=total, desc="labkit run", interactive=True, file=sys.stderr) if interactive else None

    def starting(self, result: NotebookResult) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(result.source.stem)

    def finished(self, result: NotebookResult) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        else:
            print(f"[{self.done}/{self.total}] {result.name} {result.status} in {result.duration_s:.1f}s",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def main(args: Any, *, echo: Callable[[str], None] = print) -> int:
    """The ``labkit run`` subcommand: run, print the summary, exit 1 if a notebook failed."""
    report = run_notebooks(args.notebooks, backend=args.backend, k8s_version=args.k8s_version,
                           parameters=dict(args.parameters or []), out=args.out, keep_cluster=args.keep_cluster,
                           jobs=args.jobs, kubeconfig=args.kubeconfig)
    echo(summary(report))
    return 1 if report.failed else 0


__all__ = ["auto_jobs", "run_notebooks", "parse_parameter", "default_notebooks", "headless_parameters"]
