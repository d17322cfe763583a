"""The served simulator against the real kube-apiserver, request by request (issue 18).

When labkit's real node runs (``labkit node up``; .ci/run starts it before this suite), the same
recorded requests go to its kube-apiserver v1.37.2 and to ``labkit serve`` at the node's minor:

- the kubectl scenarios of tests/test_serve_as_cluster.py (apply, diff, dry-run, scale, explain,
  rollout, logs, errors), step by step: kubectl's exit status, whether the step's expectation
  held, kubectl's error text;
- API calls (:data:`CALLS`): status codes, ``reason``, ``message``, ``details`` and the field path
  of every cause of a ``metav1.Status``, and the field paths (the shape) of what a success returns;
- a watch, and the shapes of the blog's Job, its pod and the pod's Events once the Job completed.

Every difference found must be a row of the table in docs/serve.md ("Measured against the real
API server"), with why it stays; a row that no longer differs fails too. The table is generated
from the run: ``LABKIT_WRITE_DIFFERENTIAL=1 pytest tests/test_serve_differential.py`` rewrites its
rows (keeping each row's why; a new row says ``(why?)`` until someone writes it).
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import re
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from test_serve_as_cluster import KUBECTL, ROOT, run_scenario, scenarios

DOC = ROOT / "docs" / "serve.md"
SERVED_PACE = 5.0    # as test_serve_as_cluster.py runs the same scenarios: 75 s one after another, not 226 s
BEGIN, END = "<!-- differential table: generated, see tests/test_serve_differential.py -->", "<!-- end of table -->"
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (pip install -e '.[test]')")


# -- talking to a server as its kubeconfig says -----------------------------------------------------------------
class Client:
    """Plain HTTPS to the server of a kubeconfig: a token (labkit serve) or a client certificate (the node)."""

    def __init__(self, kubeconfig: Path):
        config = yaml.safe_load(Path(kubeconfig).read_text())
        context = next(c["context"] for c in config["contexts"] if c["name"] == config["current-context"])
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
        self.url = cluster["server"]
        if "certificate-authority-data" in cluster:
            self.ssl = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        else:
            self.ssl = ssl.create_default_context(cafile=cluster["certificate-authority"])
        if "client-certificate" in user:
            self.ssl.load_cert_chain(user["client-certificate"], user["client-key"])
        self.headers = {"Authorization": f"Bearer {user['token']}"} if "token" in user else {}

    def request(self, method: str, path: str, body=None, content_type: str = "application/json") -> tuple[int, dict]:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={**self.headers, "Content-Type": content_type,
                                                  "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, context=self.ssl, timeout=30) as answer:
                return answer.status, json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as err:
            text = err.read()
            try:
                return err.code, json.loads(text)
            except ValueError:
                return err.code, {"body (not JSON)": text.decode(errors="replace").strip()}

    def watch_first(self, path: str) -> list[str]:
        """The types and kinds of the events a watch sends within its timeoutSeconds."""
        request = urllib.request.Request(self.url + path, headers={**self.headers, "Accept": "application/json"})
        with urllib.request.urlopen(request, context=self.ssl, timeout=30) as answer:
            return [f"{e['type']} {e['object']['kind']}" for e in map(json.loads, answer.read().splitlines()) if e]


# -- what is compared ---------------------------------------------------------------------------------------------
def shape(value, prefix: str = "") -> set[str]:
    """The field paths of a JSON value (list items merged as ``[]``; managedFields' contents and the
    keys of labels and annotations are values, not fields)."""
    if isinstance(value, dict) and not prefix.endswith((".fieldsV1", ".labels", ".annotations", ".nodeSelector")):
        paths = {prefix} if prefix else set()
        for key, item in value.items():
            paths |= shape(item, f"{prefix}.{key}" if prefix else key)
        return paths
    if isinstance(value, list):
        paths = {prefix}
        for item in value:
            paths |= shape(item, prefix + "[]")
        return paths
    return {prefix}


def topmost(paths: set[str]) -> set[str]:
    """Of paths present on one side only, those whose parent is not among them (the rest follow)."""
    def parent(path: str) -> str:
        return re.sub(r"(\[\]|\.[^.\[]+)$", "", path)
    return {p for p in paths if parent(p) == p or parent(p) not in paths}


def shape_differences(what: str, real: dict, served: dict) -> dict[str, tuple[str, str]]:
    real_paths, served_paths = shape(real), shape(served)
    found = {f"{what}: `{p}`": ("present", "absent") for p in topmost(real_paths - served_paths)}
    found |= {f"{what}: `{p}`": ("absent", "present") for p in topmost(served_paths - real_paths)}
    return found


def status_view(code: int, body: dict) -> dict[str, str]:
    """What a client reads of an answer: the code, and a Status's reason, message, details and
    each cause (field path: reason, message); a success's kind."""
    view = {"code": str(code)}
    if body.get("kind") == "Status" or code >= 400:
        view["reason"] = str(body.get("reason"))
        view["message"] = str(body.get("message", body))
        details = body.get("details") or {}
        view["details"] = json.dumps({k: v for k, v in details.items() if k != "causes"}, sort_keys=True)
        for cause in details.get("causes") or []:
            view[f"cause {cause.get('field')}"] = f"{cause.get('reason')}: {cause.get('message')}"
    else:
        view["kind"] = str(body.get("kind"))
    return view


