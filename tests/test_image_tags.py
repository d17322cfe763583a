"""Every image the lab applies names a tag or a digest.

An untagged image means ``:latest``, which some registries do not have at all
(registry.k8s.io/e2e-test-images/agnhost has no ``latest``: a real node sits in ErrImagePull while the
simulator, which pulls nothing, runs the pod). This scans the places manifests come from: the
scenarios and other test data, manifests/, the notebooks, the docs and labkit's data.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLACES = ("tests/data", "manifests", "notebooks", "docs", "labkit/data")
SUFFIXES = (".yaml", ".yml", ".json", ".md", ".ipynb")
# `image: X`, `"image": "X"`, `'image': 'X'` with an image reference as the value
IMAGE = re.compile(r"""(?:^|[\s{,\[])["']?image["']?\s*:\s*["']?"""
                   r"""((?:[a-z0-9.-]+:[0-9]+/)?[a-z0-9][a-z0-9._/-]*(?::[A-Za-z0-9._-]+)?(?:@sha256:[0-9a-f]+)?)"""
                   r"""["']?\s*(?:$|[,}\]#\\])""",
                   re.M)


def images_in(text: str) -> list[str]:
    return IMAGE.findall(text)


def untagged(image: str) -> bool:
    """No tag (a ``:`` in the last path part; one in the host is a port) and no digest."""
    return "@" not in image and ":" not in image.rsplit("/", 1)[-1]


def _text(path: Path) -> str:
    text = path.read_text(encoding="utf-8", errors="replace")  # tests/data/invalid holds a non-UTF-8 file
    if path.suffix == ".ipynb":  # the cells' sources, as the notebook's reader sees them
        return "\n".join("".join(cell["source"]) for cell in json.loads(text)["cells"])
    return text


def _files() -> list[Path]:
    files = [ROOT / "README.md"]
    for place in PLACES:
        files += sorted(p for p in (ROOT / place).rglob("*") if p.is_file() and p.suffix in SUFFIXES)
    return files


def test_the_scan_finds_images_in_every_form_and_tells_a_port_from_a_tag():
    text = ('spec:\n  containers:\n  - image: busybox\n    name: a\n'
            '{"image": "registry.k8s.io/e2e-test-images/agnhost", "x": 1}\n'
            "c = {'image': 'localhost:5000/web:1.2'}\n"
            '    image: kindest/node:v1.28.0@sha256:' + "b" * 64 + "\n"
            '"      image: alpine:3.20\\n",\n')
    found = images_in(text)
    assert found == ["busybox", "registry.k8s.io/e2e-test-images/agnhost", "localhost:5000/web:1.2",
                     "kindest/node:v1.28.0@sha256:" + "b" * 64, "alpine:3.20"]
    assert [untagged(i) for i in found] == [True, True, False, False, False]
    assert untagged("localhost:5000/web")


def test_every_image_the_lab_applies_has_a_tag_or_digest():
    seen, bare = 0, []
    for path in _files():
        for image in images_in(_text(path)):
            seen += 1
            if untagged(image):
                bare.append(f"{path.relative_to(ROOT)}: {image}")
    assert seen > 100  # the scan reads the scenarios, notebooks and manifests at all
    assert bare == [], "untagged images (pull :latest, which may not exist):\n" + "\n".join(bare)
