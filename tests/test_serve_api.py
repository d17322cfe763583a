"""``labkit serve`` over plain HTTPS, as any client sees it: the bodies of errors, patches,
selectors, deletecollection, events and watches, each checked against what the upstream API
server answers (``k8s.io/apimachinery/pkg/api/errors/errors.go``, ``k8s.io/apiserver/pkg/endpoints``)."""

from __future__ import annotations

import http.client
import json
import ssl
import time
import uuid

import pytest

pytest.importorskip("aiohttp")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from labkit.serve import serve

    # pace 5: five simulated seconds per wall second; a short history so that 410 Gone is reachable
    with serve("1.29", pace=5.0, kubeconfig=tmp_path_factory.mktemp("serve") / "kubeconfig", history=200) as srv:
        yield srv


class Client:
    def __init__(self, server):
        self.server = server
        self.context = ssl.create_default_context(cadata=server.ca.decode())

    def raw(self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json",
            headers: dict | None = None, timeout: float = 10):
        conn = http.client.HTTPSConnection("127.0.0.1", self.server.port, context=self.context, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers={"Authorization": f"Bearer {self.server.token}",
                                                           "Content-Type": content_type, **(headers or {})})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def __call__(self, method: str, path: str, body=None, content_type: str = "application/json", **kw):
        data = None if body is None else json.dumps(body).encode()
        status, raw = self.raw(method, path, data, content_type, **kw)
        return status, json.loads(raw) if raw.startswith((b"{", b"[")) else raw.decode()


@pytest.fixture(scope="module")
def api(server):
    return Client(server)


@pytest.fixture
def ns(api):
    name = "t-" + uuid.uuid4().hex[:6]
    assert api("POST", "/api/v1/namespaces", {"metadata": {"name": name}})[0] == 201
    return name


def pod(name: str, labels: dict | None = None, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}], **spec}}


def deployment(name: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                         {"name": "web", "image": "nginx:1.27", "env": [{"name": "A", "value": "1"},
                                                                       {"name": "B", "value": "2"}]},
                         {"name": "log", "image": "busybox:1.36", "command": ["sleep", "3600"]}]}}}}


def status(code: int, reason: str, message: str, details=None) -> dict:
    """The metav1.Status a real API server answers (all keys written out)."""
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}
    if details is not None:
        body["details"] = details
    return body


# -- errors ---------------------------------------------------------------------------------------------------
def test_invalid_pod_lists_every_cause_as_new_invalid_does(api, ns):
    bad = pod("twice", initContainers=[{"name": "side", "image": "envoy:1", "restartPolicy": "OnFailure",
                                        "startupProbe": {"exec": {"command": ["true"]}}}])
    code, body = api("POST", f"/api/v1/namespaces/{ns}/pods", bad)
    assert code == 422
    assert body == status(422, "Invalid", 'Pod "twice" is invalid: [spec.initContainers[0].restartPolicy: Unsupported '
                          'value: "OnFailure": supported values: "Always", spec.initContainers[0].startupProbe: '
                          'Forbidden: may not be set for init containers without restartPolicy=Always]',
                          {"name": "twice", "kind": "Pod", "causes": [
                              {"reason": "FieldValueNotSupported", "field": "spec.initContainers[0].restartPolicy",
                               "message": 'Unsupported value: "OnFailure": supported values: "Always"'},
                              {"reason": "FieldValueForbidden", "field": "spec.initContainers[0].startupProbe",
                               "message": "Forbidden: may not be set for init containers without restartPolicy=Always"}]})
    assert api("GET", f"/api/v1/namespaces/{ns}/pods/twice")[0] == 404


def test_invalid_job_with_one_error_names_the_group(api, ns):
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
           "spec": {"template": {"spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": "i"}]}}}}
    code, body = api("POST", f"/apis/batch/v1/namespaces/{ns}/jobs", job)
    assert code == 422
    # errors.NewInvalid: qualifiedKind.String() is "Job.batch"; details keep group and kind apart
    assert body["message"] == ('Job.batch "j" is invalid: spec.template.spec.restartPolicy: Required value: valid '
                               'values: "OnFailure", "Never"')
    assert body["details"] == {"name": "j", "group": "batch", "kind": "Job", "causes": [
        {"reason": "FieldValueRequired", "field": "spec.template.spec.restartPolicy",
         "message": 'Required value: valid values: "OnFailure", "Never"'}]}


