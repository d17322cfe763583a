"""``labkit sim run``: the timeline table, ``--json``, ``--plot``, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from labkit.cli import main
from labkit.versions import DEFAULT_K8S_VERSION
from labkit.sim import simulate
from labkit.sim.cli import closing_line
from labkit.trace import ContainerInfo, Event, Pod, PodFinal, Trace

ROOT = Path(__file__).parents[2]
JOB = str(ROOT / "manifests" / "job-sidecar.yaml")
DEPLOYMENT = str(ROOT / "manifests" / "deployment-sidecar.yaml")
SCENARIO = str(ROOT / "tests" / "data" / "scenarios" / "sidecars-reverse-order-after-main-completes.yaml")


def test_the_command_runs_as_a_program_and_prints_json():
    result = subprocess.run([sys.executable, "-m", "labkit", "sim", "run", JOB, "--json"],
                            capture_output=True, text=True, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    trace = Trace.from_dict(json.loads(result.stdout))
    assert trace.backend == "sim" and trace.kubernetes_version == "1.36.0"   # the default version
    assert trace.first("JobComplete").object == "job/sidecar-job"


def test_table_output(capsys):
    assert main(["sim", "run", JOB, "--k8s-version", "1.33"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("Simulation of Kubernetes 1.33.0 (feature gates: SidecarContainers=true), seed 0: "
                      "labkit simulator — a model of the kubelet, not a cluster.")
    header = next(line for line in out if line.strip().startswith("t "))
    assert header.split() == ["t", "pod", "container", "event", "details"]
    assert any("sws-init" in line and "StartupProbeSucceeded" in line for line in out)
    assert any("job/sidecar-job" in line and "JobComplete" in line for line in out)
    final = out.index("Final pod status:")
    assert out[final + 1].endswith(": Succeeded")
    assert "sidecar  terminated exit 0 (Completed), restarts 0" in out[final + 2]


def test_1_28_is_the_blogs_cluster_and_the_first_line_says_so(capsys):
    assert main(["sim", "run", JOB, "--k8s-version", "1.28"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("Simulation of Kubernetes 1.28.0 (feature gates: SidecarContainers=true, as the blog's kind "
                      "config sets it; --feature-gate SidecarContainers=false for 1.28's default), seed 0: "
                      "labkit simulator — a model of the kubelet, not a cluster.")
    assert any("job/sidecar-job" in line and "JobComplete" in line for line in out)


def test_1_28_with_the_gate_off_says_it_is_the_default(tmp_path, capsys):
    legacy = str(ROOT / "manifests" / "legacy" / "job-legacy-sidecar.yaml")
    args = ["sim", "run", legacy, "--k8s-version", "1.28", "--feature-gate", "SidecarContainers=false",
            "--until-seconds", "20"]
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith(
        "Simulation of Kubernetes 1.28.0 (feature gates: SidecarContainers=false, 1.28's default; "
        "the blog's kind config sets SidecarContainers=true), seed 0")


def test_mixed_files_gates_delete_after_and_seed(capsys):
    args = ["sim", "run", JOB, DEPLOYMENT, SCENARIO, "--k8s-version", "1.28.7",
            "--feature-gate", "SidecarContainers=true", "--delete-after", "20", "--seed", "9", "--json"]
    assert main(args) == 0
    trace = Trace.from_dict(json.loads(capsys.readouterr().out))
    assert trace.kubernetes_version == "1.28.7" and trace.feature_gates == {"SidecarContainers": True}
    assert trace.extra["seed"] == 9
    assert {p.owner["kind"] if p.owner else "Pod" for p in trace.pods} == {"Job", "Deployment", "Pod"}
    deleted = [p for p in trace.pods if p.final.deleted]
    assert len(deleted) >= 2                   # the Job's pod and the Deployment's pod went
    assert trace.duration < 300                # ended once everything was gone


def test_until_seconds_bounds_a_never_ending_workload(capsys):
    assert main(["sim", "run", DEPLOYMENT, "--until-seconds", "42", "--json"]) == 0
    trace = Trace.from_dict(json.loads(capsys.readouterr().out))
    assert trace.duration <= 42 and trace.pods[0].final.phase == "Running"


def test_plot_writes_a_png(tmp_path, capsys):
    target = tmp_path / "timeline.png"
    assert main(["sim", "run", JOB, "--plot", str(target)]) == 0
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(target) in capsys.readouterr().out


@pytest.mark.parametrize(("args", "message"), [
    (["sim", "run", "nope.yaml"], "nope.yaml: no such file"),
    (["sim", "run", JOB, "--k8s-version", "2.0"], "labkit: error: --k8s-version: unsupported Kubernetes version '2.0'"),
    (["sim", "run", JOB, "--k8s-version", "abc"], "labkit: error: --k8s-version: not a Kubernetes version: 'abc'"),
    (["sim", "run", JOB, "--until-seconds", "-5"], "labkit: error: --until-seconds: expected seconds > 0, got -5.0"),
    (["sim", "run", JOB, "--delete-after", "-1"], "labkit: error: --delete-after: expected seconds >= 0, got -1.0"),
    (["sim", "run", JOB, "--feature-gate", "Foo=true"], "labkit: error: --feature-gate: unknown feature gate 'Foo'"),
    (["sim", "run", JOB, "--k8s-version", "1.33", "--feature-gate", "SidecarContainers=false"],
     "labkit: error: --feature-gate: cannot set feature gate SidecarContainers to false"),
    (["sim", "run", JOB, "--feature-gate", "SidecarContainers"], "--feature-gate: expected NAME=true or NAME=false"),
    (["sim", "run", JOB, "--k8s-version", "1.37", "--feature-gate", "SidecarContainers=true"],
     "unrecognized feature gate: SidecarContainers (removed in 1.37"),
    (["sim", "run", JOB, "--k8s-version", "1.28", "--feature-gate", "SidecarContainers=false"],
     "job-sidecar.yaml: spec.template.spec.initContainers[0].startupProbe: Forbidden"),
])
def test_bad_input_exits_2_with_one_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err


def test_1_36_still_accepts_the_locked_gate(capsys):
    # The gate was removed in 1.37 (kubernetes/kubernetes#137755), not 1.36, where =true is accepted.
    assert main(["sim", "run", JOB, "--k8s-version", "1.36", "--feature-gate", "SidecarContainers=true"]) == 0
    assert "sidecar-job" in capsys.readouterr().out


def test_a_bad_scenario_names_the_field(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(SCENARIO).read_text().replace("process: e2e-helper", "process: teleport", 1))
    assert main(["sim", "run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: behaviour.restartable-init-1.process: unknown process 'teleport'" in err


def test_an_empty_file_is_named(tmp_path, capsys):
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n---\n")
    assert main(["sim", "run", str(empty)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"labkit: error: {empty}: nothing to simulate: no Kubernetes objects or scenarios")


def test_documents_in_a_file_are_counted_from_1(tmp_path, capsys):
    pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {}\nspec:\n  containers:\n    - {{name: app, image: alpine:3.20}}\n"
    multi = tmp_path / "multi.yaml"
    multi.write_text(pod.format("fine") + "---\n# the second pod\n" + pod.format("Bad_Name"))
    assert main(["sim", "run", str(multi)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"labkit: error: {multi} (document 2, line 10): metadata.name: Invalid value: \"Bad_Name\"")


def test_from_python_the_errors_name_the_parameters():
    from labkit.errors import InvalidInput

    for kwargs, field in [({"k8s_version": "2.0"}, "k8s_version"), ({"until_seconds": -5}, "until_seconds"),
                          ({"delete_after": -1}, "delete_after"), ({"feature_gates": {"Foo": True}}, "feature_gates")]:
        with pytest.raises(InvalidInput) as err:
            simulate([JOB], **{"k8s_version": "1.29", **kwargs})
        assert err.value.field == field and err.value.source is None
    with pytest.raises(InvalidInput) as err:
        simulate("", k8s_version="1.29")
    assert str(err.value).startswith("<input>: nothing to simulate")


# -- the closing line: where observation stopped and what was unfinished ------------------------
def test_a_run_cut_off_by_until_seconds_says_what_was_unfinished(capsys):
    legacy = str(ROOT / "manifests" / "legacy" / "job-legacy-sidecar.yaml")
    assert main(["sim", "run", legacy]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    trace = simulate([legacy], k8s_version="1.29")
    (pod,) = trace.pods
    assert trace.observed_until == pytest.approx(299.9)
    assert last == (f"Stopped at t=299.9 s (--until-seconds 300): job/legacy-sidecar-job not complete; "
                    f"pod {pod.name} still Running.")


def test_a_run_that_finished_says_when(capsys):
    assert main(["sim", "run", JOB]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    trace = simulate([JOB], k8s_version=DEFAULT_K8S_VERSION)   # what `sim run` runs without --k8s-version
    assert trace.events[-1].type == "JobComplete" and trace.observed_until == trace.events[-1].t
    assert last == f"Everything finished at t={trace.events[-1].t:.2f} s."


def test_watching_on_after_everything_finished_says_why_it_stopped(capsys):
    assert main(["sim", "run", JOB, "--delete-after", "100", "--until-seconds", "50"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("Everything finished at t=15.75 s; stopped watching at t=49.9 s (--until-seconds 50).")


def test_closing_line_groups_pods_by_phase_and_names_at_most_three():
    def pod(name, phase, deleted=False, owner=None):
        return Pod(name, "default", owner, [ContainerInfo("app", "app")], PodFinal(phase, deleted, {}))

    job = {"kind": "Job", "name": "j"}
    trace = Trace("sim", "1.29.0", observed_until=60.0, pods=[
        *(pod(f"w{i}", "Pending") for i in range(5)), pod("r", "Running", owner=job), pod("gone", "Running", True),
        pod("done", "Succeeded", owner={"kind": "Job", "name": "k"})])
    trace.add(Event(1.0, "JobComplete", object="job/k"))
    assert closing_line(trace) == ("Stopped at t=60 s (the time limit): job/j not complete; "
                                   "pods w0, w1, w2 and 2 more still Pending; pod r still Running.")
    assert closing_line(Trace("sim", "1.29.0", pods=[pod("done", "Succeeded")], events=[Event(3.5, "Exited")])) \
        == "Everything finished at t=3.5 s."
