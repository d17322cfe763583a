"""How much does ``labkit run`` cost beyond starting Jupyter kernels?

Every notebook run pays for a kernel start (papermill/nbclient), whatever it does. This
benchmark times, in one process and the same environment:

1. ``baseline``: papermill executing N *empty* notebooks (only a ``parameters`` cell), one
   after the other: the floor any notebook runner pays;
2. ``labkit-empty``: ``labkit run`` (``labkit.run.run_notebooks``) over the same N empty
   notebooks: the difference to (1) is labkit's own overhead (inspecting parameters, the
   kernel manager, collecting figures, the HTML report);
3. ``labkit-lab``: ``labkit run`` over the lab's N notebooks on the simulator as it runs by
   default (``--jobs auto``: one notebook per core): what the lab costs against that floor,
   the figure issue 21 asks to keep within 1.3;
4. ``labkit-lab-1``: the same with ``--jobs 1``, one notebook after the other.

The four are measured in turn in each repetition, so that their ratios hold on a busy machine.

It then runs ``labkit run --backend sim`` over the whole lab as a command and reports the
peak resident memory of the largest process of that run (a notebook kernel, or labkit
itself), which is what must stay under Binder's 2 GB.

    .venv/bin/python benchmarks/run_overhead.py [--repeat 3]

Results and the machine are recorded in benchmarks/README.md ("labkit run overhead").
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import papermill
from nbformat.v4 import new_code_cell, new_notebook

from labkit.run import KERNEL_NAME, run_notebooks

ROOT = Path(__file__).resolve().parent.parent

PARAMETERS = ('backend = "auto"\nk8s_version = "1.29"\ncluster_name = "sidecar-lab"\nkeep_cluster = False\n'
              'timeout_s = 300\noutput_dir = "build"\n')


def lab_notebooks() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))


def empty_notebooks(folder: Path, count: int) -> list[Path]:
    paths = []
    for index in range(count):
        nb = new_notebook(cells=[new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]})])
        nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python 3", "language": "python"}
        path = folder / f"{index + 1:02d}-empty.ipynb"
        nbformat.write(nb, path)
        paths.append(path)
    return paths


def time_baseline(paths: list[Path], out: Path) -> float:
    start = time.perf_counter()
    for path in paths:
        papermill.execute_notebook(str(path), str(out / path.name), parameters={"backend": "sim"},
                                   kernel_name=KERNEL_NAME, progress_bar=False, cwd=str(path.parent))
    return time.perf_counter() - start


def time_labkit(paths: list[Path], out: Path, jobs: int | str = "auto") -> float:
    start = time.perf_counter()
    report = run_notebooks(paths, backend="sim", out=out, progress=False, jobs=jobs)
    elapsed = time.perf_counter() - start
    failed = [r.failure for r in report.failed]
    if failed:
        raise SystemExit(f"labkit run failed: {failed}")
    return elapsed


def peak_rss_mib(out: Path) -> tuple[float, float]:
    """Wall time and the largest process's peak RSS (MiB) of `labkit run --backend sim` over the lab."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "labkit", "run", "--backend", "sim", "--out", str(out)],
                   check=True, capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    return elapsed, max(before, after) / 1024


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} "
            f"{platform.release()}; load average at the end: {load}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions; the median is reported (default 3)")
    parser.add_argument("--no-command", action="store_true",
                        help="skip the run as a command (the peak memory), which takes as long as a repetition")
    args = parser.parse_args()
    lab = lab_notebooks()
    rows: dict[str, list[float]] = {"baseline": [], "labkit-empty": [], "labkit-lab": [], "labkit-lab-1": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "empty").mkdir()
        empty = empty_notebooks(tmp_path / "empty", len(lab))
        for run in range(args.repeat):
            for name in rows:
                out = tmp_path / f"out-{name}-{run}"
                out.mkdir()
                if name == "baseline":
                    rows[name].append(time_baseline(empty, out))
                elif name == "labkit-empty":
                    rows[name].append(time_labkit(empty, out))
                elif name == "labkit-lab":
                    rows[name].append(time_labkit(lab, out))
                else:
                    rows[name].append(time_labkit(lab, out, jobs=1))
        cli_s, rss = (None, None) if args.no_command else peak_rss_mib(tmp_path / "out-cli")
    median = {name: statistics.median(values) for name, values in rows.items()}
    n = len(lab)
    print(f"machine: {machine()}")
    print(f"{n} notebooks, median of {args.repeat} runs, seconds (all runs: "
          + "; ".join(f"{k} {', '.join(f'{v:.2f}' for v in vals)}" for k, vals in rows.items()) + ")")
    print("| what | total (s) | per notebook (s) |")
    print("|---|---|---|")
    for name, label in (("baseline", f"papermill, {n} empty notebooks"),
                        ("labkit-empty", f"labkit run, the same {n} empty notebooks"),
                        ("labkit-lab", f"labkit run, the lab's {n} notebooks (simulator, --jobs auto)"),
                        ("labkit-lab-1", f"labkit run, the lab's {n} notebooks (simulator, --jobs 1)")):
        print(f"| {label} | {median[name]:.2f} | {median[name] / n:.2f} |")
    print(f"labkit's own overhead: {median['labkit-empty'] - median['baseline']:+.2f} s "
          f"(ratio labkit-empty / baseline = {median['labkit-empty'] / median['baseline']:.2f})")
    for name in ("labkit-lab", "labkit-lab-1"):
        ratios = [lab / base for lab, base in zip(rows[name], rows["baseline"])]
        print(f"ratio {name} / baseline = {median[name] / median['baseline']:.2f} (per repetition: "
              + ", ".join(f"{r:.2f}" for r in ratios) + ")")
    if cli_s is not None:
        print(f"`labkit run --backend sim` over the lab as a command: {cli_s:.1f} s, "
              f"largest process peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
