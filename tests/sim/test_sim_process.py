"""The process model: what the simulator reads from commands, images and behaviour blocks."""

from __future__ import annotations

import math

import pytest

from labkit.errors import InvalidInput
from labkit.sim import SimLab
from labkit.sim.behaviour import BEHAVIOUR_ANNOTATION, validate_behaviour
from labkit.sim.infer import build, image_name, infer
from labkit.sim.shell import read_script


def model(command=None, args=None, image="busybox:1.36", **extra):
    spec = {"name": "c", "image": image, **extra}
    if command is not None:
        spec["command"] = command
    if args is not None:
        spec["args"] = args
    return infer(spec)


def test_sleep_as_pid1_runs_then_exits_and_ignores_sigterm():
    m, warnings = model(["sleep", "30"])
    assert not warnings
    assert m.kind == "sleep" and m.runs[0].seconds == 30 and m.runs[0].exit_code == 0
    assert m.trap_delay(5) is None


def test_shell_forms():
    m = read_script("echo hi; exit 3")
    assert m.runs[0].exit_code == 3 and m.stdout == ((0.0, "hi"),)
    m = read_script('echo "test" > /tmp/info.log')
    assert m.runs[0].exit_code == 0 and m.stdout == () and m.files == {"/tmp/info.log": 0.0}
    m = read_script("sleep 2; sleep 3; false")
    assert m.runs[0].seconds == 5 and m.runs[0].exit_code == 1
    m = read_script("tail -F /var/log/x")
    assert m.runs[0].seconds is None and not m.handles_sigterm
    m = read_script("sleep infinity")
    assert m.runs[0].seconds is None


def test_the_blog_deployment_loop_ignores_sigterm():
    m = read_script('while true; do echo "test" >> /tmp/info.log; sleep 1; done')
    assert m.runs[0].seconds is None and m.loop_period == 1
    assert not m.handles_sigterm and m.trap_delay(12.3) is None


def test_a_loop_that_exits_runs_once():
    m = read_script("while true; do sleep 2; exit 4; done; echo never")
    assert m.runs[0].seconds == 2 and m.runs[0].exit_code == 4


def test_e2e_helper_traps_sigterm_at_once():
    m = read_script("trap 'sleep 5; exit 7' TERM; touch started; sleep 60 & wait $!; exit 0")
    assert m.handles_sigterm and m.sigterm_exit_after == 5 and m.sigterm_exit_code == 7
    assert m.runs[0].seconds == 60 and m.files == {"started": 0.0}
    assert m.trap_delay(10) == 0.0             # `sleep & wait` lets the trap run at once


def test_a_trap_waits_for_the_foreground_command():
    m = read_script("_term() { rm -f /tmp/ready; sleep 30; exit 0; }; trap _term SIGTERM; "
                    "touch /tmp/ready; while true; do echo hello; sleep 10; done")
    assert m.handles_sigterm and m.sigterm_exit_after == 30 and m.files_removed_by_trap == ("/tmp/ready",)
    # SIGTERM 13 s in: the loop's foreground `sleep 10` (10 s..20 s) finishes first.
    assert m.trap_delay(13) == pytest.approx(7)
    assert m.stdout_lines(0, 25) == [(0.0, "hello"), (10.0, "hello"), (20.0, "hello")]


def test_known_images():
    sws, _ = model(image="joseluisq/static-web-server:2.44.0")
    assert sws.kind == "http-server" and sws.listen_ports == (80,) and sws.handles_sigterm
    assert sws.sigterm_exit_code == 0 and sws.sigterm_exit_after < 1
    v3, _ = model(image="ghcr.io/static-web-server/static-web-server:3.0.0")
    assert v3.listen_ports == (8787,)
    pause, _ = model(image="registry.k8s.io/e2e-test-images/agnhost:2.66.1", args=["pause"])
    assert pause.kind == "pause" and pause.trap_delay(3) == 0
    assert pause.sigterm_exit_code == 2  # test/images/agnhost/pause/pause.go
    web, _ = model(image="registry.k8s.io/e2e-test-images/agnhost:2.66.1", args=["test-webserver", "--port", "8080"])
    assert web.listen_ports == (8080,)
    shell, _ = model(image="alpine:3.20")
    assert shell.runs[0].seconds is not None and shell.runs[0].exit_code == 0
    assert image_name("docker.io/library/nginx:1.27@sha256:ab") == ("nginx", "1.27")


@pytest.mark.parametrize(("command", "what"), [
    (["/app/server", "--port", "80"], "does not know"),
    (["sh", "-c", "if [ -f /x ]; then sleep 1; fi"], "cannot read"),
])
def test_unknown_commands_get_the_pid1_default_and_a_warning(command, what):
    m, warnings = model(command, image="example.com/mystery:1")
    assert m.kind == "unknown" and m.runs[0].seconds is None and m.trap_delay(1) is None
    assert len(warnings) == 1 and what in warnings[0] and BEHAVIOUR_ANNOTATION in warnings[0]
    # a copy-paste example for this very container, which parses and describes it
    assert f"{BEHAVIOUR_ANNOTATION}: '{{c: {{handles_sigterm: true, sigterm_exit_after_seconds: 1}}}}'" in warnings[0]


def test_unknown_programs_are_flagged_in_the_trace_and_the_output(capsys):
    lab = SimLab("1.29")
    lab.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "m"},
               "spec": {"containers": [{"name": "c", "image": "example.com/mystery:1"}]}})
    assert "Warning: <input>: pod/m: container c: image 'example.com/mystery:1'" in capsys.readouterr().out
    assert lab.trace().extra["warnings"][0].startswith("<input>: pod/m: container c:")


