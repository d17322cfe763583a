"""Timeline plots: the figure's artists say what the trace says (lanes, spans, exit codes, colours)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from matplotlib.colors import same_color, to_rgba

from labkit.errors import InvalidInput
from labkit.plot import (FAILURE_COLOUR, NOTE_CHARS, PRESTOP_COLOUR, ROLE_COLOURS, STATE_LEGEND_COLOUR, plot_compare,
                         plot_trace, save_figure)
from labkit.trace import ContainerInfo, Event, Pod, Trace, load_trace


def gids(ax, prefix: str) -> list:
    """Artists of ``ax`` whose gid starts with ``prefix`` (patches, lines, texts)."""
    return [a for a in ax.get_children() if (a.get_gid() or "").startswith(prefix)]


def lane_labels(ax) -> list[str]:
    return [label.get_text() for label in ax.get_yticklabels()]


def uses_failure_colour(artist) -> bool:
    colours = []
    for getter in ("get_edgecolor", "get_facecolor", "get_color"):
        if hasattr(artist, getter):
            value = getattr(artist, getter)()
            if isinstance(value, str) or (hasattr(value, "__len__") and len(value) in (3, 4)
                                          and not hasattr(value[0], "__len__")):
                colours.append(value)
    return any(same_color(to_rgba(c), FAILURE_COLOUR) for c in colours if not isinstance(c, str) or c != "none")


@pytest.fixture
def crashloop(make_trace) -> Trace:
    """An app that fails twice, a sidecar stopped normally (143), a plain init container."""
    return make_trace([("setup", "init"), ("proxy", "sidecar", ["startup"]), ("app", "app")], [
        (0, None, "PodPhase", {"phase": "Pending"}),
        (0.2, "setup", "Started", {"attempt": 0}), (1.2, "setup", "Exited", {"exit_code": 0}),
        (2, "proxy", "Started", {"attempt": 0}), (8, "proxy", "StartupProbeSucceeded"), (8, "proxy", "Ready"),
        (8.5, "app", "Started", {"attempt": 0}), (8.5, None, "PodPhase", {"phase": "Running"}),
        (12, "app", "Exited", {"exit_code": 1}),
        (22, "app", "Started", {"attempt": 1}), (22, "app", "Restarted"), (26, "app", "Exited", {"exit_code": 1}),
        (46, "app", "Started", {"attempt": 2}), (46, "app", "Restarted"),
        (55, None, "DeleteRequested", {"grace_period_seconds": 30}),
        (55, "app", "SIGTERM"), (55.1, "app", "Exited", {"exit_code": 0}),
        (55.2, "proxy", "SIGTERM"), (55.3, "proxy", "Exited", {"exit_code": 143}),
        (55.4, None, "PodPhase", {"phase": "Failed"}), (55.6, None, "Deleted"),
    ], pod="crashy", version="1.30.0")


def test_lanes_are_the_containers_in_declaration_order(blog_trace, crashloop):
    ax = plot_trace(blog_trace).axes[0]
    assert lane_labels(ax) == ["sws-init", "sidecar-job"]
    ax = plot_trace(crashloop).axes[0]
    assert lane_labels(ax) == ["setup", "proxy", "app"]
    assert [t.get_text() for t in gids(ax, "pod-name")] == ["crashy"]


def test_one_span_patch_per_span_in_the_role_colour(crashloop):
    ax = plot_trace(crashloop).axes[0]
    patches = gids(ax, "span:")
    per_container = Counter(p.get_gid().split("/")[1].split("#")[0] for p in patches)
    expected = Counter(s.container for s in crashloop.spans())
    assert per_container == expected == Counter({"setup": 1, "proxy": 1, "app": 3})
    started = [p for p in gids(ax, "state:started")]
    assert any(same_color(p.get_facecolor(), ROLE_COLOURS["sidecar"]) for p in started)
    assert any(same_color(p.get_facecolor(), ROLE_COLOURS["app"]) for p in started)
    assert any(same_color(p.get_facecolor(), ROLE_COLOURS["init"]) for p in started)


def test_span_states_are_drawn_where_they_happen(blog_trace):
    ax = plot_trace(blog_trace).axes[0]
    sidecar_lane = 1  # row 0 is the pod's header

    def extent(gid):
        (patch,) = [p for p in gids(ax, gid) if abs(p.get_y() + p.get_height() / 2 - sidecar_lane) < 0.01]
        return round(patch.get_x(), 2), round(patch.get_x() + patch.get_width(), 2)

    assert extent("state:starting") == (1.12, 10.05)  # running, startup probe not yet passed
    assert extent("state:started") == (10.05, 11.72)
    assert extent("state:terminating") == (11.72, 11.81)  # SIGTERM -> exit
    (ready,) = gids(ax, "ready")
    assert (round(ready.get_x(), 2), round(ready.get_x() + ready.get_width(), 2)) == (10.05, 11.72)
    assert not [p for p in gids(ax, "state:starting") if abs(p.get_y() + p.get_height() / 2 - 2) < 0.01], \
        "the app has no startup probe: it is started at once"


def test_markers_sit_at_the_event_times(blog_trace, crashloop):
    ax = plot_trace(blog_trace).axes[0]
    (probe,) = gids(ax, "marker:StartupProbeSucceeded")
    (sigterm,) = gids(ax, "marker:SIGTERM")
    assert list(probe.get_xdata()) == [10.05] and list(sigterm.get_xdata()) == [11.72]
    assert not gids(ax, "marker:Killed") and not gids(ax, "marker:Restarted")
    ax = plot_trace(crashloop).axes[0]
    assert sorted(x for m in gids(ax, "marker:Restarted") for x in m.get_xdata()) == [22.0, 46.0]


def test_sigkill_is_marked_at_the_end_of_the_span(data_dir):
    ax = plot_trace(load_trace(data_dir / "traces" / "deployment-delete-1.29.json")).axes[0]
    (kill,) = gids(ax, "marker:Killed")
    assert list(kill.get_xdata()) == [50.0]
    assert [t.get_text() for t in gids(ax, "exit:")] == ["exit 0", "exit 137"]


def test_exit_codes_are_written_and_only_real_failures_use_the_failure_colour(crashloop):
    ax = plot_trace(crashloop).axes[0]
    texts = {t.get_gid(): t for t in gids(ax, "exit:")}
    assert {gid: t.get_text().split()[-1] for gid, t in texts.items()} == {
        "exit:crashy/setup#0": "0", "exit:crashy/proxy#0": "143",
        "exit:crashy/app#0": "1", "exit:crashy/app#1": "1", "exit:crashy/app#2": "0"}
    assert all(t.get_text() == f"exit {t.get_text().split()[-1]}" for t in texts.values())
    failing = {"exit:crashy/app#0", "exit:crashy/app#1", "span:crashy/app#0", "span:crashy/app#1", "phase-label:Failed"}
    in_failure_colour = {a.get_gid() for a in ax.get_children() if a.get_gid() and uses_failure_colour(a)}
    assert in_failure_colour == failing  # not the sidecar's 143 after SIGTERM, not the app's clean exit 0
    assert same_color(texts["exit:crashy/proxy#0"].get_color(), "#333333")


def test_a_sidecar_killed_after_sigterm_is_not_a_failure(data_dir):
    trace = load_trace(data_dir / "traces" / "deployment-delete-1.28.json")
    # make the sidecar the one SIGKILLed: its 137 after SIGTERM is still normal
    for event in trace.events:
        if event.container == "sws-init" and event.type == "Exited":
            event.type, event.exit_code = "Killed", 137
    ax = plot_trace(trace).axes[0]
    (sidecar_exit,) = [t for t in gids(ax, "exit:") if "sws-init" in t.get_gid()]
    assert sidecar_exit.get_text() == "exit 137" and not uses_failure_colour(sidecar_exit)


def test_pod_phases_deletion_and_workload_events_are_marked(blog_trace, data_dir):
    ax = plot_trace(blog_trace).axes[0]
    phases = [(p.get_gid(), round(p.get_x(), 2), round(p.get_x() + p.get_width(), 2)) for p in gids(ax, "phase:")]
    assert phases == [("phase:Pending", 0.0, 10.61), ("phase:Running", 10.61, 12.84), ("phase:Succeeded", 12.84, 12.91)]
    (line,) = gids(ax, "workload:JobComplete")
    assert list(line.get_xdata()) == [12.91, 12.91]
    assert [t.get_text() for t in gids(ax, "workload-label:")] == ["job/sidecar-job JobComplete"]
    ax = plot_trace(load_trace(data_dir / "traces" / "deployment-delete-1.29.json")).axes[0]
    assert [list(l.get_xdata()) for l in gids(ax, "pod-event:DeleteRequested")] == [[20.0, 20.0]]
    assert [list(l.get_xdata()) for l in gids(ax, "pod-event:Deleted")] == [[50.6, 50.6]]
    assert [t.get_text() for t in gids(ax, "workload-label:")] == ["deployment/sidecar-deploy DeploymentAvailable"]


def test_title_names_backend_and_version(blog_trace, crashloop):
    title = plot_trace(blog_trace).axes[0].get_title(loc="left")
    assert "kind" in title and "1.29.2" in title and "job/sidecar-job" in title
    title = plot_trace(crashloop, title="A crash loop").axes[0].get_title(loc="left")
    assert title.startswith("A crash loop\n") and "simulated" in title and "sim" in title and "1.30.0" in title


def test_a_traces_note_is_shown_under_the_title_so_a_hand_written_example_does_not_pass_for_a_run(
        blog_trace, crashloop):
    heading, where, version, note = plot_trace(blog_trace).axes[0].get_title(loc="left").split("\n")
    assert heading == "Container timeline: job/sidecar-job" and where == "kind cluster"
    assert version == "Kubernetes 1.29.2 · SidecarContainers=on"
    # The blog trace's note is 370 characters: cut at a word, and marked as cut.
    assert note.startswith("note: Hand-written for tests, not recorded: the blog's Job") and note.endswith("…")
    assert len(note) <= len("note: ") + NOTE_CHARS and " ".join(blog_trace.extra["note"].split()).startswith(
        note[len("note: "):-1])
    assert "note:" not in plot_trace(crashloop).axes[0].get_title(loc="left")  # no note, no line
    crashloop.extra["note"] = "Recorded\n  on a laptop."
    assert plot_trace(crashloop).axes[0].get_title(loc="left").endswith("\nnote: Recorded on a laptop.")  # short: whole
    fig = plot_compare([blog_trace, crashloop], ["blog", "crash loop"])
    assert [ax.get_title(loc="left").split("\n")[3][:22] for ax in fig.axes] == ["note: Hand-written for", "note: Recorded on a la"]


def test_legend_explains_only_the_encodings_in_the_figure(blog_trace, crashloop):
    legend = [t.get_text() for t in plot_trace(blog_trace).legends[0].get_texts()]
    assert legend == ["sidecar", "app container", "starting (hatched): postStart / startup probe pending",
                      "started (solid)", "stopping (pale): stop signal sent", "ready", "startup probe passed", "stop signal (SIGTERM)",
                      "pod phase", "Job / Deployment condition"]
    legend = [t.get_text() for t in plot_trace(crashloop).legends[0].get_texts()]
    assert "failed (non-zero exit)" in legend and "restart" in legend and "init container" in legend
    assert "deletion requested" in legend and "pod deleted" in legend
    # the full key says the same at length, with the title that explains the grey bar states
    fig = plot_trace(blog_trace, legend="full")
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "stop signal sent: SIGTERM, or the image's STOPSIGNAL / lifecycle.stopSignal" in legend
    assert "exit N: exit code (143 or 137 from a stopped sidecar: normal)" in legend
    assert fig.legends[0].get_title().get_text().startswith("bar colour: container role")
    assert not plot_trace(blog_trace, legend="none").legends
    with pytest.raises(InvalidInput, match="expected one of full, compact, none, got 'big'"):
        plot_trace(blog_trace, legend="big")


def test_the_legend_names_the_stop_signal_the_events_carry(blog_trace):
    """static-web-server's images declare STOPSIGNAL SIGQUIT: the trace's SIGTERM event says so in ``signal``."""
    for event in blog_trace.events:
        if event.type == "SIGTERM":
            event.extra["signal"] = "SIGQUIT"
    legend = [t.get_text() for t in plot_trace(blog_trace).legends[0].get_texts()]
    assert "stop signal (SIGQUIT)" in legend and not any("SIGTERM" in t for t in legend)
    app_stop = Event(11.0, "SIGTERM", pod="sidecar-job-x7k2p", container="sidecar-job")  # no key: SIGTERM
    blog_trace.events.append(app_stop)
    blog_trace.events.sort(key=lambda e: e.t)
    legend = [t.get_text() for t in plot_trace(blog_trace).legends[0].get_texts()]
    assert "stop signal (SIGQUIT, SIGTERM)" in legend


def test_a_compare_figure_says_once_where_its_traces_come_from(data_dir):
    old = load_trace(data_dir / "traces" / "deployment-delete-1.28.json")
    new = load_trace(data_dir / "traces" / "deployment-delete-1.29.json")
    fig = plot_compare([old, new], ["1.28", "1.29"], title="Deleting the pod")
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    backend = "simulated (labkit's model of the kubelet, not a real cluster)"
    assert [t.count(backend) for t in titles] == [1, 0]
    assert titles[1].startswith("1.29\nKubernetes 1.29.0")
    old.backend = "kind"  # from different places: each panel says where its trace comes from
    titles = [ax.get_title(loc="left") for ax in plot_compare([old, new], ["a", "b"]).axes]
    assert titles[0].startswith("a\nkind cluster\nKubernetes 1.28.0") and titles[1].startswith(f"b\n{backend}\n")


def legend_entries(fig) -> dict:
    """The figure legend's handles (as drawn) by the start of their label, up to the first space or colon."""
    legend = fig.legends[0]
    return {text.get_text(): handle for text, handle in zip(legend.get_texts(), legend.legend_handles)}


