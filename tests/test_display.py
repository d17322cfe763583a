"""The notebook display of traces and pod tables: what a learner reads must be right.

These tests read the content of the HTML and the text summary (each pod, each container
with its role, the exit codes and how they are judged), not just that something renders.
"""

from __future__ import annotations

import base64
import html
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from labkit.display import TraceView, trace_html, trace_text
from labkit.trace import ContainerFinal, ContainerInfo, Event, Pod, PodFinal, Trace, load_trace

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def shutdown_trace(backend: str = "sim") -> Trace:
    """Two pods: a Job whose app failed (exit 1) and whose sidecar was stopped (143), and a
    running pod whose sidecar was OOM-killed (137) with no one stopping it: a real failure."""
    trace = Trace(backend=backend, kubernetes_version="1.29.0", feature_gates={"SidecarContainers": True})
    trace.add_pod(Pod("job-failing-abc12", owner={"kind": "Job", "name": "job-failing"},
                      containers=[ContainerInfo("setup", "init"), ContainerInfo("log-shipper", "sidecar"),
                                  ContainerInfo("worker", "app")],
                      final=PodFinal("Failed", containers={
                          "setup": ContainerFinal("terminated", 0, 0, "Completed"),
                          "log-shipper": ContainerFinal("terminated", 0, 143, "Error"),
                          "worker": ContainerFinal("terminated", 2, 1, "Error"),
                      })))
    trace.add_pod(Pod("web-7d9f", containers=[ContainerInfo("proxy", "sidecar"), ContainerInfo("app", "app")],
                      final=PodFinal("Running", containers={
                          "proxy": ContainerFinal("terminated", 0, 137, "OOMKilled"),
                          "app": ContainerFinal("running", 0),
                      })))
    job, web = "job-failing-abc12", "web-7d9f"
    for event in [
        Event(0.0, "PodPhase", pod=job, phase="Pending"), Event(0.0, "PodPhase", pod=web, phase="Pending"),
        Event(0.5, "Started", pod=job, container="setup", attempt=0),
        Event(1.0, "Exited", pod=job, container="setup", exit_code=0),
        Event(1.1, "Started", pod=job, container="log-shipper", attempt=0),
        Event(1.2, "Started", pod=web, container="proxy", attempt=0),
        Event(1.3, "Started", pod=web, container="app", attempt=0),
        Event(2.0, "Started", pod=job, container="worker", attempt=0),
        Event(2.5, "Exited", pod=job, container="worker", exit_code=1),
        Event(3.0, "SIGTERM", pod=job, container="log-shipper"),
        Event(3.2, "Exited", pod=job, container="log-shipper", exit_code=143),
        Event(3.3, "PodPhase", pod=job, phase="Failed"),
        Event(4.0, "Killed", pod=web, container="proxy", exit_code=137),
    ]:
        trace.add(event)
    return trace


