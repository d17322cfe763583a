"""The blog's manifests (manifests/): they parse, and the fields the lab relies on are pinned."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.errors import InvalidInput
from labkit.manifests import Document, load_documents, source_names

MANIFESTS = Path(__file__).parent.parent / "manifests"
ALL = sorted(MANIFESTS.rglob("*.yaml"))


def load(name: str) -> dict:
    docs = list(yaml.safe_load_all((MANIFESTS / name).read_text(encoding="utf-8")))
    assert len(docs) == 1, f"{name} should hold exactly one object"
    return docs[0]


def pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def all_containers(spec: dict) -> list[dict]:
    return spec.get("initContainers", []) + spec["containers"]


def test_the_expected_manifests_exist():
    names = {str(p.relative_to(MANIFESTS)) for p in ALL}
    assert {"kind-sidecar-k8s1.28.yaml", "deployment-sidecar.yaml", "job-sidecar.yaml",
            "legacy/deployment-legacy-sidecar.yaml", "legacy/job-legacy-sidecar.yaml"} <= names


@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(MANIFESTS)))
def test_every_manifest_parses_and_pins_its_images(path: Path):
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    assert docs, f"{path} is empty"
    for doc in docs:
        assert isinstance(doc, dict) and doc.get("kind") and doc.get("apiVersion"), path
        if doc["kind"] in ("Deployment", "Job"):
            for container in all_containers(pod_spec(doc)):
                image = container["image"]
                name, _, tag = image.rpartition(":")
                assert name and tag and tag != "latest", f"{path}: {container['name']} image {image!r} is not pinned"
                assert container["resources"]["requests"] == {"memory": "10Mi", "cpu": "10m"}
                assert container["resources"]["limits"] == {"memory": "10Mi", "cpu": "10m"}
    if "kind: Cluster" not in path.read_text():
        assert ":latest" in path.read_text(), f"{path} should say in a comment that the blog used :latest"


def test_kind_config_enables_the_gate_and_pins_the_node_image_by_digest():
    config = load("kind-sidecar-k8s1.28.yaml")
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert config["featureGates"] == {"SidecarContainers": True}
    images = [node["image"] for node in config["nodes"]]
    # the image kind v0.20.0's release notes list for 1.28 (the release the blog used)
    assert images == ["kindest/node:v1.28.0@sha256:b7a4cad12c197af3ba43202d3efe03246b3f0793f162afb40a33c923952d5b31"]


def check_sws_sidecar(spec: dict) -> None:
    (sidecar,) = spec["initContainers"]
    assert sidecar["name"] == "sws-init"
    assert sidecar["image"].startswith("joseluisq/static-web-server:2.")
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["ports"] == [{"containerPort": 80}]
    assert sidecar["startupProbe"] == {"httpGet": {"path": "/", "port": 80}}
    assert spec["volumes"] == [{"name": "data", "emptyDir": {}}]


def test_deployment_sidecar_matches_the_blog():
    deploy = load("deployment-sidecar.yaml")
    assert (deploy["kind"], deploy["metadata"]["name"]) == ("Deployment", "sidecar-deploy")
    assert deploy["metadata"]["labels"] == {"app": "sidecar-deploy"}
    assert deploy["spec"]["replicas"] == 1
    assert deploy["spec"]["selector"]["matchLabels"] == deploy["spec"]["template"]["metadata"]["labels"] \
        == {"app": "sidecar-deploy"}
    spec = pod_spec(deploy)
    check_sws_sidecar(spec)
    (app,) = spec["containers"]
    assert app["name"] == "sidecar-deploy" and app["image"].startswith("alpine:3.")
    assert app["command"] == ["sh", "-c", 'while true; do echo "test" >> /tmp/info.log; sleep 1; done']
    assert app["volumeMounts"] == [{"name": "data", "mountPath": "/tmp"}]
    assert "restartPolicy" not in app


def test_job_sidecar_matches_the_blog():
    job = load("job-sidecar.yaml")
    assert (job["kind"], job["metadata"]["name"]) == ("Job", "sidecar-job")
    spec = pod_spec(job)
    assert spec["restartPolicy"] == "Never"
    check_sws_sidecar(spec)
    (app,) = spec["containers"]
    assert app["name"] == "sidecar-job" and app["image"].startswith("alpine:3.")
    assert app["command"] == ["sh", "-c", 'echo "test" > /tmp/info.log']
    assert app["volumeMounts"] == [{"name": "data", "mountPath": "/tmp"}]


@pytest.mark.parametrize("name, kind, app_name, failures", [
    ("legacy/deployment-legacy-sidecar.yaml", "Deployment", "sidecar-deploy",
     ["before its proxy", "SIGTERM", "in-flight work is lost"]),
    ("legacy/job-legacy-sidecar.yaml", "Job", "sidecar-job", ["NEVER completes", "never exits"]),
])
def test_legacy_manifests_run_the_web_server_as_a_regular_container(name, kind, app_name, failures):
    obj = load(name)
    assert obj["kind"] == kind and obj["metadata"]["name"].startswith("legacy-")
    spec = pod_spec(obj)
    assert "initContainers" not in spec
    names = [c["name"] for c in spec["containers"]]
    assert names == ["sws", app_name]
    assert all("restartPolicy" not in c for c in spec["containers"])
    comment = (MANIFESTS / name).read_text().split("apiVersion")[0]
    header = " ".join(line.lstrip("#").strip() for line in comment.splitlines())
    for words in failures:
        assert words in header, f"{name}'s header comment should explain: {words}"


# --- labkit.manifests.load_documents: reading files the way kubectl apply -f does ---------------

DATA = Path(__file__).parent / "data"
INVALID = DATA / "invalid"

POD = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: app\n      image: alpine:3.20\n"
JOB = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\n"


def test_multi_document_text_skips_empty_documents_but_keeps_their_position():
    docs = load_documents(POD + "---\n---\n# only a comment\n---\n" + JOB)
    assert [(d.obj["kind"], d.index, d.source) for d in docs] == [("Pod", 0, "<input>"), ("Job", 3, "<input>")]
    assert docs[0].obj["spec"]["containers"][0]["image"] == "alpine:3.20"


def test_file_given_as_str_or_path_keeps_the_name_as_given(tmp_path, monkeypatch):
    (tmp_path / "pod.yaml").write_text(POD)
    monkeypatch.chdir(tmp_path)
    assert load_documents("pod.yaml")[0].source == "pod.yaml"
    assert load_documents(Path("pod.yaml"))[0].source == "pod.yaml"
    assert load_documents(tmp_path / "pod.yaml")[0].source == str(tmp_path / "pod.yaml")


def test_a_directory_means_its_manifest_files_in_name_order(tmp_path):
    (tmp_path / "b.yaml").write_text(JOB)
    (tmp_path / "a.yml").write_text(POD)
    (tmp_path / "notes.txt").write_text("not: a manifest")
    docs = load_documents(tmp_path)
    assert [(d.obj["kind"], Path(d.source).name) for d in docs] == [("Pod", "a.yml"), ("Job", "b.yaml")]


def test_list_kind_is_expanded_into_its_items():
    text = ("apiVersion: v1\nkind: List\nitems:\n"
            "  - {apiVersion: v1, kind: Pod, metadata: {name: a}}\n"
            "  - {apiVersion: batch/v1, kind: Job, metadata: {name: b}}\n")
    docs = load_documents(POD + "---\n" + text)
    assert [(d.obj["metadata"]["name"], d.index) for d in docs] == [("p", 0), ("a", 1), ("b", 1)]


def test_list_item_that_is_not_a_mapping_is_named():
    with pytest.raises(InvalidInput) as err:
        load_documents("apiVersion: v1\nkind: List\nitems:\n  - {kind: Pod}\n  - just a string\n")
    assert err.value.field == "items[1]"
    assert "items[1] is not a mapping" in err.value.message


def test_dicts_and_mixed_lists_are_taken_as_they_are(tmp_path):
    pod = yaml.safe_load(POD)
    (tmp_path / "job.yaml").write_text(JOB)
    docs = load_documents([pod, str(tmp_path / "job.yaml"), JOB])
    assert [d.obj["kind"] for d in docs] == ["Pod", "Job", "Job"]
    assert docs[0].obj is pod and docs[0].source == "<input>"
    assert load_documents(pod)[0].obj == pod


def test_missing_file_is_invalid_input_naming_it():
    with pytest.raises(InvalidInput) as err:
        load_documents("no/such/manifest.yaml")
    assert err.value.source == "no/such/manifest.yaml"
    assert "no such file" in str(err.value)


@pytest.mark.parametrize("name, where, words", [
    ("bad-yaml.yaml", "line 9, column 1", "flow sequence started at line 7"),
    ("bad-indent.yaml", "line 9, column 14", "mapping values are not allowed here"),
    ("duplicate-key.yaml", "line 10, column 7", 'key "image" already set in map (first at line 9)'),
])
def test_bad_yaml_names_the_file_line_and_column(name, where, words):
    path = str(INVALID / name)
    with pytest.raises(InvalidInput) as err:
        load_documents(path)
    assert err.value.source == path
    assert f"invalid YAML at {where}" in err.value.message
    assert words in err.value.message
    assert str(err.value).startswith(path + ": ")


def test_a_document_that_is_not_a_mapping_names_file_document_and_line():
    path = str(INVALID / "not-a-mapping.yaml")
    with pytest.raises(InvalidInput) as err:
        load_documents(path)
    assert err.value.source == path
    # the second document, counted from 1 as people count
    assert "document 2 (line 11) is not a mapping but a list" in err.value.message


def test_documents_are_named_from_1_with_their_line():
    docs = load_documents(POD + "---\n---\n# only a comment\n---\n" + JOB)
    assert [d.where for d in docs] == ["<input>", "<input> (document 4, line 13)"]
    assert load_documents([yaml.safe_load(POD), yaml.safe_load(JOB)])[1].where == "<input> (document 2)"


@pytest.mark.parametrize("text", ["", "  \n", "# a comment\n"])
def test_empty_text_has_no_documents_and_is_not_the_current_folder(text, tmp_path, monkeypatch):
    (tmp_path / "pod.yaml").write_text(POD)
    monkeypatch.chdir(tmp_path)
    assert load_documents(text) == []
    assert source_names(text) == ["<input>"]


def test_source_names_are_the_names_messages_use(tmp_path):
    assert source_names([tmp_path / "a.yaml", "b.yaml", POD, {"kind": "Pod"}, "b.yaml"]) == \
        [str(tmp_path / "a.yaml"), "b.yaml", "<input>"]


@pytest.mark.parametrize("text, got", [("- a\n- b\n", "list"), ("just words\n", "string"), ("42\n", "number")])
def test_top_level_scalars_and_lists_are_refused(text, got):
    with pytest.raises(InvalidInput, match=f"document 1 \\(line 1\\) is not a mapping but a {got}"):
        load_documents(text)


def test_file_that_is_not_utf8_is_refused():
    with pytest.raises(InvalidInput, match="not UTF-8 text"):
        load_documents(INVALID / "not-utf8.yaml")


def test_json_with_tabs_is_read_as_json(tmp_path):
    (tmp_path / "pod.json").write_text('{\n\t"apiVersion": "v1",\n\t"kind": "Pod",\n\t"metadata": {"name": "p"}\n}\n')
    assert load_documents(tmp_path / "pod.json")[0].obj == {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}
    with pytest.raises(InvalidInput, match="invalid YAML at line 2"):
        load_documents('{"kind": "Pod",\n\t"metadata": }\n')


def test_empty_file_has_no_documents(tmp_path):
    (tmp_path / "empty.yaml").write_text("# nothing here\n---\n")
    assert load_documents(tmp_path / "empty.yaml") == []


def test_timestamps_and_dates_stay_strings_as_kubectl_reads_them():
    doc = load_documents("kind: Pod\nmetadata:\n  labels:\n    day: 2024-01-31\n    at: 2024-01-31T10:00:00Z\n")[0]
    assert doc.obj["metadata"]["labels"] == {"day": "2024-01-31", "at": "2024-01-31T10:00:00Z"}


def test_yaml_anchors_and_merge_keys_are_not_taken_for_duplicates():
    text = "base: &b {image: alpine:3.20, name: x}\nkind: Pod\nc:\n  <<: *b\n  name: y\n"
    assert load_documents(text)[0].obj["c"] == {"image": "alpine:3.20", "name": "y"}


def test_scenario_documents_are_recognised():
    scenario = Document({"id": "s", "pod": {"apiVersion": "v1", "kind": "Pod"}, "behaviour": {}}, "s.yaml", 0)
    manifest = Document(yaml.safe_load(POD), "p.yaml", 0)
    half = Document({"pod": {}, "kind": "Pod", "behaviour": {}}, "x.yaml", 0)
    assert scenario.is_scenario and not manifest.is_scenario and not half.is_scenario


def test_the_projects_manifests_load_with_the_loader():
    for path in ALL:
        docs = load_documents(path)
        assert docs and all(isinstance(d.obj, dict) and d.source == str(path) for d in docs)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.dictionaries(st.sampled_from(["a", "b", "kind"]),
                                                         st.text("xyz019", min_size=1, max_size=5), min_size=1)),
                max_size=6))
def test_document_indices_follow_the_separators(documents):
    # Every document starts with its own "---", so an empty one is a real (skipped) document.
    text = "".join("---\n" + ("" if d is None else yaml.safe_dump(d)) for d in documents)
    loaded = load_documents(text) if documents else []
    expected = [(d, i) for i, d in enumerate(documents) if d is not None]
    assert [(doc.obj, doc.index) for doc in loaded] == expected