# -- the API calls --------------------------------------------------------------------------------------------------
def _pod(name: str, image: str = "busybox:1.36") -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "image": image, "command": ["sh", "-c", "sleep 3600"]}]}}


BAD_JOB = yaml.safe_load((ROOT / "manifests/job-sidecar.yaml").read_text())
BAD_JOB["metadata"]["name"] = "bad-job"
BAD_JOB["spec"]["template"]["spec"]["initContainers"][0]["restartPolicy"] = "OnFailure"
DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}}, "spec": _pod("x")["spec"]}}}


@dataclass
class Call:
    """One request: ``{ns}`` in the path is the run's namespace; ``shape``: compare the answer's field paths."""

    name: str
    method: str
    path: str
    body: object = None
    content_type: str = "application/json"
    shape: bool = False


PODS = "/api/v1/namespaces/{ns}/pods"
CALLS = [
    Call("get a missing pod", "GET", PODS + "/nope"),
    Call("list an unknown resource", "GET", "/api/v1/namespaces/{ns}/foos"),
    Call("create a pod", "POST", PODS, _pod("good"), shape=True),
    Call("create it again", "POST", PODS, _pod("good")),
    Call("create an invalid pod", "POST", PODS, _pod("bad", "")),
    Call("create an invalid pod, dry-run", "POST", PODS + "?dryRun=All", _pod("bad", "")),
    Call("create a valid pod, dry-run", "POST", PODS + "?dryRun=All", _pod("dry"), shape=True),
    Call("get the dry-run pod", "GET", PODS + "/dry"),
    Call("create the blog's Job with OnFailure on its sidecar", "POST", "/apis/batch/v1/namespaces/{ns}/jobs", BAD_JOB),
    Call("update with a stale resourceVersion", "PUT", PODS + "/good",
         {**_pod("good"), "metadata": {"name": "good", "resourceVersion": "1"}}),
    Call("patch with an unknown patch type", "PATCH", PODS + "/good", {"metadata": {"labels": {"a": "b"}}},
         content_type="application/x-unknown-patch"),
    Call("merge-patch a label", "PATCH", PODS + "/good", {"metadata": {"labels": {"a": "b"}}},
         content_type="application/merge-patch+json"),
    Call("create from a body that is not JSON", "POST", PODS, b"{not json"),
    Call("POST to a named pod", "POST", PODS + "/good", _pod("good")),
    Call("delete a missing pod", "DELETE", PODS + "/nope"),
    Call("create a Deployment", "POST", "/apis/apps/v1/namespaces/{ns}/deployments", DEPLOYMENT, shape=True),
    Call("get its scale", "GET", "/apis/apps/v1/namespaces/{ns}/deployments/web/scale", shape=True),
    Call("merge-patch its scale", "PATCH", "/apis/apps/v1/namespaces/{ns}/deployments/web/scale",
         {"spec": {"replicas": 2}}, content_type="application/merge-patch+json", shape=True),
    Call("a Job has no scale", "GET", "/apis/batch/v1/namespaces/{ns}/jobs/nope/scale"),
    Call("self subject access review", "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
         {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
          "spec": {"resourceAttributes": {"verb": "create", "resource": "pods", "namespace": "default"}}}, shape=True),
    Call("delete the pod", "DELETE", PODS + "/good"),
]