class _Table(HTMLParser):
    """Collects each table row as a list of (css class, text) cells."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[tuple[str, str]]] = []
        self.images: list[str] = []
        self._cell: list[str] | None = None
        self._class = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell, self._class = [], attrs.get("class") or ""
        elif tag == "img":
            self.images.append(attrs.get("src") or "")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append((self._class, "".join(self._cell).strip()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(markup: str) -> _Table:
    table = _Table()
    table.feed(markup)
    return table


def row_of(table: _Table, container: str) -> list[tuple[str, str]]:
    matches = [row for row in table.rows if ("labkit-container", container) in row]
    assert len(matches) == 1, f"expected one row for container {container!r}, got {matches}"
    return matches[0]


def texts(row) -> list[str]:
    return [text for _, text in row]


def cell_with(row, text: str) -> tuple[str, str]:
    found = [cell for cell in row if cell[1] == text]
    assert found, f"no cell {text!r} in {texts(row)}"
    return found[0]


def test_html_names_every_pod_and_container_with_role_state_restarts_and_exit():
    table = parse(trace_html(shutdown_trace(), image=False))
    header = texts(table.rows[0])
    assert header[:7] == ["Pod", "Phase", "Container", "Role", "State", "Restarts", "Exit"]
    for pod in ("job-failing-abc12", "web-7d9f"):
        assert any(pod in texts(row) for row in table.rows), f"pod {pod} missing"
    expected = {  # container -> role, state, restarts, exit
        "setup": ("init", "terminated", "0", "0 Completed"),
        "log-shipper": ("sidecar", "terminated", "0", "143 Error"),
        "worker": ("app", "terminated", "2", "1 Error"),
        "proxy": ("sidecar", "terminated", "0", "137 OOMKilled"),
        "app": ("app", "running", "0", ""),
    }
    for container, (role, state, restarts, exit_text) in expected.items():
        cells = texts(row_of(table, container))
        start = cells.index(container)
        assert cells[start + 1:start + 5] == [role, state, restarts, exit_text], cells
    first_job_row = texts(row_of(table, "setup"))
    assert first_job_row[:2] == ["job-failing-abc12", "Failed"]


def test_html_marks_a_sidecars_143_at_shutdown_as_normal_and_real_failures_as_failed():
    table = parse(trace_html(shutdown_trace(), image=False))
    shipper = row_of(table, "log-shipper")
    assert cell_with(shipper, "143 Error")[0] == "labkit-normal"
    assert cell_with(shipper, "normal at shutdown")[0] == "labkit-normal"
    worker = row_of(table, "worker")
    assert cell_with(worker, "1 Error")[0] == "labkit-failed"
    assert "normal at shutdown" not in texts(worker)
    # 137 with nobody stopping the pod (no SIGTERM, pod still Running) is not a shutdown.
    proxy = row_of(table, "proxy")
    assert cell_with(proxy, "137 OOMKilled")[0] == "labkit-failed"
    assert cell_with(row_of(table, "setup"), "0 Completed")[0] == "labkit-ok"


def test_a_real_cluster_sidecar_stopped_without_a_visible_sigterm_is_normal_when_its_pod_finished():
    """kind and real clusters cannot see signals: a finished pod means the kubelet stopped it."""
    trace = load_trace("tests/data/blog-job-trace.json")
    trace.pods[0].final.containers["sws-init"] = ContainerFinal("terminated", 0, 143, "Error")
    trace.events = [e for e in trace.events if e.type != "SIGTERM"]
    row = row_of(parse(trace_html(trace, image=False)), "sws-init")
    assert cell_with(row, "143 Error")[0] == "labkit-normal"


def test_a_sidecar_killed_after_its_liveness_probe_failed_is_a_failure_even_in_a_finished_pod():
    trace = Trace(backend="sim", kubernetes_version="1.30.0")
    trace.add_pod(Pod("p", containers=[ContainerInfo("proxy", "sidecar", ("liveness",)), ContainerInfo("app", "app")],
                      final=PodFinal("Failed", containers={"proxy": ContainerFinal("terminated", 0, 137, "Error"),
                                                           "app": ContainerFinal("terminated", 0, 0, "Completed")})))
    for event in [Event(0.0, "Started", pod="p", container="proxy", attempt=0),
                  Event(1.0, "Started", pod="p", container="app", attempt=0),
                  Event(2.0, "Exited", pod="p", container="app", exit_code=0),
                  Event(5.0, "LivenessProbeFailed", pod="p", container="proxy"),
                  Event(5.0, "SIGTERM", pod="p", container="proxy"),
                  Event(35.0, "Killed", pod="p", container="proxy", exit_code=137)]:
        trace.add(event)
    row = row_of(parse(trace_html(trace, image=False)), "proxy")
    assert cell_with(row, "137 Error")[0] == "labkit-failed"
    trace.events = [e for e in trace.events if e.type != "SIGTERM"]  # as a real cluster records it
    row = row_of(parse(trace_html(trace, image=False)), "proxy")
    assert cell_with(row, "137 Error")[0] == "labkit-failed"


def test_a_big_trace_lists_the_first_pods_and_says_how_many_more():
    trace = Trace(backend="sim", kubernetes_version="1.29.0")
    for i in range(25):
        trace.add_pod(Pod(f"web-{i:02d}", containers=[ContainerInfo("app", "app")],
                          final=PodFinal("Running", containers={"app": ContainerFinal("running")})))
    markup, text = trace_html(trace, image=False), trace_text(trace)
    assert "web-19" in markup and "web-20" not in markup and "5 more pod(s) not listed" in markup
    assert "web-19" in text and "web-20" not in text and "5 more pod(s) not listed" in text


def test_html_shows_backend_simulated_version_and_gates():
    markup = trace_html(shutdown_trace("sim"), image=False)
    assert "simulated" in markup and "not a real cluster" in markup
    assert "Kubernetes 1.29.0" in markup
    assert "SidecarContainers=true" in markup
    kind_markup = trace_html(load_trace("tests/data/blog-job-trace.json"), image=False)
    assert "kind cluster" in kind_markup and "simulated" not in kind_markup
    assert "Kubernetes 1.29.2" in kind_markup


def test_a_traces_note_is_in_both_summaries_shortened_with_the_whole_note_on_hover():
    blog = load_trace("tests/data/blog-job-trace.json")
    whole = " ".join(blog.extra["note"].split())
    lines = trace_text(blog).splitlines()
    assert lines[0] == "Trace: kind cluster, Kubernetes 1.29.2"
    assert lines[1].startswith("note: Hand-written for tests, not recorded") and lines[1].endswith("…")
    assert len(lines[1]) < len(whole) and whole.startswith(lines[1][len("note: "):-1])
    assert lines[2] == "gates: SidecarContainers=true"
    (note,) = re.findall(r'<div class="labkit-note" title="([^"]*)"><i>(.*?)</i></div>', trace_html(blog, image=False))
    assert html.unescape(note[0]) == whole and html.unescape(note[1]) == lines[1]
    trace = shutdown_trace()
    assert "note:" not in trace_text(trace) and "labkit-note" not in trace_html(trace, image=False)
    trace.extra["note"] = "<b>made up</b>"
    assert "note: <b>made up</b>" in trace_text(trace).splitlines()
    assert "<i>note: &lt;b&gt;made up&lt;/b&gt;</i>" in trace_html(trace, image=False)


def test_html_embeds_the_timeline_as_a_base64_png():
    table = parse(trace_html(shutdown_trace()))
    assert len(table.images) == 1
    match = re.fullmatch(r"data:image/png;base64,([A-Za-z0-9+/=]+)", table.images[0])
    assert match, table.images[0][:80]
    png = base64.b64decode(match.group(1), validate=True)
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) > 5000  # a real drawing, not an empty image


def test_html_escapes_text_from_the_trace():
    trace = shutdown_trace()
    trace.pods[0].final.containers["worker"] = ContainerFinal("terminated", 0, 1, "<script>alert(1)</script>")
    markup = trace_html(trace, image=False)
    assert "<script>" not in markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markup


def test_text_summary_states_the_same_facts():
    text = trace_text(shutdown_trace())
    assert "simulated" in text and "Kubernetes 1.29.0" in text and "SidecarContainers=true" in text
    lines = text.splitlines()
    assert lines[3].split() == ["POD", "PHASE", "CONTAINER", "ROLE", "STATE", "RESTARTS", "EXIT"]

    def line_of(container):
        found = [line.split(None, 7) for line in lines[4:] if line.split()[2] == container]
        assert len(found) == 1, (container, text)
        return found[0]

    assert line_of("log-shipper") == ["job-failing-abc12", "Failed", "log-shipper", "sidecar", "terminated", "0",
                                      "143", "Error (normal at shutdown)"]
    assert line_of("worker") == ["job-failing-abc12", "Failed", "worker", "app", "terminated", "2", "1",
                                 "Error (failed)"]
    assert line_of("proxy")[6:] == ["137", "OOMKilled (failed)"]
    assert line_of("app")[:6] == ["web-7d9f", "Running", "app", "app", "running", "0"]


def test_ipython_shows_a_trace_as_html_with_image_and_as_the_text_summary():
    from IPython.core.interactiveshell import InteractiveShell

    import labkit

    trace = shutdown_trace()
    shell = InteractiveShell.instance()
    assert labkit.register_notebook_views(shell)  # a kernel's shell exists before labkit is imported
    data, _ = shell.display_formatter.format(trace)
    assert data["text/plain"] == trace_text(trace)
    table = parse(data["text/html"])
    assert texts(row_of(table, "log-shipper"))[-1] == "normal at shutdown"
    assert base64.b64decode(table.images[0].split(",", 1)[1]).startswith(PNG_SIGNATURE)
    view = TraceView(trace, image=False)
    assert repr(view) == trace_text(trace)
    assert "<img" not in view._repr_html_()


def test_a_trace_without_events_shows_its_summary_and_no_image():
    trace = Trace(backend="replay", kubernetes_version="1.30.0")
    markup = trace_html(trace)
    assert "replayed trace" in markup and "<img" not in markup
    assert "0 pod(s), 0 events" in trace_text(trace)


def test_pod_tables_render_like_kubectl_get_pods_in_html_and_text():
    from labkit.display import pods_html
    from labkit.printers import PodRow, PodTable

    table = PodTable([PodRow("sidecar-job-x7k2p", "0/2", "Completed", 0, 75),
                      PodRow("web-<1>", "1/2", "CrashLoopBackOff", 4, 300, last_restart_age=130)])
    markup = pods_html(table)
    parsed = parse(markup)
    assert texts(parsed.rows[0]) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert texts(parsed.rows[1]) == ["sidecar-job-x7k2p", "0/2", "Completed", "0", "75s"]
    assert texts(parsed.rows[2]) == ["web-<1>", "1/2", "CrashLoopBackOff", "4 (2m10s ago)", "5m"]
    assert cell_with(parsed.rows[2], "CrashLoopBackOff")[0] == "labkit-failed"
    assert cell_with(parsed.rows[1], "Completed")[0] == ""
    assert "web-&lt;1&gt;" in markup and "web-<1>" not in markup
    # The text form is what kubectl prints, header first.
    assert repr(table).splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert repr(table).splitlines()[2].split() == ["web-<1>", "1/2", "CrashLoopBackOff", "4", "(2m10s", "ago)", "5m"]
    empty = PodTable([], namespace="default")
    assert "No resources found in default namespace." in pods_html(empty)
    # a notebook shows the table as this HTML: labkit registers the view, the table imports none
    from IPython.core.interactiveshell import InteractiveShell

    import labkit

    shell = InteractiveShell.instance()
    assert labkit.register_notebook_views(shell)
    assert shell.display_formatter.format(table)[0]["text/html"] == markup


def test_importing_labkit_and_its_display_stays_light():
    code = ("import sys, labkit, labkit.display, labkit.trace; "
            "heavy = [m for m in ('matplotlib', 'IPython', 'kubernetes', 'papermill', 'nbclient') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