def test_not_found_bodies(api, ns):
    assert api("GET", f"/api/v1/namespaces/{ns}/pods/nope") == (404, status(
        404, "NotFound", 'pods "nope" not found', {"name": "nope", "kind": "pods"}))
    assert api("GET", f"/apis/batch/v1/namespaces/{ns}/jobs/nope") == (404, status(
        404, "NotFound", 'jobs.batch "nope" not found', {"name": "nope", "group": "batch", "kind": "jobs"}))
    # a path nothing serves: go-restful's 404 through NewGenericServerResponse, with empty details
    assert api("GET", "/api/v1/widgets") == (404, status(
        404, "NotFound", "the server could not find the requested resource", {}))
    assert api("GET", "/apis/nowhere.example.com/v1") == (404, status(
        404, "NotFound", "the server could not find the requested resource", {}))


def test_method_not_allowed(api, ns):
    assert api("POST", f"/api/v1/namespaces/{ns}/pods/some-name", pod("some-name")) == (405, status(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {}))
    assert api("PUT", f"/api/v1/namespaces/{ns}/pods", pod("x"))[0] == 405


def test_a_dry_run_pod_has_what_admission_adds_as_a_stored_one_does(api, ns):
    """Mutating admission runs on dryRun=All (apiserver registry Store.Create skips only the write):
    the ServiceAccount plugin's account, token volume and mounts, DefaultTolerationSeconds'
    tolerations, the Priority plugin's priority. Only the scheduler's nodeName is the stored pod's alone."""
    path = f"/api/v1/namespaces/{ns}/pods"
    code, dry = api("POST", path + "?dryRun=All", pod("p", initContainers=[{"name": "init", "image": "busybox:1.36"}]))
    assert code == 201
    assert api("GET", f"{path}/p")[0] == 404   # nothing stored
    code, stored = api("POST", path, pod("p", initContainers=[{"name": "init", "image": "busybox:1.36"}]))
    assert code == 201

    def admitted(spec: dict) -> dict:
        token = next(v["name"] for v in spec["volumes"] if v["name"].startswith("kube-api-access-"))
        return json.loads(json.dumps({k: v for k, v in spec.items() if k != "nodeName"}).replace(token, "TOKEN"))

    assert admitted(dry["spec"]) == admitted(stored["spec"])
    assert "nodeName" not in dry["spec"] and stored["spec"]["nodeName"]
    spec = dry["spec"]
    assert (spec["serviceAccountName"], spec["priority"], spec["preemptionPolicy"]) == ("default", 0, "PreemptLowerPriority")
    assert [t["key"] for t in spec["tolerations"]] == ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]
    assert [[m["mountPath"] for m in c["volumeMounts"]] for c in spec["initContainers"] + spec["containers"]] == [
        ["/var/run/secrets/kubernetes.io/serviceaccount"]] * 2


def test_already_exists(api, ns):
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}}
    assert api("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", sa)[0] == 201
    assert api("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", sa) == (409, status(
        409, "AlreadyExists", 'serviceaccounts "robot" already exists', {"name": "robot", "kind": "serviceaccounts"}))
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"}, "spec": {"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}}}
    assert api("POST", f"/apis/batch/v1/namespaces/{ns}/jobs", job)[0] == 201
    assert api("POST", f"/apis/batch/v1/namespaces/{ns}/jobs", job) == (409, status(
        409, "AlreadyExists", 'jobs.batch "once" already exists', {"name": "once", "group": "batch", "kind": "jobs"}))