def kubectl(env: dict, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([KUBECTL, *args], env=env, input=input, capture_output=True, text=True, timeout=180)


def namespace(env: dict, stem: str) -> str:
    ns = f"{stem}-{uuid.uuid4().hex[:5]}"
    kubectl(env, "create", "namespace", ns)
    deadline = time.monotonic() + 30
    while kubectl(env, "-n", ns, "get", "serviceaccount", "default").returncode and time.monotonic() < deadline:
        time.sleep(0.2)
    return ns


def observe_calls(env: dict, client: Client) -> dict[str, dict[str, str]]:
    ns = namespace(env, "differential-calls")
    seen: dict[str, dict[str, str]] = {}
    try:
        for call in CALLS:
            code, body = client.request(call.method, call.path.replace("{ns}", ns), call.body, call.content_type)
            text = json.dumps(body).replace(ns, "{ns}")
            seen[call.name] = {**status_view(code, json.loads(text)),
                               **({"shape": sorted(shape(body))} if call.shape and code < 400 else {})}
        listed = client.request("GET", f"/api/v1/namespaces/{ns}/pods")[1]
        client.request("POST", f"/api/v1/namespaces/{ns}/pods", _pod("watched"))
        seen["watch from a list's resourceVersion"] = {"events": json.dumps(client.watch_first(
            f"/api/v1/namespaces/{ns}/pods?watch=1&timeoutSeconds=2&resourceVersion="
            f"{listed['metadata']['resourceVersion']}&fieldSelector=metadata.name%3Dwatched")[:1])}
    finally:
        kubectl(env, "delete", "namespace", ns, "--wait=false")
    return seen


def observe_blog_job(env: dict) -> dict[str, dict]:
    """The blog's Job run to completion: the Job, its pod and the union of its pod's Events."""
    ns = namespace(env, "differential-blog")
    try:
        kubectl(env, "-n", ns, "apply", "-f", os.fspath(ROOT / "manifests/job-sidecar.yaml"))
        done = kubectl(env, "-n", ns, "wait", "--for=condition=complete", "job/sidecar-job", "--timeout=150s")
        assert done.returncode == 0, done.stderr
        job = json.loads(kubectl(env, "-n", ns, "get", "job", "sidecar-job", "-o", "json").stdout)
        [pod] = json.loads(kubectl(env, "-n", ns, "get", "pods", "-o", "json").stdout)["items"]
        events = [e for e in json.loads(kubectl(env, "-n", ns, "get", "events", "-o", "json").stdout)["items"]
                  if e["involvedObject"]["kind"] == "Pod"]
        merged: dict = {}
        for event in events:
            merged = _merge(merged, event)
        return {"Job": job, "Pod": pod, "Event": merged}
    finally:
        kubectl(env, "delete", "namespace", ns, "--wait=false")


def _merge(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: _merge(a.get(k), b.get(k)) if k in a and k in b else a.get(k, b.get(k)) for k in {*a, *b}}
    return a if a is not None else b


def differences(real: dict, served: dict) -> dict[str, tuple[str, str]]:
    """``{what differs: (the real server's, the served simulator's)}`` over every observation."""
    found: dict[str, tuple[str, str]] = {}
    for key, (real_steps, scenario) in real["scenarios"].items():
        served_steps = served["scenarios"][key][0]
        for index, (step, a, b) in enumerate(zip(scenario.steps, real_steps, served_steps), 1):
            if a is None:
                continue
            if (a.rc, a.held) != (b.rc, b.held) or (a.rc and a.stderr != b.stderr):
                what = f"{key} step {index}: `kubectl {' '.join(step.args)}`"
                found[what] = tuple(f"exit {o.rc}{'' if o.held else ', ' + _short(o.failure)}"
                                    f"{'; ' + _short(o.stderr) if o.rc else ''}" for o in (a, b))
    for name, a in real["calls"].items():
        b = served["calls"][name]
        for field in sorted({*a, *b} - {"shape"}):
            if a.get(field) != b.get(field):
                found[f"{name}: {field}"] = (_short(a.get(field, "absent")), _short(b.get(field, "absent")))
        if "shape" in a and "shape" in b:
            found |= shape_differences(name, {p: 1 for p in a["shape"]}, {p: 1 for p in b["shape"]})
    for kind in real["blog"]:
        found |= shape_differences(f"the blog's {kind}", real["blog"][kind], served["blog"][kind])
    return found


def _short(text: str, limit: int = 140) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def documented() -> dict[str, str]:
    """The table's rows in docs/serve.md: ``{what: why}``."""
    text = DOC.read_text()
    table = text[text.index(BEGIN) + len(BEGIN):text.index(END)]
    rows = {}
    for line in table.strip().splitlines()[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        rows[cells[0]] = cells[3]
    return rows


def table(found: dict[str, tuple[str, str]], whys: dict[str, str]) -> str:
    lines = ["| what | kube-apiserver v1.37.2 (the node) | labkit serve 1.37 | why it stays |", "|---|---|---|---|"]
    lines += [f"| {what} | {real} | {served} | {whys.get(what, '(why?)')} |" for what, (real, served) in sorted(found.items())]
    return "\n".join(lines)


# -- the run ------------------------------------------------------------------------------------------------------------
def observe(env: dict, kubeconfig: Path, version: str, *, real: bool) -> dict:
    """Every observation of one server. On the real node the scenarios (each in a namespace of
    its own), the calls and the blog's Job run side by side, as they mostly wait (a rollout, a
    back-off, a Job); on the served simulator one after another, at SERVED_PACE, as side by side
    it once missed crashloop-previous-logs' back-off window (in one of four CI runs, when that
    step still polled for a state that from 1.35 can show for a moment only)."""
    chosen = [scenario for scenario in scenarios(version) if not scenario.only_simulator]
    with concurrent.futures.ThreadPoolExecutor(4 if real else 1) as pool:
        runs = [pool.submit(run_scenario, env, scenario, real=real, strict=False) for scenario in chosen]
        calls = pool.submit(observe_calls, env, Client(kubeconfig))
        blog = pool.submit(observe_blog_job, env)
        return {"scenarios": {scenario.name: (run.result(), scenario) for scenario, run in zip(chosen, runs)},
                "calls": calls.result(), "blog": blog.result()}


def test_served_simulator_answers_as_the_real_api_server(node, tmp_path):
    from labkit.serve import serve

    version = node.pins.kubernetes.lstrip("v")
    real_env = {**os.environ, "KUBECONFIG": os.fspath(node.kubeconfig), "KUBECACHEDIR": os.fspath(tmp_path / "node-cache")}
    with serve(version, pace=SERVED_PACE, kubeconfig=tmp_path / "serve" / "kubeconfig") as server:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            real = pool.submit(observe, real_env, node.kubeconfig, version, real=True)
            served = pool.submit(observe, server.env, server.kubeconfig, version, real=False)
            real, served = real.result(), served.result()
    found = differences(real, served)
    whys = documented()
    rows = table(found, whys)
    (tmp_path / "table.md").write_text(rows + "\n")
    if os.environ.get("LABKIT_WRITE_DIFFERENTIAL"):
        text = DOC.read_text()
        DOC.write_text(text[:text.index(BEGIN) + len(BEGIN)] + "\n" + rows + "\n" + text[text.index(END):])
        whys = documented()
    new, gone = sorted(set(found) - set(whys)), sorted(set(whys) - set(found))
    assert not new and not gone and all(w != "(why?)" for w in whys.values()), (
        f"docs/serve.md's differential table is not this run's: new differences {new}, no longer differing {gone}; "
        f"LABKIT_WRITE_DIFFERENTIAL=1 rewrites it. This run's table:\n{rows}")

