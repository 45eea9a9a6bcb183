"""Benchmark of face analysis: cold and cached throughput per resolution, and peak memory on a long clip.

    python benchmarks/analyze.py            # everything (the 10-minute 720p clip takes ~10 minutes)
    python benchmarks/analyze.py --quick    # skip the long clip
    python benchmarks/analyze.py --memory-only   # only the long clip; keeps the recorded throughput rows

Targets (issue "Foundation"): cold analysis (decode + detection + tracking + 68 landmarks) of a
25 fps 256x256 clip >= 75 frames/s on 2 cores; cached >= 20x faster than cold; peak memory for a
10-minute 720p clip < 2 GiB. The clips are a bundled real photo under smooth random head motion,
encoded as H.264 mp4 with speech. Prints a table and writes benchmarks/results/analyze.json.
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
from fractions import Fraction
from pathlib import Path

import numpy as np
from procmem import peak_rss_mib, rss_mib

RESULTS = Path(__file__).parent / "results" / "analyze.json"


def make_clip(path: Path, size: tuple[int, int], seconds: float, fps: float = 25.0) -> None:
    """Encode a moving-photo clip with speech, streaming frames so a long clip never sits in memory."""
    import av

    from fakebench.assets import load_photo
    from fakebench.media import resample_audio
    from fakebench.speech import synthesize
    from fakebench.synthetic import head_motion, moving_photo

    h, w = size
    photo = load_photo("astronaut")
    n = int(round(seconds * fps))
    motion = head_motion(n, fps, seed=11)
    zoom = min(h, w) / 256  # face about 43 px between the eyes at 256x256, scaled with the frame
    speech, sr, _ = synthesize("The quick brown fox jumps over the lazy dog while we benchmark face tracking.")
    speech = resample_audio(speech, sr, 16000)
    audio = np.tile(speech, int(np.ceil(seconds * 16000 / speech.size)))[: int(seconds * 16000)]
    cycle = min(n, 250)  # a long clip repeats a 10 s cycle of motion: cheap to make, same work to analyze
    cycle_frames = np.concatenate([
        moving_photo(photo, n_frames=min(50, cycle - s), size=(h, w), fps=fps, centre=(225, 130), zoom=zoom,
                     motion=motion[s:s + 50]).clip.frames for s in range(0, cycle, 50)])
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"crf": "20", "preset": "veryfast" if n <= 1000 else "ultrafast"}
        aus = out.add_stream("aac", rate=16000, layout="mono")
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(cycle_frames[i % cycle], format="rgb24")
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        for start in range(0, audio.size, 16000):
            af = av.AudioFrame.from_ndarray(audio[None, start:start + 16000].astype(np.float32), format="fltp",
                                            layout="mono")
            af.sample_rate, af.pts = 16000, start
            out.mux(aus.encode(af))
        out.mux(aus.encode(None))


def time_analysis(path: Path) -> dict:
    from fakebench.faces import analyze

    t0 = time.perf_counter()
    cold = analyze(path, use_cache=False)
    cold_s = time.perf_counter() - t0
    analyze(path)  # fill the cache
    warm_times = []
    for _ in range(5):
        t0 = time.perf_counter()
        warm = analyze(path)
        warm_times.append(time.perf_counter() - t0)
    assert warm.meta["cache_hit"]
    warm_s = float(np.median(warm_times))
    return {"frames": cold.n_frames, "face_frames": cold.face_frames, "cold_s": round(cold_s, 3),
            "cold_fps": round(cold.n_frames / cold_s, 1), "warm_ms": round(warm_s * 1000, 2),
            "warm_speedup": round(cold_s / warm_s, 1)}


def peak_memory_child(path: Path) -> None:
    """Run in a fresh process: analyze, then report peak RSS and RSS every 10 s (the parent reads it)."""
    import threading

    from fakebench.faces import analyze

    t0 = time.perf_counter()
    profile: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(10.0 if profile else 0.0):
            profile.append((round(time.perf_counter() - t0, 1), round(rss_mib(), 1)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    track = analyze(path, use_cache=False)
    done.set()
    sampler.join()
    print(json.dumps({"frames": track.n_frames, "face_frames": track.face_frames, "seconds": time.perf_counter() - t0,
                      "peak_rss_mib": round(peak_rss_mib(), 1), "rss_every_10s_mib": profile}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 10-minute 720p memory run")
    parser.add_argument("--memory-only", action="store_true",
                        help="only the 10-minute 720p memory run; the recorded throughput rows are kept")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the throughput clips")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    if args.child:
        peak_memory_child(args.child)
        return
    os.environ.setdefault("FAKEBENCH_CACHE", tempfile.mkdtemp(prefix="fakebench-bench-cache-"))
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    throughput = previous.get("throughput") if args.memory_only else None
    memory = None
    with tempfile.TemporaryDirectory() as tmp:
        if not args.memory_only:
            throughput = measure_throughput(Path(tmp), args.seconds)
        if not args.quick:
            memory = measure_long_clip_memory(Path(tmp))
    memory = memory or previous.get("long_clip_memory")
    print_table(throughput, memory)
    rows = throughput["rows"] if throughput else []
    target = next((r for r in rows if r["clip"].startswith("256x256")), None)
    verdict = {
        "cold_256_fps>=75": None if target is None else target["cold_fps"] >= 75,
        "warm_speedup>=20": None if not rows else all(r["warm_speedup"] >= 20 for r in rows),
        "peak_720p_10min<2GiB": None if memory is None else memory["peak_rss_mib"] < 2048,
    }
    print("targets:", ", ".join(f"{k}: {'met' if v else 'NOT met' if v is not None else 'not run'}"
                                for k, v in verdict.items()))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    record = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "throughput": throughput,
              "long_clip_memory": memory, "targets": verdict}
    RESULTS.write_text(json.dumps(record, indent=1) + "\n")
    print(f"recorded in {RESULTS}")


def measure_throughput(tmp: Path, seconds: float) -> dict:
    import torch

    from fakebench.faces import analyze
    from fakebench.media import Clip

    analyze(Clip(frames=np.zeros((2, 64, 64, 3), np.uint8), fps=25.0), use_cache=False)  # load the models
    load_before = os.getloadavg()[0]
    rows = []
    for size in [(144, 176), (256, 256), (360, 640)]:
        path = tmp / f"clip_{size[1]}x{size[0]}.mp4"
        make_clip(path, size, seconds)
        rows.append({"clip": f"{size[1]}x{size[0]}, {seconds:g} s, 25 fps", **time_analysis(path)})
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "torch_threads": torch.get_num_threads(),
            "load_average": [load_before, os.getloadavg()[0]], "rows": rows}


def measure_long_clip_memory(tmp: Path) -> dict:
    path = tmp / "long_720p.mp4"
    t0 = time.perf_counter()
    make_clip(path, (720, 1280), 600.0)
    made_s = time.perf_counter() - t0
    load_before = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, __file__, "--child", str(path)], capture_output=True, text=True,
                          check=True)
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "clip": "1280x720, 600 s, 25 fps",
            **json.loads(proc.stdout.strip().splitlines()[-1]), "encode_s": round(made_s, 1),
            "load_average": [load_before, os.getloadavg()[0]]}


def print_table(throughput: dict | None, memory: dict | None) -> None:
    print(f"\nface analysis on {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    if throughput:
        print(f"throughput ({throughput['date']}, torch threads {throughput['torch_threads']}, "
              f"load {throughput['load_average']})")
        print(f"{'clip':28} {'frames':>6} {'faces':>6} {'cold s':>7} {'cold fps':>9} {'warm ms':>8} {'speedup':>8}")
        for r in throughput["rows"]:
            print(f"{r['clip']:28} {r['frames']:6d} {r['face_frames']:6d} {r['cold_s']:7.2f} {r['cold_fps']:9.1f} "
                  f"{r['warm_ms']:8.2f} {r['warm_speedup']:7.0f}x")
    if memory:
        print(f"\npeak memory analyzing {memory['clip']} ({memory.get('date', '?')}): {memory['peak_rss_mib']:.0f} MiB "
              f"({memory['frames']} frames in {memory['seconds']:.0f} s, "
              f"{memory['frames'] / memory['seconds']:.1f} frames/s)")


if __name__ == "__main__":
    main()