def test_probe_models_without_a_behaviour_block():
    spec = {"name": "c", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 5; touch /ready; sleep 600"],
            "readinessProbe": {"exec": {"command": ["cat", "/ready"]}},
            "livenessProbe": {"exec": {"command": ["sh", "-c", "exit 1"]}},
            "startupProbe": {"httpGet": {"port": 80}}}
    m, _ = build(spec, None)
    assert m.probes["readiness"].kind == "file" and m.files["/ready"] == 5
    assert m.probes["liveness"].kind == "failure"
    assert m.probes["startup"].kind == "failure"       # a shell script listens nowhere
    sws = {"name": "s", "image": "joseluisq/static-web-server:2", "startupProbe": {"httpGet": {"port": 80}},
           "readinessProbe": {"tcpSocket": {"port": "http"}}, "ports": [{"name": "http", "containerPort": 81}]}
    m, _ = build(sws, None)
    assert m.probes["startup"].kind == "listening" and m.probes["startup"].value == 80
    assert m.probes["readiness"].value == 81           # a named port, resolved


def test_hooks_are_read_from_lifecycle():
    spec = {"name": "c", "image": "busybox:1.36", "command": ["sleep", "600"],
            "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "sleep 3; exit 1"]}},
                          "postStart": {"sleep": {"seconds": 2}}}}
    m, _ = build(spec, None)
    assert (m.pre_stop.seconds, m.pre_stop.exit_code) == (3, 1)
    assert m.post_start.seconds == 2
    forever = {**spec, "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "while true; do sleep 0.2; done"]}}}}
    assert build(forever, None)[0].pre_stop.seconds is None


def test_a_block_naming_agnhost_pause_exits_2_on_sigterm_unless_it_says_otherwise():
    """The scenarios describe agnhost pause containers with ``process: agnhost-pause``; pause.go exits 2
    on SIGTERM (k8s.io/kubernetes v1.37.2 test/images/agnhost/pause/pause.go)."""
    spec = {"name": "c", "image": "registry.k8s.io/e2e-test-images/agnhost:2.66.1", "args": ["pause"]}
    m, _ = build(spec, {"process": "agnhost-pause", "run_seconds": None, "handles_sigterm": True})
    assert m.handles_sigterm and m.sigterm_exit_code == 2
    m, _ = build({**spec, "image": "busybox:1.36", "command": ["sh", "-c", "sleep 600"]}, {"process": "agnhost-pause"})
    assert m.sigterm_exit_code == 2  # the kind's own default, whatever the container was inferred to be
    m, _ = build(spec, {"process": "agnhost-pause", "sigterm_exit_code": 0})
    assert m.sigterm_exit_code == 0


def test_a_behaviour_block_overrides_field_by_field():
    spec = {"name": "c", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 600"]}
    m, warnings = build(spec, {"process": "e2e-helper", "run_seconds": 5, "exit_code": 2,
                               "sigterm_exit_after_seconds": 1, "sigterm_exit_code": 9})
    assert not warnings
    assert m.runs[0].seconds == 5 and m.runs[0].exit_code == 2
    assert m.handles_sigterm and m.sigterm_exit_after == 1 and m.sigterm_exit_code == 9
    m, _ = build(spec, {"runs": [{"run_seconds": 0, "exit_code": 1}, {"run_seconds": None}]})
    assert m.run(0).exit_code == 1 and m.run(1).seconds is None and m.run(5).seconds is None


@pytest.mark.parametrize(("block", "field"), [
    ({"x": {}}, "behaviour.x"),
    ({"c": {"process": "rocket"}}, "behaviour.c.process"),
    ({"c": {"run_seconds": "soon"}}, "behaviour.c.run_seconds"),
    ({"c": {"probes": {"startup": {"result": "maybe"}}}}, "behaviour.c.probes.startup.result"),
    ({"c": {"hooks": {"preStart": {}}}}, "behaviour.c.hooks.preStart"),
    ({"c": {"colour": "blue"}}, "behaviour.c"),
])
def test_bad_behaviour_blocks_name_the_field(block, field):
    with pytest.raises(InvalidInput) as err:
        validate_behaviour(block, ["c"], source="s.yaml")
    assert err.value.field == field and err.value.source == "s.yaml"


def test_the_behaviour_annotation_describes_a_container():
    lab = SimLab("1.29", quiet=True)
    lab.apply({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "a", "annotations": {BEHAVIOUR_ANNOTATION: "c: {run_seconds: 4, exit_code: 3}"}},
               "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "example.com/x:1"}]}})
    lab.wait("pod/a", "Failed", timeout=30)
    trace = lab.trace()
    assert trace.extra["warnings"] == []
    exited = trace.first("Exited")
    assert exited.exit_code == 3 and exited.t - trace.first("Started").t == pytest.approx(4)
    with pytest.raises(InvalidInput) as err:
        lab.apply({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "b", "annotations": {BEHAVIOUR_ANNOTATION: "[1, 2"}},
                   "spec": {"containers": [{"name": "c", "image": "x:1"}]}})
    assert err.value.field == f"metadata.annotations[{BEHAVIOUR_ANNOTATION}]"


def test_infinite_values_stay_infinite():
    m = read_script("sleep 1; tail -f /dev/null")
    assert m.runs[0].seconds is None
    assert any(math.isinf(seg.end) for seg in m.segments)
