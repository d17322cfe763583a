"""What the lab's text says about Kubernetes, held to what the code at the release tags does.

Each test reads the notebooks' markdown and docs/ and fails on a statement that an upstream
source contradicts (the sources are named in docs/sources.md).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from labkit.versions import OTHER_GATES

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))


def notebook_text(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return "\n".join("".join(c["source"]) for c in nb["cells"])


def all_texts() -> dict[str, str]:
    texts = {p.name: p.read_text(encoding="utf-8") for p in DOCS}
    texts.update({p.name: notebook_text(p) for p in NOTEBOOKS})
    return texts


def paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n|\n\|", text)]


def test_kubectl_wait_stops_at_its_timeout():
    """kubectl v0.37.2 pkg/cmd/wait/wait.go: Timeout defaults to 30 * time.Second."""
    sheet = (ROOT / "docs" / "cheat-sheet.md").read_text(encoding="utf-8")
    for name, text in all_texts().items():
        assert "waits forever" not in text, name
    waiting = next(p for p in paragraphs(sheet) if p.startswith("**Waiting**"))
    assert "--timeout" in waiting and "default 30 s" in waiting


def test_container_stop_signals_is_alpha_and_off_wherever_it_is_named():
    """kube_features.go at v1.37.2: ContainerStopSignals {1.33, Default: false, Alpha}, its only entry."""
    assert OTHER_GATES["ContainerStopSignals"] == (33, False)
    named = 0
    for name, text in all_texts().items():
        for para in paragraphs(text):
            if "ContainerStopSignals" not in para or "--feature-gate ContainerStopSignals=true" in para:
                continue
            named += 1
            assert "alpha" in para and "off" in para, f"{name}: {para[:200]}"
            assert "beta" not in para or "not what shipped" in para, f"{name}: {para[:200]}"
    assert named >= 5


def test_the_back_off_text_says_the_first_restart_is_immediate():
    sheet = (ROOT / "docs" / "cheat-sheet.md").read_text(encoding="utf-8")
    nb07 = notebook_text(ROOT / "notebooks" / "07-restarts-and-probes.ipynb")
    for text in (sheet, nb07):
        para = next(p for p in paragraphs(text) if "back-off" in p.lower() and "300" in p or "5 minutes" in p)
        assert "first restart" in para and "at once" in para and "1.28" in para and "1.37" in para
        assert "KubeletCrashLoopBackOffMax" in para


def test_sources_page_is_listed_and_names_a_source_for_each_statement():
    text = (ROOT / "docs" / "sources.md").read_text(encoding="utf-8")
    assert "sources.md" in (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| statement")]
    assert len(rows) >= 20
    for row in rows:
        statement, source = [cell.strip() for cell in row.strip("|").split(" | ")][:2]
        assert statement and re.search(r"v\d+\.\d+|\.go|#\d+|KEP|e2e|CHANGELOG|pyproject", source), row


def test_the_status_lag_of_a_terminating_pod_is_explained_once_where_its_first_figure_is():
    """Issue 20 point 10: the pod's Ready strip runs on past its containers during a deletion; the
    notebook that first draws a deleted pod (02) says why, and no later notebook repeats it."""
    explaining = [p.name for p in NOTEBOOKS
                  if any("pale strip" in para and "SyncTerminatingPod" in para for para in paragraphs(notebook_text(p)))]
    assert explaining == ["02-the-problem.ipynb"]
    cells = [("".join(c["source"]), c["cell_type"]) for c in
             json.loads((ROOT / "notebooks" / "02-the-problem.ipynb").read_text(encoding="utf-8"))["cells"]]
    first_figure = next(i for i, (src, kind) in enumerate(cells) if kind == "code" and "figures.timeline(" in src)
    assert "lab.delete(" in cells[first_figure - 1][0]          # the figure of a deleted pod...
    explained = next(i for i, (src, _) in enumerate(cells) if "pale strip" in src and "SyncTerminatingPod" in src)
    assert cells[first_figure + 1][1] == "markdown" and explained == first_figure + 1   # ...explained right under it
    para = next(p for p in paragraphs(cells[explained][0]) if "SyncTerminatingPod" in p)
    assert "pale strip" in para and "Ready" in para and "not* deleted" in para   # both cases: deleted, and a Job's exit
