"""The code's references to documentation resolve to files in the repository.

Comments and docstrings used to point at design notes that ship with no copy of labkit
(TRACE.md, DESIGN.md, the reference notes); a reader who followed one found nothing.
"""

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
SOURCES = sorted(p for d in ("labkit", "tests") for p in (ROOT / d).rglob("*") if p.suffix in (".py", ".md"))
# Files of the design notes that are not in the repository.
OUTSIDE = re.compile(r"TRACE\.md|DESIGN\.md|verified-facts|timing-constants|sidecar-semantics|\.\./shared|\.\./reference")


def test_every_docs_reference_names_a_file_that_exists():
    named = {(path.relative_to(ROOT), ref) for path in SOURCES
             for ref in re.findall(r"\bdocs/[\w.-]+\.md", path.read_text(encoding="utf-8"))}
    assert named, "no docs/ references found: the scan itself is broken"
    missing = sorted(f"{path}: {ref}" for path, ref in named if not (ROOT / ref).is_file())
    assert missing == []


def test_nothing_points_at_the_design_notes_outside_the_repository():
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}" for path in SOURCES if path != Path(__file__)
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if OUTSIDE.search(line)]
    assert found == []


def test_the_trace_example_in_docs_is_a_valid_trace():
    import json

    from labkit.trace import Trace

    text = (ROOT / "docs" / "trace.md").read_text(encoding="utf-8")
    example = json.loads(text.split("```json\n", 1)[1].split("```", 1)[0])
    trace = Trace.from_dict(example, source="docs/trace.md")
    assert trace.first("SIGTERM").extra == {"signal": "SIGQUIT"}
    assert [(s.container, s.exit_code) for s in trace.spans()] == [("sws-init", 0), ("sidecar-job", 0)]
    # what it says it is: `labkit sim run manifests/job-sidecar.yaml --json` on 1.29, so it cannot drift
    from labkit.sim import simulate

    now = simulate([str(ROOT / "manifests" / "job-sidecar.yaml")], k8s_version="1.29", seed=0).to_dict()
    assert example["events"] == now["events"] and example["observed_until"] == now["observed_until"]


def test_notebook_01_shows_the_terminal_section_of_docs_serve():
    import json

    root = Path(__file__).resolve().parents[1]
    text = (root / "docs" / "serve.md").read_text(encoding="utf-8")
    quoted = text[text.index("> ### A terminal and kubectl"):].split("\n\n#")[0].strip().split("\n")
    section = "\n".join(line[2:] if line.startswith("> ") else line.lstrip(">") for line in quoted)
    cells = json.loads((root / "notebooks" / "01-welcome-and-setup.ipynb").read_text(encoding="utf-8"))["cells"]
    shown = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    assert section in shown