def test_conflict_on_a_stale_resource_version(api, ns):
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}}
    created = api("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", sa)[1]
    fresh = {**created, "metadata": {**created["metadata"], "labels": {"v": "1"}}}
    code, updated = api("PUT", f"/api/v1/namespaces/{ns}/serviceaccounts/robot", fresh)
    assert code == 200 and int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    stale = {**created, "metadata": {**created["metadata"], "labels": {"v": "2"}}}
    assert api("PUT", f"/api/v1/namespaces/{ns}/serviceaccounts/robot", stale) == (409, status(
        409, "Conflict", 'Operation cannot be fulfilled on serviceaccounts "robot": the object has been modified; '
        "please apply your changes to the latest version and try again", {"name": "robot", "kind": "serviceaccounts"}))
    d = api("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", deployment("web"))[1]
    d["metadata"]["resourceVersion"] = "1"
    code, body = api("PUT", f"/apis/apps/v1/namespaces/{ns}/deployments/web", d)
    assert (code, body["reason"], body["details"]) == (409, "Conflict", {"name": "web", "group": "apps",
                                                                         "kind": "deployments"})
    assert body["message"].startswith('Operation cannot be fulfilled on deployments.apps "web": the object has been')
    assert api("GET", f"/api/v1/namespaces/{ns}/serviceaccounts/robot")[1]["metadata"]["labels"] == {"v": "1"}


def test_unknown_patch_type_is_415_and_a_body_neither_json_nor_yaml_is_400(api, ns):
    api("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": "robot"}})
    code, body = api("PATCH", f"/api/v1/namespaces/{ns}/serviceaccounts/robot", {"metadata": {}},
                     content_type="application/xml")
    # go-restful refuses a Content-Type no PATCH route consumes before patch.go runs: its own
    # message, as kube-apiserver v1.37.2 answers (tests/test_serve_differential.py records it)
    assert (code, body) == (415, status(415, "UnsupportedMediaType", "415: Unsupported Media Type"))
    code, raw = api.raw("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", b"{not json: [", "application/json")
    body = json.loads(raw)
    assert (code, body["reason"], body["code"]) == (400, "BadRequest", 400)
    code, raw = api.raw("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", b"a: [unclosed", "application/yaml")
    assert (code, json.loads(raw)["reason"]) == (400, "BadRequest")


def test_a_body_over_the_api_servers_limit_is_413(api, ns):
    code, raw = api.raw("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", b" " * (3 * 1024 * 1024 + 1))
    assert (code, json.loads(raw)) == (413, status(413, "RequestEntityTooLarge",
                                                   "Request entity too large: limit is 3145728"))


