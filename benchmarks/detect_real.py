"""Detectors on real talking clips: how often each calls a real person fake (false alarms).

    python benchmarks/detect_real.py [--data DIR] [--detector DIR ...] [--no-record]

Every clip in DIR (default ../shared/data/real_av: 19 real people speaking, evaluation only, never committed) is
real, so every "fake" decision is a false alarm. Scored by the detectors `fakebench detect` uses by default (the
ones shipped in fakebench/data/detectors) and by any saved detector folders given with --detector (for example
those a demo run trained: demo_out/run/detectors/fusion). Per detector: the share of clips with P(fake) >= 0.65
(`fakebench.detection.DECIDE_FAKE`), the mean P(fake), and the clips it could not score; and the combined
decision of the default set, as `fakebench detect` makes it. Prints a table and writes
benchmarks/results/detect_real.json with the load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results" / "detect_real.json"
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real_av"


def score(folders: list[Path], paths: list[Path]) -> dict[str, Any]:
    """Each clip's verdict by this set of detectors, and per detector the false-alarm share."""
    from fakebench.detection import DECIDE_FAKE, detect_clips, load_detectors
    from fakebench.samples import Sample

    detectors = load_detectors(folders)
    rows: list[dict[str, Any]] = []
    per: dict[str, list] = {name: [] for name in detectors}
    for path in paths:
        sample = Sample.from_path(path)
        (verdict,) = detect_clips([sample], detectors)
        sample.release()
        rows.append({"clip": path.name, "decision": verdict.decision, "p_fake": verdict.p_fake,
                     "detectors": {d["name"]: d["p_fake"] for d in verdict.detectors}})
        for d in verdict.detectors:
            per[d["name"]].append(d["p_fake"])
    summary = {}
    for name, values in per.items():
        scored = np.array([v for v in values if v is not None], float)
        summary[name] = {"scored": len(scored), "not_scored": len(values) - len(scored),
                         "false_alarms": int((scored >= DECIDE_FAKE).sum()),
                         "false_alarm_share": round(float((scored >= DECIDE_FAKE).mean()), 3) if len(scored) else None,
                         "mean_p_fake": round(float(scored.mean()), 3) if len(scored) else None}
    return {"detectors": [str(f) for f in folders], "per_detector": summary,
            "decisions": dict(Counter(r["decision"] for r in rows)), "clips": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--detector", type=Path, action="append", default=[])
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    from fakebench.detection import default_detector_folders
    from fakebench.media import VIDEO_EXTENSIONS

    if not args.data.is_dir():
        raise SystemExit(f"no real clips at {args.data}; give --data DIR")
    paths = sorted(p for p in args.data.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    sets = {"default (shipped)": score(default_detector_folders(), paths)}
    for folder in args.detector:
        sets[str(folder)] = score([folder], paths)
    record = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)], "data": str(args.data),
              "clips": len(paths), "seconds": round(time.perf_counter() - t0, 1), "sets": sets}
    print(f"{len(paths)} real clips ({args.data}); every 'fake' is a false alarm")
    print(f"{'set':40s}{'detector':12s}{'scored':>8s}{'false alarms':>14s}{'mean P(fake)':>14s}")
    for name, result in sets.items():
        for detector, s in result["per_detector"].items():
            share = ("–" if s["false_alarm_share"] is None
                     else f"{s['false_alarms']} ({100 * s['false_alarm_share']:.0f} %)")
            mean = "–" if s["mean_p_fake"] is None else f"{s['mean_p_fake']:.2f}"
            print(f"{name[-39:]:40s}{detector:12s}{s['scored']:8d}{share:>14s}{mean:>14s}")
        print(f"{'':40s}{'decisions':12s} {result['decisions']}")
    if not args.no_record:
        from record import write_record

        write_record(RESULTS, record)


if __name__ == "__main__":
    main()
