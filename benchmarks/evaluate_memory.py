"""`evaluate` on cached face tracks: clips per second per detector, and peak memory from 1,000 to 10,000 clips.

    python benchmarks/evaluate_memory.py [--corpus DIR] [--sizes 1000,10000] [--no-record]

Target (issue "Detectors"): memory flat from 1,000 to 10,000 clips (scores stream into scores.parquet; no
prediction is kept in memory). The clips are the demo corpus's test clips, each listed many times under new clip
ids and 50 identities (their face tracks come from the analysis cache, so this measures the evaluation, not face
tracking). Each size runs in a fresh process whose peak RSS (ru_maxrss) is recorded. Prints a table and writes
benchmarks/results/evaluate_memory.json with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "evaluate_memory.json"
DETECTORS = ("shortcut", "sync", "blink")
SPEED_CLIPS = 200


def child(corpus: Path, detectors: list[Path], n: int, output: Path) -> None:
    from fakebench.corpus.manifest import load_corpus
    from fakebench.detection import evaluate_detectors, load_detectors
    from fakebench.samples import Sample

    base = load_corpus(corpus).samples(split="test")
    samples = [Sample.from_path(base[i % len(base)].path, clip_id=f"c{i:06d}", label=base[i % len(base)].label,
                                identity=f"id{i % 50}", split="test",
                                meta={"generator": base[i % len(base)].meta.get("generator")})
               for i in range(n)]
    t0 = time.perf_counter()
    evaluate_detectors(load_detectors(detectors), samples, output, n_boot=200)
    seconds = time.perf_counter() - t0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"clips": n, "seconds": round(seconds, 1), "peak_rss_mib": round(peak_mib, 1)}))


def run_child(corpus: Path, detectors: list[Path], n: int, output: Path) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", str(n), "--corpus", str(corpus), "--out", str(output),
                           *map(str, detectors)], capture_output=True, text=True, timeout=7200)
    if done.returncode != 0:
        raise SystemExit(f"evaluation of {n} clips failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="Demo corpus folder (built here when missing).")
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("detectors", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.corpus, args.detectors, args.child, args.out)
        return

    from fakebench.corpus.demo import make_demo_corpus
    from fakebench.corpus.manifest import load_corpus
    from fakebench.detection import train_detector

    with tempfile.TemporaryDirectory(prefix="fakebench-eval-bench-") as tmp:
        tmp = Path(tmp)
        folder = args.corpus or tmp / "demo"
        if not (folder / "manifest.parquet").is_file():
            make_demo_corpus(folder, clips_per_identity=2, variants=6, generators=("desync", "static"), workers=2)
        corpus = load_corpus(folder)
        for sample in corpus.samples():  # fill the face-analysis cache
            _ = sample.track
            sample.release()
        folders = []
        for name in DETECTORS:
            train_detector(name, corpus.samples(split="train"), corpus.samples(split="val"), tmp / name)
            folders.append(tmp / name)
        load_before = os.getloadavg()[0]
        speed = []
        for name, det in zip(DETECTORS, folders, strict=True):
            r = run_child(folder, [det], SPEED_CLIPS, tmp / f"speed-{name}")
            speed.append({"detector": name, "clips_per_s": round(SPEED_CLIPS / r["seconds"], 1)})
        memory = [run_child(folder, folders, int(n), tmp / f"mem-{n}") for n in args.sizes.split(",")]
    print(f"{'detector':<12s}{'clips/s':>10s}   ({SPEED_CLIPS} clips, cached tracks, one process each)")
    for r in speed:
        print(f"{r['detector']:<12s}{r['clips_per_s']:>10.1f}")
    print(f"\n{'clips':>8s}{'seconds':>10s}{'peak RSS MiB':>14s}   (detectors: {', '.join(DETECTORS)})")
    for r in memory:
        print(f"{r['clips']:>8d}{r['seconds']:>10.1f}{r['peak_rss_mib']:>14.1f}")
    growth = memory[-1]["peak_rss_mib"] - memory[0]["peak_rss_mib"]
    print(f"peak memory {memory[0]['clips']} -> {memory[-1]['clips']} clips: {growth:+.1f} MiB")
    if not args.no_record:
        record = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                  "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                  "speed": speed, "memory": memory, "growth_mib": round(growth, 1)}
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(record, indent=1) + "\n")
        print(f"recorded in {RESULTS}")


if __name__ == "__main__":
    main()