def entry(entries: dict, start: str):
    (found,) = [handle for label, handle in entries.items() if label.startswith(start)]
    return found


def hatch_colour(patch) -> tuple:
    """The colour a patch's hatch is drawn in (``get_hatchcolor`` is new in matplotlib 3.11)."""
    return patch.get_hatchcolor() if hasattr(patch, "get_hatchcolor") else patch._hatch_color


def pale(colour) -> tuple:
    return tuple(c + (1 - c) * 0.6 for c in to_rgba(colour)[:3])


def test_the_full_legend_shows_bar_states_drawn_like_the_bars_in_a_neutral_grey(blog_trace):
    fig = plot_trace(blog_trace, legend="full")
    ax, entries = fig.axes[0], legend_entries(fig)
    title = fig.legends[0].get_title().get_text()
    assert title.startswith("bar colour: container role · bar fill: state") and "grey here" in title
    grey = to_rgba(STATE_LEGEND_COLOUR)
    assert grey[0] == grey[1] == grey[2] and not any(same_color(grey, c) for c in ROLE_COLOURS.values())
    sidecar = ROLE_COLOURS["sidecar"]
    bars = {p.get_gid(): p for p in gids(ax, "state:") if abs(p.get_y() + p.get_height() / 2 - 1) < 0.01}
    # the role entry is the role's solid bar
    assert same_color(entry(entries, "sidecar").get_facecolor(), sidecar)
    # starting: white, hatched in the colour (role in the bar, grey in the legend)
    legend_starting, bar_starting = entry(entries, "starting (hatched)"), bars["state:starting"]
    assert legend_starting.get_hatch() == bar_starting.get_hatch() == "////"
    assert same_color(legend_starting.get_facecolor(), "white") and same_color(bar_starting.get_facecolor(), "white")
    assert same_color(hatch_colour(legend_starting), grey) and same_color(hatch_colour(bar_starting), sidecar)
    # started: solid
    assert same_color(entry(entries, "started (solid)").get_facecolor(), grey)
    assert same_color(bars["state:started"].get_facecolor(), sidecar)
    # terminating: the same colour, paled the same way
    legend_terminating = entry(entries, "terminating (pale)")
    assert same_color(legend_terminating.get_facecolor(), pale(grey))
    assert same_color(bars["state:terminating"].get_facecolor(), pale(sidecar))
    # and it does not pass for the pod phase strip's swatch
    phase = entry(entries, "pod phase")
    assert not same_color(phase.get_edgecolor(), legend_terminating.get_edgecolor())
    assert phase.get_height() < legend_terminating.get_height()


