"""labkit.sim.api: the simulated API server decodes, defaults and validates like the real one.

Expected paths and wording come from upstream (pkg/apis/core/validation/validation.go,
pkg/apis/{apps,batch}/validation, pkg/apis/core/v1/defaults.go, pkg/api/pod/util.go and
warnings.go); where labkit follows upstream against a simpler first idea, the test says why.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.errors import InvalidInput
from labkit.manifests import load_documents
from labkit.names import dns1123_label_errors, label_value_errors
from labkit.objects import container_roles, pod_spec_of
from labkit.sim.api import admit
from labkit.sim.validation import selector_matches
from labkit.versions import behaviour

ROOT = Path(__file__).parent.parent
INVALID = Path(__file__).parent / "data" / "invalid"

# (label, version, gates): every era of KEP-753 and of ContainerRestartRules.
ERAS = {
    "1.27": ("1.27", None),
    "1.28-off": ("1.28", {"SidecarContainers": False}),
    "1.28-on": ("1.28", {"SidecarContainers": True}),
    "1.29": ("1.29", None),
    "1.29-off": ("1.29", {"SidecarContainers": False}),
    "1.33": ("1.33", None),
    "1.34": ("1.34", None),
    "1.35": ("1.35", None),
    "1.36": ("1.36", None),
}
SIDECARS_ON = ["1.28-on", "1.29", "1.33", "1.34", "1.35", "1.36"]


def era(name: str):
    version, gates = ERAS[name]
    return behaviour(version, gates)


def container(name="app", image="alpine:3.20", **fields) -> dict:
    return {"name": name, "image": image, **fields}


def sidecar(name="proxy", **fields) -> dict:
    return container(name, "nginx:1.27", restartPolicy="Always", **fields)


def pod_spec(init=(), containers=None, **spec) -> dict:
    result = {"containers": [container()] if containers is None else list(containers), **spec}
    if init:
        result["initContainers"] = list(init)
    return result


def pod(init=(), containers=None, name="web", **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": pod_spec(init, containers, **spec)}


def job(init=(), containers=None, name="work", restart="Never", job_spec=None, **spec) -> dict:
    if restart is not None:
        spec["restartPolicy"] = restart
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"spec": pod_spec(init, containers, **spec)}, **(job_spec or {})}}


def deployment(init=(), containers=None, name="web", labels=None, selector=None, deploy_spec=None, **spec) -> dict:
    labels = {"app": "web"} if labels is None else labels
    body = {"template": {"metadata": {"labels": labels}, "spec": pod_spec(init, containers, **spec)},
            **(deploy_spec or {})}
    if selector != "none":
        body["selector"] = {"matchLabels": dict(labels)} if selector is None else selector
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": body}


def rejected(obj: dict, name: str = "1.29", source: str = "test.yaml") -> InvalidInput:
    with pytest.raises(InvalidInput) as err:
        admit(obj, era(name), source=source)
    return err.value


def spec_of(obj: dict, name: str = "1.29") -> dict:
    return pod_spec_of(admit(obj, era(name)).obj)[0]


# --- kubectl's own checks ----------------------------------------------------------------

@pytest.mark.parametrize("obj, field, words", [
    ({"kind": "Pod", "metadata": {"name": "p"}}, "apiVersion", "apiVersion not set"),
    ({"apiVersion": "v1", "metadata": {"name": "p"}}, "kind", "kind not set"),
    ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}, "kind", "kind 'Service' is not supported"),
    ({"apiVersion": "extensions/v1beta1", "kind": "Deployment", "metadata": {"name": "d"}}, "apiVersion",
     'no matches for kind "Deployment" in version "extensions/v1beta1"'),
    ({"apiVersion": "v1", "kind": "Pod", "spec": {}}, "metadata.name", "resource name may not be empty"),
    ({"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "p-"}}, "metadata.generateName",
     "cannot use generate name with apply"),
])
def test_kubectl_refuses_objects_it_cannot_apply(obj, field, words):
    err = rejected(obj)
    assert err.field == field and words in err.message and err.source == "test.yaml"


def test_a_non_mapping_is_refused():
    with pytest.raises(InvalidInput, match="expected a Kubernetes object"):
        admit(["not", "an", "object"], era("1.29"))


# --- decoding: JSON types and unknown fields ---------------------------------------------

@pytest.mark.parametrize("mutate, field, words", [
    (lambda o: o["spec"].update(terminationGracePeriodSeconds="30"), "spec.terminationGracePeriodSeconds",
     "cannot unmarshal string into Go struct field PodSpec.spec.terminationGracePeriodSeconds of type int64"),
    (lambda o: o["spec"].update(containers={"name": "app"}), "spec.containers",
     "cannot unmarshal object into Go struct field PodSpec.spec.containers of type []v1.Container"),
    (lambda o: o["metadata"].update(labels=["app=web"]), "metadata.labels",
     "cannot unmarshal array into Go struct field ObjectMeta.metadata.labels of type map[string]string"),
    (lambda o: o["spec"]["containers"][0].update(env=[{"name": "PORT", "value": 8080}]),
     "spec.containers[0].env[0].value", "cannot unmarshal number into Go struct field EnvVar.spec.containers.env.value of type string"),
    (lambda o: o["spec"]["containers"][0].update(stdin="yes"), "spec.containers[0].stdin", "of type bool"),
    (lambda o: o["spec"]["containers"][0].update(livenessProbe={"exec": {"command": ["true"]}, "periodSeconds": True}),
     "spec.containers[0].livenessProbe.periodSeconds", "cannot unmarshal bool into Go struct field Probe"),
    (lambda o: o["spec"]["containers"][0].update(livenessProbe={"exec": {"command": ["true"]}, "periodSeconds": 2.5}),
     "spec.containers[0].livenessProbe.periodSeconds", "cannot unmarshal number into"),
    (lambda o: o["spec"]["containers"][0].update(resources={"limits": {"memory": "ten megs"}}),
     "spec.containers[0].resources.limits[memory]", "quantities must match the regular expression"),
    (lambda o: o["spec"]["containers"][0].update(ports=[{"containerPort": "80"}]),
     "spec.containers[0].ports[0].containerPort", "of type int32"),
])
def test_wrong_json_types_fail_decoding_with_the_field_path(mutate, field, words):
    obj = pod()
    mutate(obj)
    err = rejected(obj)
    assert err.field == field
    assert err.message.startswith('Pod in version "v1" cannot be handled as a Pod: ')
    assert words in err.message


def test_wrong_type_manifest_file():
    doc = load_documents(INVALID / "wrong-type.yaml")[0]
    err = rejected(doc.obj, source=doc.source)
    assert str(err).startswith(f"{doc.source}: spec.terminationGracePeriodSeconds: ")
    assert "cannot unmarshal string" in err.message


def test_values_the_wire_format_accepts_are_normalised():
    obj = pod(containers=[container(resources={"limits": {"cpu": 1, "memory": "10Mi"}},
                                    livenessProbe={"exec": {"command": ["true"]}, "periodSeconds": 5.0},
                                    ports=[{"containerPort": 80, "name": None}])])
    spec = spec_of(obj)
    c = spec["containers"][0]
    assert c["resources"]["limits"] == {"cpu": "1", "memory": "10Mi"}
    assert c["livenessProbe"]["periodSeconds"] == 5 and isinstance(c["livenessProbe"]["periodSeconds"], int)
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]  # null means unset


def test_null_fields_are_unset_and_then_validated():
    err = rejected(pod(containers=[container(image=None)]))
    assert (err.field, err.message) == ("spec.containers[0].image", "Required value")


def test_unknown_fields_fail_strict_decoding_listing_every_one():
    obj = pod(containers=[container(imagee="alpine"), container("b", ports=[{"containerPort": 80, "hostport": 1}])])
    obj["spec"]["restartpolicy"] = "Never"
    err = rejected(obj)
    assert err.field == "spec.containers[0].imagee"
    assert err.message == ('Pod in version "v1" cannot be handled as a Pod: strict decoding error: '
                           'unknown field "spec.containers[0].imagee", unknown field "spec.containers[1].ports[0].hostport", '
                           'unknown field "spec.restartpolicy"')


def test_type_errors_win_over_unknown_fields():
    obj = pod(containers=[container(bogus=1, image=3)])
    assert rejected(obj).field == "spec.containers[0].image"


# --- sidecars: init container restartPolicy across the eras ----------------------------------

def test_127_has_no_container_restart_policy_strict_decoding_fails():
    err = rejected(job(init=[sidecar()]), "1.27")
    assert err.field == "spec.template.spec.initContainers[0].restartPolicy"
    assert 'strict decoding error: unknown field "spec.template.spec.initContainers[0].restartPolicy"' in err.message
    assert "--validate=false" in err.message and "1.28" in err.message


@pytest.mark.parametrize("name", ["1.28-off", "1.29-off"])
def test_gate_off_drops_the_restart_policy_and_says_so(name):
    admitted = admit(deployment(init=[sidecar()]), era(name))
    spec = pod_spec_of(admitted.obj)[0]
    assert "restartPolicy" not in spec["initContainers"][0]
    assert container_roles(spec) == [("proxy", "init"), ("app", "app")]
    (warning,) = admitted.warnings
    assert warning.startswith("labkit: spec.template.spec.initContainers[0].restartPolicy was dropped")
    assert "SidecarContainers feature gate is off" in warning
    assert "plain init container" in warning and "Init forever" in warning
    assert "the real API server does it silently" in warning


def test_gate_off_then_rejects_the_probes_a_sidecar_may_have():
    # dropDisabledPodFields runs before validation, so the probe now sits on a plain init
    # container: the real 1.28 server refuses it (issue actions/actions-runner-controller#4311).
    err = rejected(pod(init=[sidecar(startupProbe={"tcpSocket": {"port": 80}})]), "1.28-off")
    assert err.field == "spec.initContainers[0].startupProbe"
    assert err.message.startswith("Forbidden: may not be set for init containers without restartPolicy=Always")
    assert "labkit: the SidecarContainers feature gate is off" in err.message
    assert "dropped spec.initContainers[0].restartPolicy" in err.message


@pytest.mark.parametrize("name", SIDECARS_ON)
def test_sidecar_is_kept_when_the_gate_is_on(name):
    admitted = admit(job(init=[sidecar(startupProbe={"tcpSocket": {"port": 80}})]), era(name))
    spec = pod_spec_of(admitted.obj)[0]
    assert spec["initContainers"][0]["restartPolicy"] == "Always"
    assert container_roles(spec) == [("proxy", "sidecar"), ("app", "app")]
    assert admitted.warnings == []


@pytest.mark.parametrize("name", ["1.28-on", "1.29", "1.33"])
def test_init_restart_policy_other_than_always_is_unsupported(name):
    doc = load_documents(INVALID / "init-restart-onfailure.yaml")[0]
    err = rejected(doc.obj, name, source=doc.source)
    assert err.field == "spec.initContainers[0].restartPolicy"
    assert err.message == 'Unsupported value: "OnFailure": supported values: "Always"'
    assert str(err) == f'{doc.source}: spec.initContainers[0].restartPolicy: Unsupported value: "OnFailure": supported values: "Always"'


def test_init_restart_policy_on_failure_is_dropped_in_134():
    # ContainerRestartRules is alpha in 1.34: dropContainerRestartRules removes any init
    # container restartPolicy but Always before validation (pkg/api/pod/util.go).
    admitted = admit(pod(init=[container("setup", restartPolicy="OnFailure")]), era("1.34"))
    assert "restartPolicy" not in admitted.obj["spec"]["initContainers"][0]
    assert any("ContainerRestartRules feature gate is off" in w and "initContainers[0].restartPolicy" in w
               for w in admitted.warnings)


@pytest.mark.parametrize("name", ["1.35", "1.36"])
@pytest.mark.parametrize("policy", ["OnFailure", "Never"])
def test_container_restart_rules_era_accepts_more_init_policies(name, policy):
    spec = spec_of(pod(init=[container("setup", restartPolicy=policy)]), name)
    assert spec["initContainers"][0]["restartPolicy"] == policy
    assert container_roles(spec)[0] == ("setup", "init")
    err = rejected(pod(init=[container("setup", restartPolicy="Sometimes")]), name)
    assert err.message == 'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'


@pytest.mark.parametrize("name", ["1.28-off", "1.28-on", "1.29", "1.33"])
def test_regular_container_restart_policy_is_forbidden_before_restart_rules(name):
    err = rejected(pod(containers=[container(restartPolicy="Always")]), name)
    assert (err.field, err.message) == ("spec.containers[0].restartPolicy", "Forbidden: may not be set for non-init containers")


def test_regular_container_restart_policy_is_unknown_in_127():
    err = rejected(pod(containers=[container(restartPolicy="Always")]), "1.27")
    assert err.field == "spec.containers[0].restartPolicy" and "unknown field" in err.message


def test_regular_container_restart_policy_is_dropped_in_134():
    admitted = admit(pod(containers=[container(restartPolicy="OnFailure")]), era("1.34"))
    assert "restartPolicy" not in admitted.obj["spec"]["containers"][0]
    assert admitted.warnings and "spec.containers[0].restartPolicy was dropped" in admitted.warnings[0]


@pytest.mark.parametrize("name", ["1.35", "1.36"])
def test_regular_container_restart_policy_is_accepted_from_135(name):
    for policy in ("Always", "OnFailure", "Never"):
        assert spec_of(pod(containers=[container(restartPolicy=policy)]), name)["containers"][0]["restartPolicy"] == policy
    err = rejected(pod(containers=[container(restartPolicy="Sometimes")]), name)
    assert err.field == "spec.containers[0].restartPolicy" and "Unsupported value" in err.message


def test_restart_policy_rules_follow_their_gate():
    rules = [{"action": "Restart", "exitCodes": {"operator": "In", "values": [42]}}]
    assert "unknown field" in rejected(pod(containers=[container(restartPolicy="Never", restartPolicyRules=rules)]), "1.33").message
    admitted = admit(pod(containers=[container(restartPolicy="Never", restartPolicyRules=rules)]), era("1.34"))
    assert "restartPolicyRules" not in admitted.obj["spec"]["containers"][0]
    assert spec_of(pod(containers=[container(restartPolicy="Never", restartPolicyRules=rules)]), "1.35")["containers"][0][
        "restartPolicyRules"] == rules
    err = rejected(pod(containers=[container(restartPolicyRules=rules)]), "1.35")
    assert err.field == "spec.containers[0].restartPolicy" and err.message.startswith("Required value")
    bad = [{"action": "Ignore", "exitCodes": {"operator": "In", "values": [1]}}]
    err = rejected(pod(containers=[container(restartPolicy="Never", restartPolicyRules=bad)]), "1.35")
    assert (err.field, err.message) == ("spec.containers[0].restartPolicyRules[0].action",
                                        'Unsupported value: "Ignore": supported values: "Restart"')


# --- probes and hooks ---------------------------------------------------------------------

@pytest.mark.parametrize("key, value", [
    ("lifecycle", {"preStop": {"exec": {"command": ["true"]}}}),
    ("livenessProbe", {"exec": {"command": ["true"]}}),
    ("readinessProbe", {"exec": {"command": ["true"]}}),
    ("startupProbe", {"exec": {"command": ["true"]}}),
])
def test_probes_and_hooks_are_forbidden_on_plain_init_containers_and_allowed_on_sidecars(key, value):
    err = rejected(pod(init=[container("setup", **{key: value})]))
    assert (err.field, err.message) == (f"spec.initContainers[0].{key}",
                                        "Forbidden: may not be set for init containers without restartPolicy=Always")
    assert key in spec_of(pod(init=[sidecar(**{key: value})]))["initContainers"][0]


def test_probe_on_init_container_file():
    doc = load_documents(INVALID / "probe-on-init-container.yaml")[0]
    assert rejected(doc.obj, source=doc.source).field == "spec.initContainers[0].readinessProbe"


EXEC = {"exec": {"command": ["true"]}}


@pytest.mark.parametrize("where", ["containers", "initContainers"])
@pytest.mark.parametrize("probe, value, field, message", [
    ("livenessProbe", {**EXEC, "successThreshold": 2}, "successThreshold", "Invalid value: 2: must be 1"),
    ("startupProbe", {**EXEC, "successThreshold": 3}, "successThreshold", "Invalid value: 3: must be 1"),
    ("readinessProbe", {**EXEC, "terminationGracePeriodSeconds": 5}, "terminationGracePeriodSeconds",
     "Invalid value: 5: must not be set for readinessProbes"),
    ("livenessProbe", {**EXEC, "terminationGracePeriodSeconds": 0}, "terminationGracePeriodSeconds",
     "Invalid value: 0: must be greater than 0"),
    ("startupProbe", {**EXEC, "periodSeconds": -1}, "periodSeconds", "Invalid value: -1: must be greater than or equal to 0"),
    ("readinessProbe", {**EXEC, "timeoutSeconds": -5}, "timeoutSeconds", "Invalid value: -5: must be greater than or equal to 0"),
    ("livenessProbe", {**EXEC, "failureThreshold": -3}, "failureThreshold", "Invalid value: -3: must be greater than or equal to 0"),
    ("livenessProbe", {"periodSeconds": 5}, "", "Required value: must specify a handler type"),
    ("readinessProbe", {**EXEC, "tcpSocket": {"port": 80}}, "tcpSocket", "Forbidden: may not specify more than 1 handler type"),
    ("readinessProbe", {"exec": {"command": []}}, "exec.command", "Required value"),
    ("startupProbe", {"httpGet": {"port": 70000}}, "httpGet.port", "Invalid value: 70000: must be between 1 and 65535, inclusive"),
    ("startupProbe", {"httpGet": {"port": "80"}}, "httpGet.port", 'Invalid value: "80": must contain at least one letter (a-z)'),
])
def test_probe_rules_on_containers_and_sidecars(where, probe, value, field, message):
    c = sidecar(**{probe: value}) if where == "initContainers" else container(**{probe: value})
    obj = pod(init=[c]) if where == "initContainers" else pod(containers=[c])
    err = rejected(obj)
    assert err.field == f"spec.{where}[0].{probe}" + (f".{field}" if field else "")
    assert err.message == message


def test_readiness_may_need_several_successes():
    spec = spec_of(pod(containers=[container(readinessProbe={**EXEC, "successThreshold": 3})]))
    assert spec["containers"][0]["readinessProbe"]["successThreshold"] == 3


def test_probe_defaults():
    spec = spec_of(pod(init=[sidecar(startupProbe={"httpGet": {"port": 80}})],
                       containers=[container(livenessProbe={**EXEC, "periodSeconds": 3}, readinessProbe={"tcpSocket": {"port": "http"}},
                                             ports=[{"name": "http", "containerPort": 8080}])]))
    assert spec["initContainers"][0]["startupProbe"] == {
        "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "initialDelaySeconds": 0,
        "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3}
    liveness = spec["containers"][0]["livenessProbe"]
    assert (liveness["periodSeconds"], liveness["timeoutSeconds"], liveness["failureThreshold"]) == (3, 1, 3)
    # 0 is "unset" on the wire (omitempty), so periodSeconds: 0 gets the default too.
    zero = spec_of(pod(containers=[container(livenessProbe={**EXEC, "periodSeconds": 0})]))
    assert zero["containers"][0]["livenessProbe"]["periodSeconds"] == 10


def test_hooks_are_validated_on_containers_and_sidecars():
    err = rejected(pod(containers=[container(lifecycle={"preStop": {}})]))
    assert (err.field, err.message) == ("spec.containers[0].lifecycle.preStop", "Required value: must specify a handler type")
    spec = spec_of(pod(init=[sidecar(lifecycle={"preStop": {"httpGet": {"port": 80}}})]))
    assert spec["initContainers"][0]["lifecycle"]["preStop"]["httpGet"] == {"port": 80, "path": "/", "scheme": "HTTP"}


def test_sleep_hook_follows_its_gates():
    hook = {"lifecycle": {"preStop": {"sleep": {"seconds": 5}}}}
    assert "unknown field" in rejected(pod(containers=[container(**hook)]), "1.28-on").message
    err = rejected(pod(containers=[container(**hook)]), "1.29")  # alpha: dropped, leaving no handler
    assert err.field == "spec.containers[0].lifecycle.preStop"
    assert err.message.startswith("Required value: must specify a handler type (labkit: the PodLifecycleSleepAction")
    both = {"lifecycle": {"preStop": {"sleep": {"seconds": 5}, "exec": {"command": ["true"]}}}}
    admitted = admit(pod(containers=[container(**both)]), era("1.29"))
    assert admitted.obj["spec"]["containers"][0]["lifecycle"]["preStop"] == {"exec": {"command": ["true"]}}
    assert admitted.warnings == ["labkit: spec.containers[0].lifecycle.preStop.sleep was dropped: the PodLifecycleSleepAction "
                                 "feature gate is off (alpha in Kubernetes 1.29) (this is labkit's explanation: the real "
                                 "API server does it silently)"]
    assert spec_of(pod(containers=[container(**hook)]), "1.33")["containers"][0]["lifecycle"] == hook["lifecycle"]
    zero = {"lifecycle": {"preStop": {"sleep": {"seconds": 0}}}}
    admit(pod(containers=[container(**zero)]), behaviour("1.33"))
    with pytest.raises(InvalidInput, match="must be greater than 0 and less than terminationGracePeriodSeconds \\(30\\)"):
        admit(pod(containers=[container(**zero)]), behaviour("1.31"))
    long = {"lifecycle": {"preStop": {"sleep": {"seconds": 40}}}}
    with pytest.raises(InvalidInput, match="less than terminationGracePeriodSeconds \\(30\\)"):
        admit(pod(containers=[container(**long)]), behaviour("1.35"))


# --- names, duplicates, images, ports, volumes -----------------------------------------------

def test_container_name_must_be_a_dns_label():
    err = rejected(pod(containers=[container("Web_1")]))
    assert err.field == "spec.containers[0].name"
    assert err.message.startswith('Invalid value: "Web_1": a lowercase RFC 1123 label must consist of lower case '
                                  "alphanumeric characters or '-', and must start and end with an alphanumeric character "
                                  "(e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
    assert rejected(pod(init=[sidecar("a.b")])).message == 'Invalid value: "a.b": must not contain dots'
    assert "must be no more than 63 characters" in rejected(pod(containers=[container("a" * 64)])).message
    assert rejected(pod(containers=[container("")])).message == "Required value"


@pytest.mark.parametrize("make", [pod, job, deployment])
def test_object_name_must_be_a_dns_subdomain(make):
    err = rejected(make(name="My.App"))
    assert err.field == "metadata.name"
    assert "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'" in err.message
    assert spec_of(make(name="my.app-1"))  # dots are fine in object names


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abz09-.A_", min_size=1, max_size=70))
def test_dns_label_rule_matches_its_definition(name):
    valid = (len(name) <= 63 and all(ch in "abcdefghijklmnopqrstuvwxyz0123456789-" for ch in name)
             and name[0] != "-" and name[-1] != "-")
    assert (dns1123_label_errors(name) == []) == valid
    if valid:
        assert spec_of(pod(containers=[container(name)]))["containers"][0]["name"] == name
    else:
        err = rejected(pod(containers=[container(name)]))
        assert err.field == "spec.containers[0].name" and err.message.startswith(f'Invalid value: "{name}": ')


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="aZ09-_.~", max_size=70))
def test_label_value_rule_matches_its_definition(value):
    valid = value == "" or (len(value) <= 63 and re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", value) is not None)
    assert (label_value_errors(value) == []) == valid


def test_container_names_are_unique_across_init_and_regular_containers():
    err = rejected(pod(init=[sidecar("app")], containers=[container("app")]))
    assert (err.field, err.message) == ("spec.initContainers[0].name", 'Duplicate value: "app"')
    err = rejected(pod(containers=[container("a"), container("a")]))
    assert (err.field, err.message) == ("spec.containers[1].name", 'Duplicate value: "a"')
    err = rejected(pod(init=[container("x"), sidecar("x")]))
    assert err.field == "spec.initContainers[1].name"


def test_image_is_required_and_pods_refuse_padded_images():
    err = rejected(pod(containers=[container(image="")]))
    assert (err.field, err.message) == ("spec.containers[0].image", "Required value")
    err = rejected(pod(containers=[container(image=" alpine")]))
    assert (err.field, err.message) == ("spec.containers[0].image", 'Invalid value: " alpine": must not have leading or trailing whitespace')
    spec_of(deployment(containers=[container(image=" alpine")]))  # templates are not checked for it


def test_at_least_one_container():
    for obj in (pod(containers=[]), job(containers=[])):
        err = rejected(obj)
        assert err.field.endswith("spec.containers") and err.message.startswith("Required value")


def test_ports_and_volume_mounts():
    err = rejected(pod(containers=[container(ports=[{"containerPort": 0}])]))
    assert (err.field, err.message) == ("spec.containers[0].ports[0].containerPort", "Required value")
    err = rejected(pod(containers=[container(ports=[{"containerPort": 80, "name": "web"}, {"containerPort": 81, "name": "web"}])]))
    assert (err.field, err.message) == ("spec.containers[0].ports[1].name", 'Duplicate value: "web"')
    err = rejected(pod(containers=[container(ports=[{"containerPort": 80, "protocol": "HTTP"}])]))
    assert err.message == 'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"'
    err = rejected(pod(containers=[container(volumeMounts=[{"name": "dat", "mountPath": "/tmp"}])], volumes=[{"name": "data"}]))
    assert (err.field, err.message) == ("spec.containers[0].volumeMounts[0].name", 'Not found: "dat"')
    err = rejected(pod(volumes=[{"name": "data", "emptyDir": {}}, {"name": "data"}]))
    assert (err.field, err.message) == ("spec.volumes[1].name", 'Duplicate value: "data"')
    spec = spec_of(pod(containers=[container(volumeMounts=[{"name": "data", "mountPath": "/tmp"}])], volumes=[{"name": "data"}]))
    assert spec["volumes"] == [{"name": "data", "emptyDir": {}}]


# --- grace periods ------------------------------------------------------------------------

def test_negative_grace_period_is_stored_as_one_for_pods():
    # Not rejected upstream: since 1.27 (kubernetes#115606) a Pod's negative value becomes 1.
    admitted = admit(pod(terminationGracePeriodSeconds=-5), era("1.29"))
    assert admitted.obj["spec"]["terminationGracePeriodSeconds"] == 1
    assert any(w.startswith("labkit: spec.terminationGracePeriodSeconds was negative") for w in admitted.warnings)


@pytest.mark.parametrize("make", [job, deployment])
def test_negative_grace_period_in_a_template_gets_the_real_warning(make):
    admitted = admit(make(terminationGracePeriodSeconds=-1), era("1.29"))
    assert pod_spec_of(admitted.obj)[0]["terminationGracePeriodSeconds"] == -1
    assert admitted.warnings == ["spec.template.spec.terminationGracePeriodSeconds: must be >= 0; "
                                 "negative values are invalid and will be treated as 1"]


# --- Jobs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("restart", [None, "Always"])
def test_job_needs_never_or_on_failure(restart):
    err = rejected(job(restart=restart))
    assert (err.field, err.message) == ("spec.template.spec.restartPolicy", 'Required value: valid values: "OnFailure", "Never"')


def test_job_without_restart_policy_file():
    doc = load_documents(INVALID / "job-without-restart-policy.yaml")[0]
    err = rejected(doc.obj, "1.33", source=doc.source)
    assert str(err) == (f'{doc.source}: spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"')


def test_job_unknown_restart_policy_reports_the_pod_level_error_first():
    err = rejected(job(restart="Sometimes"))
    assert err.field == "spec.template.spec.restartPolicy"
    assert err.message == ('Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never" (and 1 more error)')


def test_job_defaults_and_generated_selector():
    admitted = admit(job(restart="OnFailure"), era("1.29"))
    obj = admitted.obj
    spec = obj["spec"]
    assert (spec["backoffLimit"], spec["completions"], spec["parallelism"]) == (6, 1, 1)
    assert (spec["completionMode"], spec["suspend"]) == ("NonIndexed", False)
    uid = obj["metadata"]["uid"]
    assert re.fullmatch(r"[0-9a-f-]{36}", uid) and uid == admit(job(restart="OnFailure"), era("1.29")).obj["metadata"]["uid"]
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert spec["template"]["metadata"]["labels"] == {
        "batch.kubernetes.io/controller-uid": uid, "controller-uid": uid,
        "batch.kubernetes.io/job-name": "work", "job-name": "work"}
    assert obj["metadata"]["namespace"] == "default"
    parallel = admit(job(job_spec={"parallelism": 3}), era("1.29")).obj["spec"]
    assert parallel["parallelism"] == 3 and "completions" not in parallel


def test_job_labels_are_copied_from_the_template():
    obj = job()
    obj["spec"]["template"]["metadata"] = {"labels": {"app": "batch"}}
    assert admit(obj, era("1.29")).obj["metadata"]["labels"] == {"app": "batch"}


def test_job_selector_rules():
    err = rejected(job(job_spec={"selector": {"matchLabels": {"app": "x"}}}))
    assert err.field == "spec.selector" and err.message.endswith("`selector` not auto-generated (and 1 more error)")
    manual = job(job_spec={"manualSelector": True, "selector": {"matchLabels": {"app": "x"}}})
    err = rejected(manual)
    assert err.field == "spec.template.metadata.labels" and "`selector` does not match template `labels`" in err.message
    manual["spec"]["template"]["metadata"] = {"labels": {"app": "x"}}
    assert admit(manual, era("1.29")).obj["spec"]["selector"] == {"matchLabels": {"app": "x"}}


def test_job_name_longer_than_a_label_value_is_refused():
    err = rejected(job(name="j" * 64))
    assert err.field == "spec.template.labels" and "must be no more than 63 characters" in err.message


def test_negative_job_counts():
    err = rejected(job(job_spec={"backoffLimit": -1}))
    assert (err.field, err.message) == ("spec.backoffLimit", "Invalid value: -1: must be greater than or equal to 0")


# --- Deployments --------------------------------------------------------------------------

def test_deployment_defaults():
    spec = admit(deployment(), era("1.29")).obj["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert (spec["revisionHistoryLimit"], spec["progressDeadlineSeconds"]) == (10, 600)
    assert spec["template"]["spec"]["restartPolicy"] == "Always"


def test_deployment_selector_is_required():
    err = rejected(deployment(selector="none"))
    assert (err.field, err.message) == ("spec.selector", "Required value (and 1 more error)")


def test_deployment_selector_must_match_the_template():
    doc = load_documents(INVALID / "deployment-selector-mismatch.yaml")[0]
    err = rejected(doc.obj, source=doc.source)
    assert err.field == "spec.template.metadata.labels"
    assert err.message == 'Invalid value: map[string]string{"app":"api"}: `selector` does not match template `labels`'
    assert not selector_matches({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"app": "x"})
    spec_of(deployment(selector={"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}))


def test_deployment_selector_details():
    err = rejected(deployment(selector={}))
    assert err.field == "spec.selector" and "empty selector is invalid for deployment" in err.message
    err = rejected(deployment(selector={"matchExpressions": [{"key": "app", "operator": "In"}]}))
    assert (err.field, err.message) == ("spec.selector.matchExpressions[0].values",
                                        "Required value: must be specified when `operator` is 'In' or 'NotIn' (and 1 more error)")


@pytest.mark.parametrize("policy", ["Never", "OnFailure"])
def test_deployment_pods_must_restart_always(policy):
    err = rejected(deployment(restartPolicy=policy))
    assert (err.field, err.message) == ("spec.template.spec.restartPolicy", f'Unsupported value: "{policy}": supported values: "Always"')


def test_deployment_strategy():
    err = rejected(deployment(deploy_spec={"strategy": {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}}))
    assert (err.field, err.message) == ("spec.strategy.rollingUpdate", "Forbidden: may not be specified when strategy `type` is 'Recreate'")
    err = rejected(deployment(deploy_spec={"strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}}))
    assert err.field == "spec.strategy.rollingUpdate.maxUnavailable" and "may not be 0 when `maxSurge` is 0" in err.message
    assert "rollingUpdate" not in admit(deployment(deploy_spec={"strategy": {"type": "Recreate"}}), era("1.29")).obj["spec"]["strategy"]
    err = rejected(deployment(deploy_spec={"strategy": {"type": "BlueGreen"}}))
    assert (err.field, err.message) == ("spec.strategy", 'Unsupported value: "BlueGreen": supported values: "Recreate", "RollingUpdate"')
    err = rejected(deployment(deploy_spec={"strategy": {"rollingUpdate": {"maxSurge": "half"}}}))
    assert err.field == "spec.strategy.rollingUpdate.maxSurge" and "a valid percent string" in err.message


# --- defaulting, copying, error order ------------------------------------------------------

@pytest.mark.parametrize("image, policy", [
    ("alpine", "Always"), ("alpine:latest", "Always"), ("alpine:3.20", "IfNotPresent"),
    ("localhost:5000/tools", "Always"), ("localhost:5000/tools:1.0", "IfNotPresent"),
    ("alpine@sha256:" + "a" * 64, "IfNotPresent"), ("alpine:latest@sha256:" + "a" * 64, "Always"),
])
def test_image_pull_policy_default(image, policy):
    assert spec_of(pod(containers=[container(image=image)]))["containers"][0]["imagePullPolicy"] == policy
    given = spec_of(pod(containers=[container(image=image, imagePullPolicy="Never")]))
    assert given["containers"][0]["imagePullPolicy"] == "Never"


def test_pod_defaults():
    obj = admit(pod(containers=[container(resources={"limits": {"cpu": "10m"}})]), era("1.29")).obj
    spec = obj["spec"]
    assert (spec["terminationGracePeriodSeconds"], spec["restartPolicy"], spec["dnsPolicy"]) == (30, "Always", "ClusterFirst")
    assert obj["metadata"]["namespace"] == "default"
    c = spec["containers"][0]
    assert (c["terminationMessagePath"], c["terminationMessagePolicy"]) == ("/dev/termination-log", "File")
    assert c["resources"]["requests"] == {"cpu": "10m"}  # Pods only: requests default to limits
    template = pod_spec_of(admit(deployment(containers=[container(resources={"limits": {"cpu": "10m"}})]), era("1.29")).obj)[0]
    assert "requests" not in template["containers"][0]["resources"]
    kept = admit(pod(terminationGracePeriodSeconds=5, restartPolicy="Never"), era("1.29")).obj["spec"]
    assert (kept["terminationGracePeriodSeconds"], kept["restartPolicy"]) == (5, "Never")


def test_input_is_not_mutated_and_the_result_is_a_copy():
    obj = job(init=[sidecar(startupProbe={"tcpSocket": {"port": 80}})])
    before = copy.deepcopy(obj)
    admitted = admit(obj, era("1.29"))
    assert obj == before
    admitted.obj["spec"]["template"]["spec"]["initContainers"][0]["name"] = "changed"
    assert obj == before
    admit(deployment(init=[sidecar()]), era("1.28-off"))
    status = pod()
    status["status"] = {"phase": "Running"}
    assert "status" not in admit(status, era("1.29")).obj and status["status"] == {"phase": "Running"}


def test_errors_come_in_the_api_servers_order_with_a_count():
    # validatePodSpec checks containers before initContainers, whatever the manifest order.
    obj = pod(init=[container("setup", restartPolicy="OnFailure")], containers=[container(image="")])
    err = rejected(obj, source="demo.yaml")
    assert err.field == "spec.containers[0].image"
    assert err.message == "Required value (and 1 more error)"
    many = pod(init=[container("setup", restartPolicy="OnFailure")], containers=[container("A", image="")])
    assert rejected(many).message.endswith("(and 2 more errors)")
    assert str(rejected(many, source="demo.yaml")).startswith("demo.yaml: spec.containers[0].name: Invalid value")


# --- container roles and pod specs -----------------------------------------------------------

def test_container_roles_and_pod_spec_of():
    spec = spec_of(pod(init=[container("setup"), sidecar("proxy"), sidecar("logs")], containers=[container("app"), container("b")]))
    assert container_roles(spec) == [("setup", "init"), ("proxy", "sidecar"), ("logs", "sidecar"), ("app", "app"), ("b", "app")]
    assert container_roles({}) == []
    assert pod_spec_of(pod())[1] == "spec"
    assert pod_spec_of(job())[1] == pod_spec_of(deployment())[1] == "spec.template.spec"
    obj = job()
    assert pod_spec_of(obj)[0] is obj["spec"]["template"]["spec"]
    with pytest.raises(InvalidInput):
        pod_spec_of({"kind": "Service"})


# --- the blog's manifests ------------------------------------------------------------------

BLOG_SIDECAR = {"name": "sws-init", "image": "joseluisq/static-web-server:2.44.0", "restartPolicy": "Always",
                "ports": [{"containerPort": 80}], "startupProbe": {"httpGet": {"path": "/", "port": 80}},
                "resources": {"requests": {"memory": "10Mi", "cpu": "10m"}, "limits": {"memory": "10Mi", "cpu": "10m"}}}
BLOG_VOLUMES = [{"name": "data", "emptyDir": {}}]


def blog_job() -> dict:
    """Equivalent to manifests/job-sidecar.yaml (the design's description of the blog)."""
    app = container("sidecar-job", command=["sh", "-c", 'echo "test" > /tmp/info.log'],
                    volumeMounts=[{"name": "data", "mountPath": "/tmp"}], resources=BLOG_SIDECAR["resources"])
    return job(init=[copy.deepcopy(BLOG_SIDECAR)], containers=[app], name="sidecar-job", volumes=BLOG_VOLUMES)


def blog_deployment() -> dict:
    """Equivalent to manifests/deployment-sidecar.yaml."""
    app = container("sidecar-deploy", command=["sh", "-c", 'while true; do echo "test" >> /tmp/info.log; sleep 1; done'],
                    volumeMounts=[{"name": "data", "mountPath": "/tmp"}], resources=BLOG_SIDECAR["resources"])
    return deployment(init=[copy.deepcopy(BLOG_SIDECAR)], containers=[app], name="sidecar-deploy",
                      labels={"app": "sidecar-deploy"}, volumes=BLOG_VOLUMES)


def blog_objects():
    objects = [("inline job", blog_job()), ("inline deployment", blog_deployment())]
    for name in ("job-sidecar.yaml", "deployment-sidecar.yaml"):  # tracked: a missing one fails loading
        path = ROOT / "manifests" / name
        objects += [(str(path), doc.obj) for doc in load_documents(path)]
    return objects


@pytest.mark.parametrize("label, obj", blog_objects(), ids=lambda x: x if isinstance(x, str) else "")
def test_blog_manifests_keep_their_sidecar_on_129(label, obj):
    admitted = admit(obj, era("1.29"), source=label)
    spec = pod_spec_of(admitted.obj)[0]
    app = spec["containers"][0]["name"]
    assert container_roles(spec) == [("sws-init", "sidecar"), (app, "app")]
    sws = spec["initContainers"][0]
    assert sws["restartPolicy"] == "Always"
    assert sws["startupProbe"]["periodSeconds"] == 10 and sws["startupProbe"]["failureThreshold"] == 3
    assert spec["terminationGracePeriodSeconds"] == 30 and admitted.warnings == []


@pytest.mark.parametrize("label, obj", blog_objects(), ids=lambda x: x if isinstance(x, str) else "")
def test_blog_manifests_on_128_with_the_gate_off(label, obj):
    # The gate drops restartPolicy; sws-init's startupProbe then sits on a plain init
    # container, which the real API server refuses. Without the probe the object is
    # admitted, the sidecar demoted to an init container, and labkit says why.
    err = rejected(obj, "1.28-off", source=label)
    assert err.field == "spec.template.spec.initContainers[0].startupProbe"
    assert "may not be set for init containers without restartPolicy=Always" in err.message
    assert "SidecarContainers feature gate is off" in err.message
    without_probe = copy.deepcopy(obj)
    del pod_spec_of(without_probe)[0]["initContainers"][0]["startupProbe"]
    admitted = admit(without_probe, era("1.28-off"), source=label)
    spec = pod_spec_of(admitted.obj)[0]
    assert "restartPolicy" not in spec["initContainers"][0]
    assert container_roles(spec)[0] == ("sws-init", "init")
    assert len(admitted.warnings) == 1 and "'sws-init' runs as a plain init container" in admitted.warnings[0]


def test_the_shared_scenario_pods_are_valid_everywhere_sidecars_are_on():
    pods = [pod(init=[sidecar("restartable-init-1", startupProbe={"exec": {"command": ["test", "-f", "started"]}}),
                      container("init-1", command=["sh", "-c", "exit 0"])],
                containers=[container("regular-1", lifecycle={"preStop": {"exec": {"command": ["sleep", "1"]}}},
                                      readinessProbe={"exec": {"command": ["true"]}})], restartPolicy="Never")]
    for name in SIDECARS_ON:
        for obj in pods:
            assert [r for _, r in container_roles(spec_of(obj, name))] == ["sidecar", "init", "app"]


def test_docstring_examples_hold():
    import doctest

    import labkit.manifests
    import labkit.objects
    import labkit.sim.api
    import labkit.sim.decoding
    import labkit.sim.defaults
    import labkit.sim.validation

    for module in (labkit.sim.api, labkit.sim.decoding, labkit.sim.defaults, labkit.sim.validation, labkit.objects,
                   labkit.manifests):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


# --- which fields a version knows: labkit/sim/api_fields.json, not the installed client ----------

def test_a_field_is_unknown_before_the_minor_that_added_it_and_known_from_it():
    # Lifecycle.stopSignal (KEP-4960, ContainerStopSignals) is in the OpenAPI of release-1.33 and
    # not of release-1.32 (api_fields.json: "stopSignal": [["str", 33, null]]). The installed client
    # (kubernetes>=29, usually the newest) has it either way, so this fails if api.py reads the client.
    stop = {"lifecycle": {"stopSignal": "SIGUSR1"}}
    err = rejected(pod(containers=[container(**stop)]), "1.29")
    assert err.field == "spec.containers[0].lifecycle.stopSignal"
    assert 'strict decoding error: unknown field "spec.containers[0].lifecycle.stopSignal"' in err.message
    with pytest.raises(InvalidInput, match='unknown field "spec.containers.0..lifecycle.stopSignal"'):
        admit(pod(containers=[container(**stop)]), behaviour("1.32"))
    # Known from 1.33: kept with its gate on (with the alpha gate off the API server drops it silently).
    linux = {"os": {"name": "linux"}}
    admitted = admit(pod(containers=[container(**stop)], **linux), behaviour("1.33", {"ContainerStopSignals": True}))
    assert pod_spec_of(admitted.obj)[0]["containers"][0]["lifecycle"] == {"stopSignal": "SIGUSR1"}
    assert "lifecycle" not in spec_of(pod(containers=[container(**stop)]), "1.33")["containers"][0]


def test_a_field_that_existed_in_one_minor_only_is_unknown_on_both_sides():
    # PodSpec.workloadRef was in release-1.35's OpenAPI only: added with the Workload API
    # (kubernetes/kubernetes#134564, 1.35), tombstoned for spec.schedulingGroup in 1.36 (#136976).
    ref = {"workloadRef": {"name": "w", "podGroup": "g"}}
    assert rejected(pod(**ref), "1.34").field == "spec.workloadRef"
    admit(pod(**ref), behaviour("1.35"))
    assert rejected(pod(**ref), "1.36").field == "spec.workloadRef"


def test_admitting_does_not_import_the_kubernetes_client():
    import subprocess
    import sys

    code = ("import sys; from labkit.sim.api import admit; from labkit.versions import behaviour; "
            "admit({'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': 'p'}, "
            "'spec': {'containers': [{'name': 'a', 'image': 'alpine:3.20'}]}}, behaviour('1.35')); "
            "print('kubernetes' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
