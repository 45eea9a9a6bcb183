"""Benchmark of the per-clip metrics: a 10 s 25 fps 256x256 talking clip with its analysis cached.

    python benchmarks/metrics.py

Target (issue "Metrics"): all per-clip metrics (sync, blink, identity, quality) for a 10 s 25 fps
clip with the analysis cached in under 2 s on 2 cores, decoding included. FID feature throughput
against pytorch-fid is measured by benchmarks/fid_throughput.py (its last result is shown here).
Prints a table and writes benchmarks/results/metrics.json.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "metrics.json"
FID_RESULTS = Path(__file__).parent / "results" / "fid_throughput.json"


def make_clip(folder: Path) -> tuple[Path, np.ndarray]:
    from fakebench.assets import load_photo
    from fakebench.generators.base import create
    from fakebench.media import resample_audio
    from fakebench.speech import synthesize

    photo = np.ascontiguousarray(load_photo("astronaut")[20:276, 100:356])
    text = ("Place blue at F two now. Bin green by S nine again. Set white with P four please. "
            "Lay red in D seven soon. A single photo can make a talking portrait.")
    audio, sr, _ = synthesize(text, voice="en-us")
    audio = resample_audio(audio, sr, 16000)[: 10 * 16000]
    path = folder / "clip.mp4"
    create("warp").generate(photo, audio, 16000, seed=0).save(path)
    return path, photo


def timed(timings: dict[str, list[float]], name: str, fn, *args, **kwargs):
    t0 = time.perf_counter()
    value = fn(*args, **kwargs)
    timings.setdefault(name, []).append(time.perf_counter() - t0)
    return value


def main() -> None:
    import torch

    torch.set_num_threads(2)
    os.environ.setdefault("FAKEBENCH_CACHE", tempfile.mkdtemp(prefix="fakebench-bench-cache-"))
    from fakebench.faces import analyze
    from fakebench.media import read_clip
    from fakebench.metrics.blink import blink_metrics
    from fakebench.metrics.identity import identity_metrics
    from fakebench.metrics.quality import quality_metrics
    from fakebench.metrics.sync import sync_metrics

    with tempfile.TemporaryDirectory() as tmp:
        path, photo = make_clip(Path(tmp))
        analyze(path)  # cold analysis, cached for what follows
        timings: dict[str, list[float]] = {}
        for _ in range(3):
            track = timed(timings, "cached analysis", analyze, path)
            clip = timed(timings, "decode clip", read_clip, path)
            timed(timings, "sync (envelope)", sync_metrics, clip, track, method="envelope")
            timed(timings, "blink", blink_metrics, clip, track)
            timed(timings, "identity (photo ref)", identity_metrics, clip, track, photo)
            timed(timings, "quality", quality_metrics, clip, track)
    best = {k: min(v) for k, v in timings.items()}
    total = sum(best.values())
    print(f"\nper-clip metrics, 10 s 25 fps 256x256 clip, analysis cached ({platform.machine()}, "
          f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.1f})")
    print(f"{'step':24} {'seconds (best of 3)':>20}")
    for k, v in best.items():
        print(f"{k:24} {v:20.3f}")
    print(f"{'total':24} {total:20.3f}   target < 2 s: {'met' if total < 2 else 'NOT met'}")
    fid = json.loads(FID_RESULTS.read_text()) if FID_RESULTS.exists() else None
    if fid:
        ratio = fid["features"]["ratio_ours_png_vs_theirs"]
        print(f"FID features vs pytorch-fid (benchmarks/fid_throughput.py, {fid['date']}): {ratio:.2f}x "
              f"(target >= 0.9x)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average_1min": round(os.getloadavg()[0], 2), "seconds_best_of_3": best, "total_s": total,
        "targets": {"per_clip_total<2s": total < 2},
    }, indent=1) + "\n")
    print(f"recorded in {RESULTS}")


if __name__ == "__main__":
    main()