def stuck_in_init(make_trace, observed_until):
    """A pod whose plain init container never finishes: nothing happens after 1 s."""
    trace = make_trace([("setup", "init"), ("app", "app")], [
        (0, None, "PodPhase", {"phase": "Pending"}), (1, "setup", "Started", {"attempt": 0})], pod="stuck")
    trace.observed_until = observed_until
    return trace


def test_a_trace_watched_past_its_last_event_runs_to_where_watching_ended(make_trace):
    fig = plot_trace(stuck_in_init(make_trace, 60.0))
    ax = fig.axes[0]
    (setup,) = gids(ax, "span:stuck/setup")
    assert (setup.get_x(), setup.get_x() + setup.get_width()) == (1.0, 60.0)  # still running: to the end
    (running,) = gids(ax, "marker:running")
    assert list(running.get_xdata()) == [60.0]
    (pending,) = gids(ax, "phase:Pending")
    assert pending.get_x() + pending.get_width() == 60.0
    (end,) = gids(ax, "observed-until")
    assert list(end.get_xdata()) == [60.0, 60.0] and ax.get_xlim()[1] > 60
    assert [t.get_text() for t in gids(ax, "label:observed-until")] == ["trace ends: watched until 60 s"]
    assert {"still running", "end of the trace"} <= set(legend_entries(fig))
    # without observed_until the same trace ends at its last event
    ax = plot_trace(stuck_in_init(make_trace, None)).axes[0]
    assert not gids(ax, "observed-until") and ax.get_xlim()[1] < 5


