"""The served simulator's list Tables built from cached parts (``labkit.serve.tables.TableCache``)
give the same bytes as the Table built afresh, and follow each object's changes and the clock."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

pytest.importorskip("aiohttp")

from labkit.printers import parse_time  # noqa: E402
from labkit.serve import tables  # noqa: E402

WATCH = Path(__file__).parent / "data" / "watch"
STREAMS = ["job-sidecar-1.29.json", "deployment-delete-sigkill-1.29.json", "sidecar-restart-1.29.json",
           "sidecar-liveness-restarts-1.37.json"]


def objects(kind: str) -> list[dict]:
    """Every object of ``kind`` in the recorded watch streams, each version renamed apart."""
    found = []
    for name in STREAMS:
        for i, item in enumerate(json.loads((WATCH / name).read_text())["stream"]):
            obj = item["event"]["object"]
            if obj["kind"] == kind:
                obj = copy.deepcopy(obj)
                obj["metadata"]["name"] += f"-{i}"
                found.append(obj)
    return found


def fresh(kind: str, objs: list[dict], include: str) -> bytes:
    return json.dumps(tables.table(kind, objs, 42, include=include), separators=(",", ":")).encode()


@pytest.fixture
def clock(monkeypatch):
    now = [parse_time("2025-06-01T10:00:20Z")]
    monkeypatch.setattr(tables.time, "time", lambda: now[0])
    return now


@pytest.mark.parametrize("kind", ["Pod", "Job", "Deployment", "Event"])
@pytest.mark.parametrize("include", ["Metadata", "Object", "None"])
def test_cached_table_is_the_table_built_afresh(clock, kind, include):
    objs = objects(kind)
    assert objs
    cache = tables.TableCache()
    first = cache.encode(kind, objs, 42, include=include)
    assert first == fresh(kind, objs, include)
    clock[0] += 3600 + 125    # the second time from the cache: the ages still move with the clock
    again = cache.encode(kind, objs, 42, include=include)
    assert again == fresh(kind, objs, include)
    assert again != first


def test_a_new_version_of_a_pod_replaces_its_cached_row(clock):
    first, later = [p for p in objects("Pod") if p["metadata"]["name"].startswith("sidecar-job")][0:5:4]
    later = copy.deepcopy(later)
    later["metadata"]["name"] = first["metadata"]["name"]
    cache = tables.TableCache()
    rows = json.loads(cache.encode("Pod", [first], 1))["rows"]
    assert rows[0]["cells"][1:3] == ["0/2", "Pending"]
    rows = json.loads(cache.encode("Pod", [later], 2))["rows"]
    assert rows[0]["cells"][1:3] == ["1/2", "PodInitializing"]
    assert rows[0]["object"]["metadata"]["resourceVersion"] == later["metadata"]["resourceVersion"]