# -- patches ---------------------------------------------------------------------------------------------------
def test_merge_strategic_and_json_patches_of_a_deployment(api, ns):
    base = f"/apis/apps/v1/namespaces/{ns}/deployments/web"
    api("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", deployment("web"))
    # strategic merge: containers merge by name; an env entry deleted by its key; the order
    # of the containers set by $setElementOrder
    smp = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "log"}, {"name": "web"}],
        "containers": [{"name": "web", "env": [{"name": "A", "$patch": "delete"}, {"name": "C", "value": "3"}]}]}}}}
    code, obj = api("PATCH", base, smp, content_type="application/strategic-merge-patch+json")
    assert code == 200, obj
    containers = obj["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["log", "web"]
    assert containers[1]["env"] == [{"name": "B", "value": "2"}, {"name": "C", "value": "3"}]
    assert containers[1]["image"] == "nginx:1.27"
    # $retainKeys (what kubectl apply sends for a strategy change): rollingUpdate goes
    smp = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    code, obj = api("PATCH", base, smp, content_type="application/strategic-merge-patch+json")
    assert code == 200, obj
    assert obj["spec"]["strategy"] == {"type": "Recreate"}
    # JSON merge: a list is replaced whole; null removes a key
    merge = {"metadata": {"labels": {"tier": "front"}, "annotations": None},
             "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}}}
    code, obj = api("PATCH", base, merge, content_type="application/merge-patch+json")
    assert code == 200, obj
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["web"]
    assert obj["metadata"]["labels"] == {"tier": "front"}
    # JSON patch (RFC 6902), with a failing test op refused as a whole
    # a patch that names a stale resourceVersion is a Conflict; one that names none is not
    code, body = api("PATCH", base, {"metadata": {"resourceVersion": "1", "labels": {"z": "1"}}},
                     content_type="application/merge-patch+json")
    assert (code, body["reason"]) == (409, "Conflict")
    ops = [{"op": "replace", "path": "/spec/replicas", "value": 2}, {"op": "add", "path": "/metadata/labels/x", "value": "y"}]
    code, obj = api("PATCH", base, ops, content_type="application/json-patch+json")
    assert code == 200, obj
    assert obj["spec"]["replicas"] == 2 and obj["metadata"]["labels"] == {"tier": "front", "x": "y"}
    before = obj["metadata"]["resourceVersion"]
    code, body = api("PATCH", base, [{"op": "test", "path": "/spec/replicas", "value": 5},
                                     {"op": "replace", "path": "/spec/replicas", "value": 9}],
                     content_type="application/json-patch+json")
    # patch.go applyJSPatch: NewGenericServerResponse(422, ...), the generic message and empty details
    assert (code, body) == (422, status(422, "Invalid", "the server rejected our request due to an error in our "
                                        "request", {}))
    code, body = api("PATCH", base, {"op": "replace"}, content_type="application/json-patch+json")
    assert (code, body["reason"]) == (400, "BadRequest")
    # a strategic merge patch item without its merge key: the registry's plain error, which the
    # server writes as a 500 without a reason, and kubectl as "Error from server: map: ..."
    code, body = api("PATCH", base, {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}},
                     content_type="application/strategic-merge-patch+json")
    assert code == 500 and "reason" not in body
    assert body["message"] == "map: map[image:x] does not contain declared merge key: name"
    assert api("GET", base)[1]["spec"]["replicas"] == 2
    assert int(api("GET", base)[1]["metadata"]["resourceVersion"]) >= int(before)


def test_strategic_merge_patch_directives():
    from labkit.serve.patch import strategic_merge_patch

    original = {"spec": {"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 80}]},
                                        {"name": "b", "image": "y"}],
                         "finalizers": ["f1"], "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    patch = {"spec": {"containers": [{"name": "b", "$patch": "delete"}, {"name": "c", "image": "z"},
                                     {"name": "a", "ports": [{"containerPort": 81}]}],
                      "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}],
                      "finalizers": ["f2"], "strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert strategic_merge_patch(original, patch) == {"spec": {
        "containers": [{"name": "c", "image": "z"},
                       {"name": "a", "image": "x", "ports": [{"containerPort": 80}, {"containerPort": 81}]}],
        "finalizers": ["f1", "f2"], "strategy": {"type": "Recreate"}}}
    assert strategic_merge_patch(original, {"spec": {"containers": [{"name": "q", "image": "r"}, {"$patch": "replace"}]}}
                                 )["spec"]["containers"] == [{"name": "q", "image": "r"}]
    assert strategic_merge_patch(original, {"spec": {"$patch": "delete"}}) == {}


# -- selectors, deletecollection, events -------------------------------------------------------------------
def test_label_and_field_selectors(api, ns):
    for name, labels in (("a", {"app": "x", "tier": "web"}), ("b", {"app": "y", "tier": "db"}), ("c", {"app": "x"})):
        assert api("POST", f"/api/v1/namespaces/{ns}/pods", pod(name, labels))[0] == 201

    def names(query: str) -> list[str]:
        code, body = api("GET", f"/api/v1/namespaces/{ns}/pods?{query}")
        assert code == 200, body
        return [p["metadata"]["name"] for p in body["items"]]

    assert names("labelSelector=app%3Dx") == ["a", "c"]
    assert names("labelSelector=app+in+(x,y),tier!%3Dweb") == ["b", "c"]
    assert names("labelSelector=!tier") == ["c"]
    assert names("labelSelector=tier") == ["a", "b"]
    assert names("fieldSelector=metadata.name%3Db") == ["b"]
    assert names("fieldSelector=metadata.name!%3Db,status.phase!%3DFailed") == ["a", "c"]
    code, body = api("GET", f"/api/v1/namespaces/{ns}/pods?fieldSelector=spec.flavour%3Dx")
    assert (code, body) == (400, status(400, "BadRequest", "field label not supported: spec.flavour"))