def test_no_end_line_when_watching_ended_with_the_last_event(blog_trace):
    blog_trace.observed_until = blog_trace.events[-1].t
    assert not gids(plot_trace(blog_trace).axes[0], "observed-until")


def test_compare_shares_the_longest_watched_time(make_trace, blog_trace):
    fig = plot_compare([blog_trace, stuck_in_init(make_trace, 90.0)])
    top, bottom = fig.axes
    assert top.get_xlim() == bottom.get_xlim() and top.get_xlim()[1] > 90
    assert not gids(top, "observed-until") and gids(bottom, "observed-until")
    (sidecar,) = gids(top, "span:sidecar-job-x7k2p/sws-init")
    assert sidecar.get_x() + sidecar.get_width() == pytest.approx(11.81)  # its own end, not the other trace's


def prestop_trace(make_trace, events, observed_until=None):
    trace = make_trace([("proxy", "sidecar"), ("app", "app")], [
        (0, "proxy", "Started", {"attempt": 0}), (1, "app", "Started", {"attempt": 0}), *events])
    trace.observed_until = observed_until
    return trace


def band(ax, container: str) -> tuple[float, float]:
    (patch,) = gids(ax, f"prestop:web/{container}#0")
    return round(patch.get_x(), 2), round(patch.get_x() + patch.get_width(), 2)


def test_a_prestop_hook_is_drawn_as_long_as_it_ran(make_trace):
    # the simulator: PreStop, then SIGTERM when the hook is done (or out of time), then the exit
    ax = plot_trace(prestop_trace(make_trace, [
        (20, "proxy", "PreStop"), (25, "proxy", "SIGTERM"), (26, "proxy", "Exited", {"exit_code": 0})])).axes[0]
    assert band(ax, "proxy") == (20.0, 25.0)
    assert same_color(gids(ax, "prestop:")[0].get_facecolor(), PRESTOP_COLOUR)
    (square,) = gids(ax, "marker:PreStop")
    assert list(square.get_xdata()) == [20.0]
    # a real cluster sees the hook begin (the Killing Event) but not the signal: at most up to the exit, paler
    fig = plot_trace(prestop_trace(make_trace, [
        (20, "proxy", "PreStop", {"source": "event", "resolution_s": 1.0}),
        (27, "proxy", "Exited", {"exit_code": 0, "source": "status", "resolution_s": 1.0})]))
    ax = fig.axes[0]
    assert band(ax, "proxy") == (20.0, 27.0)
    assert not same_color(gids(ax, "prestop:")[0].get_facecolor(), PRESTOP_COLOUR)
    assert "preStop hook (at most this long)" in legend_entries(fig)
    assert "preStop hook (until the stop signal)" not in legend_entries(fig)
    # still running when the trace ended
    ax = plot_trace(prestop_trace(make_trace, [(20, "proxy", "PreStop")], observed_until=50.0)).axes[0]
    assert band(ax, "proxy") == (20.0, 50.0)
    # no hook, no band; a SIGTERM before the hook began does not end it
    ax = plot_trace(prestop_trace(make_trace, [(10, "app", "SIGTERM"), (10.5, "app", "Exited", {"exit_code": 0})])).axes[0]
    assert not gids(ax, "prestop:")


