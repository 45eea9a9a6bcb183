"""`fakebench detect` on a 10 s 25 fps talking clip with the default detectors, whole process, cold and warm.

    python benchmarks/detect.py [--no-record]

Targets (issue "Detectors"): at most 10 s with a cold face-analysis cache, at most 3 s warm, on 2 cores. The
clip is a 256x256 warp clip of a bundled photo speaking synthesized sentences (made once, outside the timing).
Prints a table and writes benchmarks/results/detect.json with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "detect.json"
RUNS = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from metrics import make_clip  # the same 10 s clip as the metrics benchmark

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="fakebench-detect-bench-") as tmp:
        clip, _ = make_clip(Path(tmp))
        rows = []
        for run in range(RUNS):
            cache = Path(tmp) / f"cache{run}"
            env = {**os.environ, "FAKEBENCH_CACHE": str(cache)}
            timings = {}
            for state in ("cold", "warm"):
                t0 = time.perf_counter()
                done = subprocess.run([str(Path(sys.executable).parent / "fakebench"), "detect", str(clip), "--json"],
                                      capture_output=True, text=True, env=env, timeout=600)
                timings[state] = time.perf_counter() - t0
                if done.returncode != 0:
                    raise SystemExit(f"detect failed: {done.stderr[-2000:]}")
            verdict = json.loads(done.stdout.splitlines()[-1])
            rows.append({"cold_s": round(timings["cold"], 2), "warm_s": round(timings["warm"], 2),
                         "detectors": [d["name"] for d in verdict["detectors"]], "decision": verdict["decision"]})
    cold = sorted(r["cold_s"] for r in rows)[RUNS // 2]
    warm = sorted(r["warm_s"] for r in rows)[RUNS // 2]
    print(f"{'run':>4s}{'cold s':>10s}{'warm s':>10s}  detectors")
    for i, r in enumerate(rows):
        print(f"{i:>4d}{r['cold_s']:>10.2f}{r['warm_s']:>10.2f}  {', '.join(r['detectors'])} -> {r['decision']}")
    print(f"median: cold {cold:.2f} s (target <= 10), warm {warm:.2f} s (target <= 3)")
    if not args.no_record:
        record = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                  "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                  "clip": "256x256, 10 s, 25 fps, warp", "runs": rows, "median_cold_s": cold, "median_warm_s": warm,
                  "targets": {"cold<=10s": cold <= 10, "warm<=3s": warm <= 3}}
        RESULTS.write_text(json.dumps(record, indent=1) + "\n")
        print(f"recorded in {RESULTS}")


if __name__ == "__main__":
    main()
