"""What ``labkit run`` reports: a result per notebook, the table it prints and ``OUT/index.html``.

:mod:`labkit.run` fills these in as the notebooks run; nothing here runs anything.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .tools import first_line


@dataclass
class NotebookResult:
    """What happened to one notebook."""

    source: Path
    executed: Path
    status: str = "not run"          # "passed", "failed", or "interrupted" (Ctrl-C while it ran)
    duration_s: float = 0.0
    figures: list[Path] = field(default_factory=list)
    traces: list[Path] = field(default_factory=list)
    headless: dict[str, Any] = field(default_factory=dict)  # the notebook's own headless_parameters used
    failed_cell: int | None = None   # 1-based position in the source notebook
    failed_source: str | None = None  # the failing cell's first line
    error: str | None = None          # "ename: evalue", or why the notebook could not run

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def went_wrong(self) -> bool:
        """Failed, or stopped by Ctrl-C while it ran: the report says why."""
        return self.status in ("failed", "interrupted")

    @property
    def failure(self) -> str:
        """One line naming the failing cell and the error."""
        if not self.went_wrong:
            return ""
        where = f'cell {self.failed_cell} ("{self.failed_source}"): ' if self.failed_cell else ""
        return where + first_line(self.error or "")


@dataclass
class RunReport:
    """The outcome of one ``labkit run``."""

    out: Path
    backend: str
    why: str
    k8s_version: str
    parameters: dict[str, Any]
    results: list[NotebookResult]
    duration_s: float = 0.0

    @property
    def failed(self) -> list[NotebookResult]:
        return [r for r in self.results if r.status != "passed"]

    @property
    def index(self) -> Path:
        return self.out / "index.html"


def summary(report: RunReport) -> str:
    """The table ``labkit run`` prints: one row per notebook, then totals and failures."""
    width = max([len("notebook")] + [len(r.name) for r in report.results])
    status = max([len("passed")] + [len(r.status) for r in report.results])
    lines = [f"{'notebook':<{width}}  {'status':<{status}}  {'time':>7}  timelines",
             f"{'-' * width}  {'-' * status}  {'-' * 7}  {'-' * 9}"]
    for r in report.results:
        lines.append(f"{r.name:<{width}}  {r.status:<{status}}  {r.duration_s:>6.1f}s  {len(r.figures):>9}")
    passed = len(report.results) - len(report.failed)
    lines.append("")
    lines.append(f"{passed} passed, {len(report.failed)} failed in {report.duration_s:.1f}s "
                 f"on {report.backend} (Kubernetes {report.k8s_version}); report: {report.index}")
    for r in report.results:
        if r.headless:
            given = ", ".join(f"{name}={value!r}" for name, value in r.headless.items())
            lines.append(f"{r.name} ran with {given}, as its metadata asks for headless runs (-p NAME VALUE to change)")
    for r in report.failed:
        lines.append(f"FAILED {r.name}: {r.failure} (executed notebook: {r.executed})")
    return "\n".join(lines)


def write_html(report: RunReport) -> Path:
    """Write ``OUT/index.html``: a row per notebook with its status, timelines and error."""
    esc = html.escape
    out = report.out

    def rel(path: Path) -> str:
        return esc(path.resolve().relative_to(out.resolve()).as_posix()) if path.resolve().is_relative_to(out.resolve()) else esc(str(path))

    rows = []
    for r in report.results:
        images = "".join(f'<figure><a href="{rel(p)}"><img src="{rel(p)}" alt="{esc(p.stem)}"></a>'
                         f"<figcaption>{esc(p.stem)}</figcaption></figure>" for p in r.figures)
        traces = " ".join(f'<a href="{rel(p)}">{esc(p.name)}</a>' for p in r.traces)
        error = ""
        if r.went_wrong:
            where = f"cell {r.failed_cell}: <code>{esc(r.failed_source or '')}</code><br>" if r.failed_cell else ""
            error = f'<div class="error">{where}<pre>{esc(r.error or "")}</pre></div>'
        notebook = f'<a href="{rel(r.executed)}">{esc(r.name)}</a>' if r.executed.exists() else esc(r.name)
        if r.headless:
            given = ", ".join(f"{esc(k)}={esc(repr(v))}" for k, v in r.headless.items())
            notebook += f"<br><small>with {given} (its headless_parameters)</small>"
        rows.append(f'<tr class="{esc(r.status.replace(" ", "-"))}"><td>{notebook}</td>'
                    f'<td class="status">{esc(r.status)}</td><td>{r.duration_s:.1f} s</td>'
                    f"<td>{error}{images}{'<p>traces: ' + traces + '</p>' if traces else ''}</td></tr>")
    passed = len(report.results) - len(report.failed)
    params = ", ".join(f"{esc(k)}={esc(repr(v))}" for k, v in report.parameters.items())
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sidecar Lab run</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border-bottom: 1px solid #ddd; padding: .5em; vertical-align: top; text-align: left; }}
tr.passed .status {{ color: #1a7f37; font-weight: bold; }}
tr.failed .status, tr.interrupted .status, tr.not-run .status {{ color: #cf222e; font-weight: bold; }}
figure {{ display: inline-block; margin: .3em; vertical-align: top; }} img {{ max-width: 400px; border: 1px solid #eee; }}
.error pre {{ background: #fff0f0; padding: .5em; white-space: pre-wrap; }}
</style></head><body>
<h1>Sidecar Lab: {passed} of {len(report.results)} notebooks passed</h1>
<p>Backend <b>{esc(report.backend)}</b> ({esc(report.why)}), Kubernetes {esc(report.k8s_version)},
{report.duration_s:.1f} s in total. Parameters: {params}.</p>
<table><thead><tr><th>notebook</th><th>status</th><th>duration</th><th>timelines and errors</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""
    report.index.write_text(page, encoding="utf-8")
    return report.index