def test_the_hanging_prestop_scenario_shows_each_hook_running_until_sigterm(data_dir):
    from labkit.sim.run import simulate

    trace = simulate([data_dir / "scenarios" / "sidecar-prestop-hang-all-killed-together.yaml"], k8s_version="1.29")
    fig = plot_trace(trace)
    ax = fig.axes[0]
    bands = {p.get_gid().split("/")[1].split("#")[0]: p for p in gids(ax, "prestop:")}
    assert sorted(bands) == ["restartable-init-1", "restartable-init-2", "restartable-init-3"]
    for name, patch in bands.items():
        began = trace.first("PreStop", container=name).t
        signalled = trace.first("SIGTERM", container=name).t
        assert (patch.get_x(), patch.get_x() + patch.get_width()) == pytest.approx((began, signalled))
        assert signalled - began > 25  # the hook hung until the grace period was nearly used up
        assert same_color(patch.get_facecolor(), PRESTOP_COLOUR)
    labels = set(legend_entries(fig))
    assert "preStop hook (until the stop signal)" in labels and "preStop hook began" not in labels


def test_the_pod_ready_condition_is_a_strip_under_the_header(make_trace, data_dir):
    trace = make_trace([("proxy", "sidecar"), ("app", "app")], [
        (0, "proxy", "Started"), (1, "app", "Started"), (2, None, "PodPhase", {"phase": "Running"}),
        (5, None, "PodReady"), (9, None, "PodNotReady"), (12, None, "PodReady"),
        (15, None, "DeleteRequested", {"grace_period_seconds": 30}), (18, None, "Deleted")])
    fig = plot_trace(trace)
    strips = gids(fig.axes[0], "pod-ready")
    assert [(s.get_x(), s.get_x() + s.get_width()) for s in strips] == [(5.0, 9.0), (12.0, 18.0)]  # open: to deletion
    assert all(0 < s.get_y() < 0.5 for s in strips)  # under the header row (row 0), above the first lane
    assert "pod Ready" in legend_entries(fig)
    ax = plot_trace(load_trace(data_dir / "traces" / "deployment-delete-1.29.json")).axes[0]
    assert len(gids(ax, "pod-ready")) == 1
    assert not gids(plot_trace(stuck_in_init(make_trace, 60.0)).axes[0], "pod-ready")


def test_a_container_the_api_still_reports_ready_after_its_exit_gets_a_pale_strip_to_that_status(data_dir, make_trace):
    """Issue 20 point 10: the pod's Ready strip ran on past its containers' bars with nothing to say
    why. A deleted pod's status is rewritten only once every container has stopped (docs/timing.md):
    the pale strip shows each container's ready flag as the API kept it, up to the status that
    cleared it; recorded on labkit's node."""
    trace = load_trace(data_dir / "traces" / "node-1.37-readiness-false-during-termination.json")
    fig = plot_trace(trace)
    ax = fig.axes[0]
    spans = {s.container: s for s in trace.spans()}
    (pale,) = gids(ax, "ready-reported:")
    app = spans["main"]
    assert pale.get_gid() == f"ready-reported:{app.pod}/main#0"
    assert (pale.get_x(), pale.get_x() + pale.get_width()) == pytest.approx((app.end, app.ready_reported_until))
    (app_ready,) = [p for p in gids(ax, "ready") if p.get_gid() == "ready" and p.get_y() == pale.get_y()]
    assert app_ready.get_x() + app_ready.get_width() == pytest.approx(app.end)  # the dark strip ends with the bar
    assert "ready, still reported after exit" in legend_entries(fig)
    # a Job's app that exits by itself is reported at the next sync: no pale strip (notebook 10's case)
    job = make_trace([("proxy", "sidecar"), ("app", "app")], [
        (0, "proxy", "Started", {"attempt": 0}), (0.5, "proxy", "Ready"), (1, "app", "Started", {"attempt": 0}),
        (1.5, "app", "Ready"), (1.5, None, "PodReady"), (5, "app", "Exited", {"exit_code": 0}),
        (5, "app", "NotReady"), (5, None, "PodNotReady"), (5.1, "proxy", "SIGTERM"),
        (5.2, "proxy", "Exited", {"exit_code": 0}), (5.3, "proxy", "NotReady")])
    ax = plot_trace(job).axes[0]
    (proxy_pale,) = gids(ax, "ready-reported:")
    assert proxy_pale.get_width() == pytest.approx(0.1)  # the sidecar's exit, reported 0.1 s later
    assert not gids(plot_trace(load_trace(data_dir / "traces" / "legacy-job-never-completes.json")).axes[0],
                    "ready-reported:")


def test_a_pale_strip_too_narrow_to_see_gets_no_legend_key():
    """Notebook 03's deleted Deployment: the app's ready flag is reported 0.05 s after its exit, a
    strip of half a point on a 47 s axis; the legend named it although nobody could see it."""
    from labkit.sim import SimLab

    with SimLab(quiet=True) as lab:
        lab.apply(str(Path(__file__).parents[1] / "manifests" / "deployment-sidecar.yaml"))
        lab.wait("deployment/sidecar-deploy", "Available", timeout=120)
        lab.sleep(5)
        lab.delete("deployment/sidecar-deploy", timeout=120)
        trace = lab.trace()
    [app] = [s for s in trace.spans() if s.container == "sidecar-deploy"]
    assert app.ready_reported_until - app.end == pytest.approx(0.05)
    fig = plot_trace(trace)
    assert gids(fig.axes[0], "ready-reported:")                              # drawn, as the data says
    assert "ready, still reported after exit" not in legend_entries(fig)     # but no key for what cannot be seen


