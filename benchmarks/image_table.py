"""The image table's cost: reading labkit/data/images.yaml once, and one lookup.

Each repeat runs a fresh interpreter that imports labkit.sim (the table is not read at
import), then times the first ``images.table()`` (the YAML file parsed once) and 10,000
lookups of registry variants. Prints the machine and the medians.

    .venv/bin/python benchmarks/image_table.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
from labkit.sim import images
assert images.table.cache_info().currsize == 0, "the table was read at import"
t0 = time.perf_counter(); rows = images.table(); t1 = time.perf_counter()
names = ["docker.io/library/nginx:1.27", "ghcr.io/static-web-server/static-web-server:2", "envoyproxy/envoy:v1.31.0",
         "registry.example.com/cache/envoyproxy/envoy", "example.com/unknown:1"]
t2 = time.perf_counter()
for i in range(10_000):
    images.lookup(names[i % len(names)])
t3 = time.perf_counter()
print(json.dumps({{"rows": len(rows), "load_ms": 1000 * (t1 - t0), "lookup_us": 1e6 * (t3 - t2) / 10_000}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeat):
        out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT))], capture_output=True, text=True,
                             check=True).stdout
        runs.append(json.loads(out))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {platform.system()}")
    print(f"rows: {runs[0]['rows']}")
    print(f"first table() (parse the YAML): median {statistics.median(r['load_ms'] for r in runs):.1f} ms "
          f"over {args.repeat} runs")
    print(f"lookup: median {statistics.median(r['lookup_us'] for r in runs):.1f} µs each")


if __name__ == "__main__":
    main()