def test_deletecollection_of_pods_by_label(api, ns):
    for name, labels in (("a", {"app": "x"}), ("b", {"app": "y"}), ("c", {"app": "x"})):
        api("POST", f"/api/v1/namespaces/{ns}/pods", pod(name, labels))
    code, body = api("DELETE", f"/api/v1/namespaces/{ns}/pods?labelSelector=app%3Dx&gracePeriodSeconds=0")
    assert code == 200 and body["kind"] == "PodList"
    assert sorted(p["metadata"]["name"] for p in body["items"]) == ["a", "c"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        left = [p["metadata"]["name"] for p in api("GET", f"/api/v1/namespaces/{ns}/pods")[1]["items"]]
        if left == ["b"]:
            break
        time.sleep(0.2)
    assert left == ["b"]


def test_events_by_involved_object_and_regarding(api, ns):
    api("POST", f"/api/v1/namespaces/{ns}/pods", pod("watched"))
    api("POST", f"/api/v1/namespaces/{ns}/pods", pod("other"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        code, body = api("GET", f"/api/v1/namespaces/{ns}/events?fieldSelector=involvedObject.name%3Dwatched,"
                                "involvedObject.kind%3DPod")
        reasons = [e["reason"] for e in body["items"]]
        if "Started" in reasons:
            break
        time.sleep(0.2)
    assert code == 200 and reasons == ["Scheduled", "Pulled", "Created", "Started"], reasons
    assert {e["involvedObject"]["name"] for e in body["items"]} == {"watched"}
    code, new = api("GET", f"/apis/events.k8s.io/v1/namespaces/{ns}/events?fieldSelector=regarding.name%3Dwatched")
    assert code == 200 and new["kind"] == "EventList" and new["apiVersion"] == "events.k8s.io/v1"
    assert {e["regarding"]["name"] for e in new["items"]} == {"watched"}
    assert [e["reason"] for e in new["items"]] == ["Scheduled", "Pulled", "Created", "Started"]
    # regarding.* is a field of events.k8s.io/v1 only
    code, body = api("GET", f"/api/v1/namespaces/{ns}/events?fieldSelector=regarding.name%3Dwatched")
    assert (code, body["message"]) == (400, "field label not supported: regarding.name")


# -- watch ----------------------------------------------------------------------------------------------------
def watch_lines(api, path: str, timeout: float = 10) -> list[dict]:
    code, raw = api.raw("GET", path, timeout=timeout)
    assert code == 200, raw
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


def test_watch_from_a_resource_version_ends_at_its_timeout(api, ns):
    path = f"/api/v1/namespaces/{ns}/serviceaccounts"
    api("POST", path, {"metadata": {"name": "before"}})
    rv = api("GET", path)[1]["metadata"]["resourceVersion"]
    api("POST", path, {"metadata": {"name": "after"}})
    api("DELETE", f"{path}/after")
    started = time.monotonic()
    events = watch_lines(api, f"{path}?watch=true&resourceVersion={rv}&timeoutSeconds=1")
    assert time.monotonic() - started < 5
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "after"), ("DELETED", "after")]
    assert int(events[0]["object"]["metadata"]["resourceVersion"]) > int(rv)
    # without a resourceVersion: the current objects first, as ADDED
    events = watch_lines(api, f"{path}?watch=true&timeoutSeconds=1")
    assert sorted(e["object"]["metadata"]["name"] for e in events if e["type"] == "ADDED") == ["before", "default"]


def test_watch_list_ends_its_initial_events_with_a_bookmark(api, ns):
    path = f"/api/v1/namespaces/{ns}/serviceaccounts"
    events = watch_lines(api, f"{path}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                              "&allowWatchBookmarks=true&timeoutSeconds=1")
    assert [e["type"] for e in events][:2] == ["ADDED", "BOOKMARK"]
    assert events[0]["object"]["metadata"]["name"] == "default"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert events[1]["object"]["kind"] == "ServiceAccount"
    # later bookmarks (the watch cache sends one before a watch's deadline) carry only a resourceVersion
    assert all(e["type"] == "BOOKMARK" and "annotations" not in e["object"]["metadata"] for e in events[2:])


def _oldest_named(gone: dict) -> int:
    """The oldest resourceVersion a "too old resource version: RV (OLDEST)" Status names."""
    return int(gone["message"].split("(")[1].rstrip(")"))


def test_watch_from_a_resource_version_too_old_is_410_gone(api, ns):
    path = f"/api/v1/namespaces/{ns}/serviceaccounts"
    for i in range(210):    # more writes than the history (200) keeps
        api("POST", path, {"metadata": {"name": f"sa-{i}"}})
    events = watch_lines(api, f"{path}?watch=true&resourceVersion=2&timeoutSeconds=1")
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    gone = events[0]["object"]
    oldest = _oldest_named(gone)
    # the watch cache: NewResourceExpired("too old resource version: %d (%d)", rv, oldest-1)
    assert gone == status(410, "Expired", f"too old resource version: 2 ({oldest})")
    assert oldest > 2
    # The oldest it names is still served, unless writes elsewhere on the server (the module's tests
    # share it, and pods they deleted may still be terminating) have moved the history on since.
    for _ in range(5):
        first = watch_lines(api, f"{path}?watch=true&resourceVersion={oldest}&timeoutSeconds=1")[0]
        if first["type"] != "ERROR":
            return
        moved = _oldest_named(first["object"])
        assert moved > oldest, first
        oldest = moved
    pytest.fail(f"a watch from the oldest resourceVersion the history named was refused five times: {first}")


def test_admission_keeps_every_error_and_prints_the_first():
    from labkit.errors import Invalid
    from labkit.sim.api import admit
    from labkit.versions import behaviour

    bad = pod("twice", initContainers=[{"name": "side", "image": "envoy:1", "restartPolicy": "OnFailure",
                                        "startupProbe": {"exec": {"command": ["true"]}}}])
    with pytest.raises(Invalid) as err:
        admit(bad, behaviour("1.29"), source="pod.yaml")
    # what the CLI prints is unchanged: the first error and a count
    assert str(err.value) == ('pod.yaml: spec.initContainers[0].restartPolicy: Unsupported value: "OnFailure": '
                              'supported values: "Always" (and 1 more error)')
    assert err.value.causes == [
        ("spec.initContainers[0].restartPolicy", 'Unsupported value: "OnFailure": supported values: "Always"'),
        ("spec.initContainers[0].startupProbe", "Forbidden: may not be set for init containers without "
                                                "restartPolicy=Always")]


# -- the real kubernetes client ------------------------------------------------------------------------------
def test_the_kubernetes_client_reads_the_statuses(server, ns):
    import kubernetes
    from kubernetes.client.rest import ApiException

    client = kubernetes.config.new_client_from_config(config_file=str(server.kubeconfig))
    core = kubernetes.client.CoreV1Api(client)
    try:
        core.create_namespaced_service_account(ns, {"metadata": {"name": "robot"}})
        with pytest.raises(ApiException) as err:
            core.create_namespaced_service_account(ns, {"metadata": {"name": "robot"}})
        assert err.value.status == 409 and json.loads(err.value.body)["reason"] == "AlreadyExists"
        with pytest.raises(ApiException) as err:
            core.create_namespaced_pod(ns, pod("Bad_Name"))
        body = json.loads(err.value.body)
        assert (err.value.status, body["reason"], [c["field"] for c in body["details"]["causes"]]) == (
            422, "Invalid", ["metadata.name"])
        # a watch from a resourceVersion the server no longer keeps: the client raises 410
        for i in range(210):
            core.create_namespaced_service_account(ns, {"metadata": {"name": f"w-{i}"}})
        watch = kubernetes.watch.Watch()
        with pytest.raises(ApiException) as err:
            for _ in watch.stream(core.list_namespaced_service_account, ns, resource_version="2", timeout_seconds=2):
                pass
        assert err.value.status == 410
        names = [sa.metadata.name for sa in core.list_namespaced_service_account(ns, label_selector="!x").items]
        assert "robot" in names and "default" in names and len(names) == 212
    finally:
        client.close()