def test_a_container_still_running_at_the_end_has_no_exit_code(data_dir):
    ax = plot_trace(load_trace(data_dir / "traces" / "legacy-job-never-completes.json")).axes[0]
    assert [t.get_gid() for t in gids(ax, "exit:")] == ["exit:legacy-sidecar-job-q8w4n/sidecar-job#0"]
    (running,) = gids(ax, "marker:running")
    assert list(running.get_xdata()) == [9.93]
    assert not gids(ax, "workload:")  # the legacy Job never completes


def test_probe_runs_only_when_asked(make_trace):
    trace = make_trace([("proxy", "sidecar", ["startup"])], [
        (0, "proxy", "Started", {"attempt": 0}), (1, "proxy", "StartupProbeRun"), (11, "proxy", "StartupProbeRun"),
        (11, "proxy", "StartupProbeSucceeded")])
    assert not gids(plot_trace(trace).axes[0], "marker:probe-run")
    runs = gids(plot_trace(trace, show_probe_runs=True).axes[0], "marker:probe-run")
    assert sorted(x for r in runs for x in r.get_xdata()) == [1.0, 11.0]


def many_pods(n: int) -> Trace:
    trace = Trace("sim", "1.29.0", {"SidecarContainers": True})
    for i in range(n):
        trace.add_pod(Pod(f"sidecar-job-{i:04d}", owner={"kind": "Job", "name": "sidecar-job"},
                          containers=[ContainerInfo("sws-init", "sidecar", ("startup",)),
                                      ContainerInfo("sidecar-job", "app")]))
    for i in range(n):
        pod, t = f"sidecar-job-{i:04d}", i * 0.01
        for dt, container, kind, extra in [(0, "sws-init", "Started", {"attempt": 0}),
                                           (10, "sws-init", "StartupProbeSucceeded", {}),
                                           (10.4, "sidecar-job", "Started", {"attempt": 0}),
                                           (10.5, "sidecar-job", "Exited", {"exit_code": 0}),
                                           (11.5, "sws-init", "SIGTERM", {}),
                                           (11.6, "sws-init", "Exited", {"exit_code": 0})]:
            trace.events.append(Event(t + dt, kind, pod=pod, container=container, **extra))
    trace.events.sort(key=lambda e: e.t)
    return trace


def test_many_pods_are_capped_and_the_figure_says_so():
    trace = many_pods(1000)
    ax = plot_trace(trace, max_pods=5).axes[0]
    assert lane_labels(ax) == ["sws-init", "sidecar-job"] * 5
    assert [t.get_text() for t in gids(ax, "pod-name")] == [f"sidecar-job-{i:04d}" for i in range(5)]
    (note,) = gids(ax, "more-pods")
    assert note.get_text().startswith("+995 more pods not shown")
    assert len(gids(ax, "span:")) == 10


def test_pods_are_chosen_by_name_prefix():
    trace = many_pods(30)
    ax = plot_trace(trace, pods=["sidecar-job-002"]).axes[0]
    assert [t.get_text() for t in gids(ax, "pod-name")] == [f"sidecar-job-{i:04d}" for i in range(20, 28)]
    assert gids(ax, "more-pods")[0].get_text().startswith("+2 more pods")
    with pytest.raises(InvalidInput, match="no pod named or starting with 'web'") as info:
        plot_trace(trace, pods="web")
    assert info.value.field == "pods"
    with pytest.raises(InvalidInput, match="at least 1"):
        plot_trace(trace, max_pods=0)


def test_compare_stacks_traces_on_a_shared_time_axis(data_dir):
    old = load_trace(data_dir / "traces" / "deployment-delete-1.28.json")
    new = load_trace(data_dir / "traces" / "deployment-delete-1.29.json")
    fig = plot_compare([old, new], ["1.28", "1.29"], title="Deleting the pod")
    top, bottom = fig.axes
    assert top.get_shared_x_axes().joined(top, bottom)
    assert top.get_xlim() == bottom.get_xlim() and top.get_xlim()[1] > 50.6
    assert top.get_title(loc="left").split("\n")[2:4] == ["1.28", "Kubernetes 1.28.0 · SidecarContainers=on"]
    assert bottom.get_title(loc="left").startswith("1.29\n") and "1.29.0" in bottom.get_title(loc="left")
    assert fig.get_suptitle() == "Deleting the pod"
    assert lane_labels(top) == lane_labels(bottom) == ["sws-init", "sidecar-deploy"]
    assert len(fig.legends) == 1


def test_compare_needs_two_traces_and_matching_labels(blog_trace):
    with pytest.raises(InvalidInput, match="at least two traces"):
        plot_compare([blog_trace])
    with pytest.raises(InvalidInput, match="2 labels for 3 traces"):
        plot_compare([blog_trace] * 3, ["a", "b"])
    fig = plot_compare([blog_trace, blog_trace])
    assert all("kind, Kubernetes 1.29.2" in ax.get_title(loc="left") for ax in fig.axes)


