"""labkit.kind without Docker: the version table, configs for every version, names, kind's version text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from labkit.errors import BackendUnavailable, InvalidInput, LabkitError
from labkit.kind import kind_feature_gates, print_config, render_config, state_dir, validate_cluster_name
from labkit.tools import node_image
from labkit.versions import (KIND_NODE_IMAGES, KubeVersion, NEWEST_MINOR, SIDECAR_GATE, behaviour, gate_settable, newest_kind_release,
                             parse_kind_version, recommended_kind_release, release_minors)

ROOT = Path(__file__).resolve().parents[1]
IMAGE = re.compile(r"^kindest/node:v1\.(?P<minor>\d+)\.\d+@sha256:[0-9a-f]{64}$")
EVERY_IMAGE = [(release, minor, image) for release, images in KIND_NODE_IMAGES.items()
               for minor, image in images.items()]


@pytest.mark.parametrize("release, minor, image", EVERY_IMAGE)
def test_every_table_entry_is_a_digest_pinned_image_of_its_minor(release, minor, image):
    match = IMAGE.match(image)
    assert match, image
    assert f"1.{match['minor']}" == minor
    assert re.fullmatch(r"v0\.\d+\.\d+", release)


def test_table_covers_the_ci_matrix_and_known_release_notes():
    # the blog's 1.28, 1.29, GA 1.33 and the newest Kubernetes labkit knows
    for minor in ("1.28", "1.29", "1.33", f"1.{NEWEST_MINOR}"):
        assert recommended_kind_release(minor) is not None, minor
    # digests as listed in the kind release notes
    assert node_image(KubeVersion.parse("1.28"), "v0.25.0").endswith("a7c05c7ae043a0b8c818f5a06188bc2c4098f6cb59ca7d1856df00375d839251")
    assert node_image(KubeVersion.parse("1.28"), "v0.20.0") == ("kindest/node:v1.28.0@sha256:"
                                            "b7a4cad12c197af3ba43202d3efe03246b3f0793f162afb40a33c923952d5b31")
    assert node_image(KubeVersion.parse("1.33"), "v0.31.0").startswith("kindest/node:v1.33.7@sha256:d26ef333")
    assert recommended_kind_release("1.28") == "v0.25.0"
    assert recommended_kind_release("1.29") == "v0.27.0"
    assert newest_kind_release() == "v0.33.0"
    assert release_minors("v0.33.0") == ["1.34", "1.35", "1.36", "1.37"]


def test_a_kind_release_without_the_minor_says_which_release_to_install():
    with pytest.raises(BackendUnavailable) as info:
        node_image(KubeVersion.parse("1.28"), "v0.33.0")
    message = str(info.value)
    assert "kind v0.33.0 lists no node image for Kubernetes 1.28" in message
    assert "go install sigs.k8s.io/kind@v0.25.0" in message
    assert "https://kind.sigs.k8s.io/dl/v0.25.0/kind-" in message


def test_an_unknown_kind_release_is_refused_with_the_way_out():
    with pytest.raises(BackendUnavailable, match=r"(?s)kind v0.99.0 is not in labkit.s table.*--image"):
        node_image(KubeVersion.parse("1.29"), "v0.99.0")


@pytest.mark.parametrize("release, minor, image", EVERY_IMAGE)
def test_config_for_every_version_pins_the_image_and_sets_the_gate_only_on_1_28(release, minor, image):
    config = yaml.safe_load(render_config(KubeVersion.parse(minor), kind_release=release))
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert config["nodes"] == [{"role": "control-plane", "image": image}]
    if minor == "1.28":
        assert config["featureGates"] == {SIDECAR_GATE: True}  # alpha: off unless set
    else:
        assert "featureGates" not in config


def test_gate_is_written_only_where_it_changes_something_and_is_allowed():
    assert kind_feature_gates(KubeVersion.parse("1.28")) == {SIDECAR_GATE: True}
    assert kind_feature_gates(KubeVersion.parse("1.28"), {SIDECAR_GATE: False}) == {}       # 1.28's default
    assert kind_feature_gates(KubeVersion.parse("1.29"), {SIDECAR_GATE: False}) == {SIDECAR_GATE: False}  # beta: may be turned off
    assert kind_feature_gates(KubeVersion.parse("1.29"), {SIDECAR_GATE: True}) == {}        # already on
    for minor in range(33, 37):  # GA, 1.33 to 1.36: locked on; writing it only adds a deprecation warning
        assert gate_settable(minor)
        assert kind_feature_gates(KubeVersion(1, minor), {SIDECAR_GATE: True}) == {}
        with pytest.raises(InvalidInput, match="locked"):
            kind_feature_gates(KubeVersion(1, minor), {SIDECAR_GATE: False})
    for minor in range(37, NEWEST_MINOR + 1):  # removed in 1.37: setting it breaks the kubelet
        assert not gate_settable(minor)
        with pytest.raises(InvalidInput, match=r"removed in 1\.37"):
            kind_feature_gates(KubeVersion(1, minor), {SIDECAR_GATE: True})
        assert kind_feature_gates(KubeVersion(1, minor)) == {}


def test_the_gate_still_exists_locked_on_in_1_36_and_is_gone_in_1_37():
    # kubernetes/kubernetes#137755 removed it; CHANGELOG-1.37 lists it under v1.37.0-alpha.1.
    on_136 = behaviour("1.36", {SIDECAR_GATE: True})
    assert on_136.sidecar_gate == "ga" and on_136.sidecars_enabled
    assert on_136.feature_gates == {SIDECAR_GATE: True}
    with pytest.raises(InvalidInput, match=r"locked to true \(GA in 1\.33\)"):
        behaviour("1.36", {SIDECAR_GATE: False})
    with pytest.raises(InvalidInput, match=r"unrecognized feature gate: SidecarContainers \(removed in 1\.37; "
                                           r"sidecars are always on in 1\.37\)"):
        behaviour("1.37", {SIDECAR_GATE: True})
    assert behaviour("1.37").sidecar_gate == "removed" and behaviour("1.37").feature_gates == {}


def test_the_blogs_1_28_config_is_labkits_config_for_kind_v0_20():
    manifest = ROOT / "manifests" / "kind-sidecar-k8s1.28.yaml"
    if not manifest.exists():
        pytest.skip("manifests/kind-sidecar-k8s1.28.yaml is not in the tree")
    assert yaml.safe_load(render_config(KubeVersion.parse("1.28"), kind_release="v0.20.0")) == yaml.safe_load(manifest.read_text())


def test_print_config_without_kind_uses_the_release_that_lists_the_version():
    def no_kind(argv, **kwargs):
        raise FileNotFoundError(argv[0])

    text = print_config("1.28", "sidecar-lab", runner=no_kind)
    assert "# kind is not installed; this is the image kind v0.25.0 lists" in text
    body = yaml.safe_load(text)
    assert body["nodes"][0]["image"] == KIND_NODE_IMAGES["v0.25.0"]["1.28"]
    with pytest.raises(InvalidInput, match="--name"):
        print_config("1.28", "Not_Valid", runner=no_kind)


@pytest.mark.parametrize("text, release", [
    ("kind v0.29.0 go1.24.2 linux/amd64", "v0.29.0"),
    ("kind v0.20.0 go1.20.4 darwin/arm64\n", "v0.20.0"),
    ("kind v0.33.0-alpha+0a1b2c3d go1.25.1 linux/amd64", "v0.33.0-alpha"),
])
def test_parse_kind_version(text, release):
    assert parse_kind_version(text) == release


def test_parse_kind_version_rejects_other_text():
    with pytest.raises(LabkitError, match="cannot read the kind version"):
        parse_kind_version("Docker version 28.2.2")


@pytest.mark.parametrize("name", ["sidecar-lab", "kind-sidecar-k8s1.28", "a", "x" * 50])
def test_valid_cluster_names(name):
    assert validate_cluster_name(name) == name


@pytest.mark.parametrize("name, why", [("", "empty"), ("Sidecar", "lowercase"), ("side_car", "lowercase"),
                                       ("side car", "lowercase"), ("x" * 51, "at most 50")])
def test_invalid_cluster_names(name, why):
    with pytest.raises(InvalidInput, match=why) as info:
        validate_cluster_name(name)
    assert info.value.field == "cluster_name"


def test_state_dir_follows_xdg_and_home(tmp_path):
    assert state_dir({"XDG_CACHE_HOME": str(tmp_path / "cache"), "HOME": "/nowhere"}) == tmp_path / "cache" / "labkit"
    assert state_dir({"HOME": str(tmp_path)}) == tmp_path / ".cache" / "labkit"