def test_plot_into_an_existing_axes_and_trace_plot(blog_trace):
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2)
    try:
        assert plot_trace(blog_trace, ax=right) is fig
        assert lane_labels(right) == ["sws-init", "sidecar-job"]
        assert len(gids(right, "span:")) == 2 and not gids(left, "span:")  # the other Axes is left alone
        assert right.get_legend() is not None
    finally:
        plt.close(fig)
    assert lane_labels(plot_trace(blog_trace).axes[0]) == ["sws-init", "sidecar-job"]


def test_save_figure_writes_png_or_svg(blog_trace, tmp_path: Path):
    fig = plot_trace(blog_trace)
    png = save_figure(fig, tmp_path / "out" / "job.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = save_figure(fig, tmp_path / "job.SVG")
    assert b"<svg" in svg.read_bytes()[:2000]
    with pytest.raises(InvalidInput, match=r"cannot write a \.jpg figure") as info:
        save_figure(fig, tmp_path / "job.jpg")
    assert info.value.source == str(tmp_path / "job.jpg")
    assert not (tmp_path / "job.jpg").exists()


def test_a_deletion_reported_from_two_sources_is_drawn_once(make_trace):
    """A real cluster reports the request from the watch and from deletionTimestamp (whole seconds)."""
    trace = make_trace([("app", "app")], [
        (0, "app", "Started"), (58, None, "DeleteRequested", {"source": "status", "resolution_s": 1.0}),
        (58.21, None, "DeleteRequested", {"source": "watch"}), (88, "app", "Killed", {"exit_code": 137}),
        (89.3, None, "Deleted", {"source": "watch"})])
    ax = plot_trace(trace).axes[0]
    assert [list(line.get_xdata()) for line in gids(ax, "pod-event:DeleteRequested")] == [[58.0, 58.0]]
    assert [list(line.get_xdata()) for line in gids(ax, "pod-event:Deleted")] == [[89.3, 89.3]]


def test_an_exit_code_with_no_room_beside_or_inside_its_bar_is_written_whole_above_it(make_trace):
    """A crash loop's first run is short and its restart close: "exit 1", never a bare "1"."""
    trace = make_trace([("proxy", "sidecar"), ("app", "app")], [
        (0, "app", "Started", {"attempt": 0}), (1.0, "proxy", "Started", {"attempt": 0}),
        (1.5, "proxy", "Exited", {"exit_code": 1}), (1.6, "proxy", "Started", {"attempt": 1}),
        (1.6, "proxy", "Restarted"), (60, "app", "Exited", {"exit_code": 0})])
    ax = plot_trace(trace).axes[0]
    (label,) = [t for t in gids(ax, "exit:") if t.get_gid().endswith("proxy#0")]
    assert label.get_text() == "exit 1" and uses_failure_colour(label)
    assert label.xy == (1.5, 1 - 0.28) and label.get_va() == "bottom"  # over the bar's end, lane 1's top edge


def test_markers_move_aside_but_never_past_the_lanes_next_event(make_trace):
    """The sidecar's probe passes, its stop signal follows 0.1 s later and it exits 0.1 s after that: at this
    scale the stop signal cannot move right of the probe's marker without passing the exit, so it stacks above."""
    trace = make_trace([("proxy", "sidecar", ["startup"]), ("app", "app")], [
        (0, "app", "Started", {"attempt": 0}), (1.0, "proxy", "Started", {"attempt": 0}),
        (10.0, "proxy", "StartupProbeSucceeded"), (10.1, "proxy", "SIGTERM"),
        (10.2, "proxy", "Exited", {"exit_code": 0}), (60, "app", "Exited", {"exit_code": 0})])
    ax = plot_trace(trace).axes[0]
    (probe,) = gids(ax, "marker:StartupProbeSucceeded")
    (signal,) = gids(ax, "marker:SIGTERM")
    shown = lambda line: line.get_transform().transform((line.get_xdata()[0], line.get_ydata()[0]))  # noqa: E731
    exit_x = ax.transData.transform((10.2, 0))[0]
    assert shown(signal)[0] <= exit_x  # drawn before the exit, where the signal happened
    assert shown(signal)[0] == pytest.approx(ax.transData.transform((10.1, 0))[0])
    assert shown(signal)[1] > shown(probe)[1] + 5  # moved up (display y grows upwards), clear of the probe's marker
    # with room before the next event it moves right instead, side by side
    trace = make_trace([("proxy", "sidecar", ["startup"]), ("app", "app")], [
        (0, "app", "Started", {"attempt": 0}), (1.0, "proxy", "Started", {"attempt": 0}),
        (10.0, "proxy", "StartupProbeSucceeded"), (10.1, "proxy", "SIGTERM"),
        (30, "proxy", "Exited", {"exit_code": 0}), (60, "app", "Exited", {"exit_code": 0})])
    ax = plot_trace(trace).axes[0]
    (probe,), (signal,) = gids(ax, "marker:StartupProbeSucceeded"), gids(ax, "marker:SIGTERM")
    assert shown(signal)[1] == pytest.approx(shown(probe)[1]) and shown(signal)[0] > shown(probe)[0] + 5


def test_plain_init_containers_are_not_drawn_in_a_colour_near_the_failure_colour():
    from matplotlib.colors import to_rgb

    distance = sum((a - b) ** 2 for a, b in zip(to_rgb(ROLE_COLOURS["init"]), to_rgb(FAILURE_COLOUR))) ** 0.5
    assert distance > 0.8  # the old amber (#E69F00) was 0.26 from the vermillion (#D55E00)


def test_the_full_key_shows_every_encoding_once():
    from labkit.plot import ALL_LEGEND_KEYS, plot_legend

    fig = plot_legend()
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(labels) == len(set(labels)) == len(ALL_LEGEND_KEYS)
    assert labels[:3] == ["sidecar (init container, restartPolicy: Always)", "init container", "app container"]
    assert [t.get_text() for t in fig.texts] == ["How to read a timeline: the full key"]
    assert [t.get_text() for t in plot_legend(["role:app", "marker:Killed"]).legends[0].get_texts()] == [
        "app container", "SIGKILL (grace period over)"]
    with pytest.raises(InvalidInput, match="unknown legend entries role:proxy"):
        plot_legend(["role:proxy"])


def test_a_sidecar_stays_starting_until_its_poststart_hook_returned():
    """Issue 20 point 9: notebook 05's claim 4 figure drew `proxy` solid while its hook ran."""
    from labkit.notebook import repo_path
    from labkit.sim.run import simulate

    trace = simulate([repo_path("manifests/claims/4-poststart.yaml")], k8s_version="1.36", until_seconds=30)
    pod = trace.pods[0]
    began = next(e.t for e in trace.events if e.container == "proxy" and e.type == "PostStart")
    done = next(e.t for e in trace.events if e.container == "proxy" and e.type == "PostStartDone")
    assert done - began >= 6                       # the manifest's `sleep 6`
    ax = plot_trace(trace).axes[0]
    lane = ax.get_yticks()[lane_labels(ax).index("proxy")]

    def on_lane(gid):
        return [p for p in gids(ax, gid) if abs(p.get_y() + p.get_height() / 2 - lane) < 0.3]

    (starting,) = on_lane("state:starting")
    started = on_lane("state:started")
    proxy_start = next(e.t for e in trace.events if e.container == "proxy" and e.type == "Started")
    assert starting.get_x() == pytest.approx(proxy_start)
    assert starting.get_x() + starting.get_width() == pytest.approx(done)
    assert started and min(p.get_x() for p in started) == pytest.approx(done)
    assert pod.name


def test_the_key_tells_every_encoding_apart_and_fits(blog_trace):
    """Issue 20 point 11: "sidecar" and "started" had identical swatches, "stopping" was
    sidecar-blue, "exit N" ran off the key's right edge, a narrow phase had no name, and the
    README drew the restart as an open circle while the figures draw a filled one."""
    fig = plot_trace(blog_trace)
    legend = fig.legends[0]
    swatches = dict(zip([t.get_text() for t in legend.get_texts()], legend.legend_handles))
    sidecar, started = swatches["sidecar"], swatches["started (solid)"]
    assert not same_color(sidecar.get_facecolor(), started.get_facecolor())
    assert same_color(swatches["stopping (pale): stop signal sent"].get_facecolor(), pale(STATE_LEGEND_COLOUR))

    from labkit.plot import MARKERS, plot_legend
    key = plot_legend()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(key)
    canvas.draw()                                  # lays the legend out
    renderer = canvas.get_renderer()
    right = key.bbox.x1
    overflowing = [t.get_text() for t in key.legends[0].get_texts() if t.get_window_extent(renderer).x1 > right]
    assert overflowing == []

    ax = plot_trace(blog_trace).axes[0]
    phases = [e.phase for e in blog_trace.events if e.type == "PodPhase"]
    assert sorted(t.get_gid().split(":", 1)[1] for t in gids(ax, "phase-label:")) == sorted(phases)

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith("| ▲ ▼ ✖"))
    assert MARKERS["Restarted"][0] == "o" and "●" in row and "○" not in row      # drawn filled


@pytest.mark.parametrize("version", ["1.29", "1.37"])
def test_the_compact_legend_fits_inside_the_figure(version):
    """On 1.36+ the blog's app is reported ready for a moment after it exits, which adds the
    pale-strip key: four columns of those labels were wider than the figure and got cut off."""
    from labkit.sim import simulate

    fig = plot_trace(simulate([str(Path(__file__).parents[1] / "manifests" / "job-sidecar.yaml")], k8s_version=version))
    fig.canvas.draw()
    box, legend = fig.bbox, fig.legends[0].get_window_extent()
    assert box.x0 <= legend.x0 and legend.x1 <= box.x1


def test_an_empty_trace_draws_a_titled_figure_that_says_it_has_no_pods(tmp_path: Path):
    """A manifest the API server refused leaves a trace without pods (notebook 5, a version
    without the gate); drawn on its own it used to fail in the legend's column count, then drew a
    blank axis."""
    trace = Trace("sim", "1.28.0", {"SidecarContainers": False})
    fig = plot_trace(trace, title="nothing ran")
    assert not fig.legends and "nothing ran" in fig.axes[0].get_title(loc="left")
    [said] = [t for t in fig.axes[0].texts if t.get_gid() == "no-pods"]
    assert said.get_text() == "no pods in this trace"
    assert save_figure(fig, tmp_path / "empty.png").stat().st_size > 0
