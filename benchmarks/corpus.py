"""Benchmark of corpus building and manifests: pool speed-up, Ray parity, memory, 10,000-row manifests.

    python benchmarks/corpus.py            # 64 real clips (memory: 32 and 64), 2 repeats
    python benchmarks/corpus.py --clips 32 # another size
    python benchmarks/corpus.py --quick    # 8 real clips (memory: 4 and 8), 1 repeat

1. Speed-up: `fakebench corpus build` of the same real corpus (clips of the bundled photos speaking
   synthesized sentences, 256x256, ~2 s) with generators warp, static and desync, on the pool executor with
   1 worker and with 2 workers, each a fresh process with a fresh analysis cache, runs interleaved; best
   wall time of each, start-up included (the command's imports, the pool's imports: ~9 s on the 2-core
   reference machine that do not parallelise, which is why the corpus is not smaller; the speed-up after the
   first finished clip is recorded beside it). A worker is one process with one thread (torch, decoders and
   x264 alike). Target: 2 workers >= 1.7x faster than 1.
2. Ray: the same build on a local Ray instance with 2 workers; its manifest must equal the pool's.
3. Memory: the peak proportional set size (resident memory, shared pages split between the processes
   sharing them) of the whole build (the command, its forkserver and its workers, sampled every 50 ms from
   /proc) for N and 2N real clips (generators static and desync); the CPU time of the tree is recorded
   beside each run's wall time. Target: no growth with the clip count (ratio <= 1.15) of the anonymous part
   (Pss_Anon: the build's own heap and arrays). The total also splits the pages of torch's and the other
   libraries' files with every other process that maps them, so it moves by a few hundred MiB with what else
   runs on the machine (1135 and 1425 MiB for the same 32-clip build); it is recorded beside it.
4. Manifests: a 10,000-row manifest (1,000 identities, files present) loaded with validation, filtered
   (fakes of one generator in one split) and split anew; best of 3. Target: < 1 s.

Prints a table and writes benchmarks/results/corpus.json. The machine should be otherwise idle: the
speed-up needs two free cores (the 1-minute load average before and after each run is recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results" / "corpus.json"
SENTENCES = ["Place blue at F two now.", "Bin green by S nine again.", "Lay white with J four soon.",
             "Set red in G one please."]
VOICES = ["en-us", "en-gb", "en-us+f3", "en-029"]
FAKEBENCH = [sys.executable, "-c", "import sys; from fakebench.cli import main; sys.exit(main(sys.argv[1:]))"]


# ---------------------------------------------------------------------------------------------- inputs

def make_real_corpus(folder: Path, n_clips: int) -> Path:
    """n_clips talking clips of the bundled photos (alternating), imported as a `folder` corpus."""
    from fakebench.assets import load_photo, photo_names
    from fakebench.corpus.demo import photo_crop as _photo_crop
    from fakebench.corpus.importers import import_dataset
    from fakebench.media import resample_audio, write_clip
    from fakebench.speech import synthesize
    from fakebench.synthetic import moving_photo

    crops = {name: _photo_crop(load_photo(name)) for name in photo_names()}
    for i in range(n_clips):
        name = photo_names()[i % len(crops)]
        speech, sr, _ = synthesize(SENTENCES[i % len(SENTENCES)], voice=VOICES[i % len(VOICES)])
        pad = np.zeros(4000, np.float32)
        audio = np.concatenate([pad, resample_audio(speech, sr, 16000), pad])
        clip = moving_photo(crops[name], n_frames=int(round(audio.size / 16000 * 25)), size=(256, 256),
                            audio=audio, sample_rate=16000, seed=i).clip
        write_clip(folder / "dataset" / "real" / name / f"clip{i:03d}.mp4", clip)
    import_dataset("folder", folder / "dataset", folder / "corpus")
    return folder / "corpus"


# ---------------------------------------------------------------------------------------------- measuring

def process_tree(root: int) -> set[int]:
    """A process and all its descendants, from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root}, {root}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier and p not in tree}
        tree |= frontier
    return tree


def sample_tree(root: int, cpu_ticks: dict[int, int], *, memory: bool = True) -> tuple[float, float]:
    """Proportional set size and its anonymous part (MiB: shared pages split between their users) of the tree,
    when `memory`; records each process's CPU ticks so far in `cpu_ticks`."""
    pss_kib = anon_kib = 0
    for pid in process_tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu_ticks[pid] = max(cpu_ticks.get(pid, 0), int(fields[11]) + int(fields[12]))  # utime + stime
            if memory:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        pss_kib += int(line.split()[1])
                    elif line.startswith("Pss_Anon:"):
                        anon_kib += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return pss_kib / 1024, anon_kib / 1024


def timed_build(real: Path, out: Path, *, generators: str, workers: int, executor: str,
                memory: bool = True) -> dict[str, Any]:
    """One `fakebench corpus build` in a fresh process with a fresh analysis cache: wall, CPU, peak memory
    (when `memory`: reading smaps every 50 ms costs CPU, so the timed runs sample only CPU ticks, every
    0.5 s), and when the first clip was finished (the start-up before it does not parallelise)."""
    env = {**os.environ, "FAKEBENCH_CACHE": str(out.with_name(out.name + "-cache"))}
    command = [*FAKEBENCH, "corpus", "build", str(real), "-o", str(out), "-g", generators,
               "--workers", str(workers), "--executor", executor]
    load_before = os.getloadavg()[0]
    peak, cpu_ticks = [0.0, 0.0], {}
    t0, started = time.perf_counter(), time.time()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def sample() -> None:
        while proc.poll() is None:
            pss, anon = sample_tree(proc.pid, cpu_ticks, memory=memory)
            peak[:] = max(peak[0], pss), max(peak[1], anon)
            time.sleep(0.05 if memory else 0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"build failed ({proc.returncode}): {stderr}")
    first_done = min(path.stat().st_mtime for path in (out / ".build-state" / "done").glob("*.json"))
    return {"wall_s": round(wall, 2), "cpu_s": round(sum(cpu_ticks.values()) / os.sysconf("SC_CLK_TCK"), 1),
            "first_clip_s": round(first_done - started, 2), "peak_pss_mib": round(peak[0], 1) if memory else None,
            "peak_pss_anon_mib": round(peak[1], 1) if memory else None,
            "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)]}


def manifest_benchmark(folder: Path, rows: int = 10_000, repeats: int = 3) -> dict[str, Any]:
    from fakebench.corpus.manifest import assign_splits, filter_manifest, load_corpus, make_manifest, write_corpus

    generators = ["warp", "static", "desync", "sda"]
    records = []
    for i in range(rows):
        real = i % 5 == 0
        records.append({
            "clip_id": f"clip{i:05d}", "path": f"media/clip{i:05d}.mp4", "label": "real" if real else "fake",
            "generator": None if real else generators[i % 4], "identity": f"speaker{i % 1000:04d}",
            "source_clip": f"clip{i - i % 5:05d}", "audio_source": f"clip{i - i % 5:05d}", "split": None,
            "fps": 25.0, "sample_rate": 16000, "n_frames": 75, "duration_s": 3.0, "sha256": f"{i:064x}",
            "ground_truth": None if real else f"media/clip{i:05d}.json", "source": "grid"})
    manifest = make_manifest(records)
    manifest["split"] = assign_splits(manifest["identity"], seed=0)
    (folder / "media").mkdir(parents=True)
    for path in manifest["path"]:
        (folder / path).touch()
    write_corpus(folder, manifest, {"fingerprint": {"kind": "benchmark"}})
    times = {"load": [], "filter": [], "split": [], "total": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        corpus = load_corpus(folder)
        t1 = time.perf_counter()
        chosen = filter_manifest(corpus.manifest, label="fake", generator="warp", split=["train", "val"])
        t2 = time.perf_counter()
        split = assign_splits(corpus.manifest["identity"], seed=1)
        t3 = time.perf_counter()
        for key, value in zip(times, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
            times[key].append(value)
    assert len(chosen) > 0 and split.notna().all()
    return {"rows": rows, "identities": 1000, **{f"{k}_s": round(min(v), 4) for k, v in times.items()}}


# ---------------------------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 real clips (memory: 4 and 8), 1 repeat")
    parser.add_argument("--clips", type=int, default=64, help="real clips (default 64)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per worker count (default 2)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray run")
    args = parser.parse_args()
    n_clips, repeats = (8, 1) if args.quick else (args.clips, args.repeats)
    generators = "warp,static,desync"
    results: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_start": round(os.getloadavg()[0], 2), "real_clips": n_clips, "generators": generators,
    }
    with tempfile.TemporaryDirectory(prefix="fakebench-bench-") as tmp:
        root = Path(tmp)
        real = make_real_corpus(root / "real", n_clips)
        runs: dict[int, list[dict]] = {1: [], 2: []}
        for r in range(repeats):
            for workers in (1, 2):
                out = root / f"pool{workers}-{r}"
                runs[workers].append(timed_build(real, out, generators=generators, workers=workers,
                                                 executor="pool", memory=False))
        best = {w: min(runs[w], key=lambda x: x["wall_s"]) for w in runs}
        results["pool"] = {"1_worker": runs[1], "2_workers": runs[2],
                           "speedup_wall": round(best[1]["wall_s"] / best[2]["wall_s"], 2),
                           "speedup_after_first_clip": round((best[1]["wall_s"] - best[1]["first_clip_s"])
                                                             / (best[2]["wall_s"] - best[2]["first_clip_s"]), 2),
                           "tasks": n_clips * 4}
        if not args.no_ray:
            try:
                import ray  # noqa: F401

                ray_run = timed_build(real, root / "ray", generators=generators, workers=2, executor="ray",
                                      memory=False)
                import pandas as pd

                same = pd.read_parquet(root / "ray" / "manifest.parquet").equals(
                    pd.read_parquet(root / "pool2-0" / "manifest.parquet"))
                results["ray"] = {**ray_run, "manifest_equals_pool": bool(same)}
            except ImportError:
                results["ray"] = {"skipped": "ray is not installed (pip install 'fakebench[ray]')"}
        half = make_real_corpus(root / "half", n_clips // 2)
        memory = {}
        for label, corpus, count in (("n", half, n_clips // 2), ("2n", real, n_clips)):
            run = timed_build(corpus, root / f"memory-{label}", generators="static,desync", workers=2,
                              executor="pool")
            memory[label] = {"real_clips": count, **run}
        memory["ratio_2n_over_n"] = round(memory["2n"]["peak_pss_anon_mib"] / memory["n"]["peak_pss_anon_mib"], 3)
        memory["total_ratio_2n_over_n"] = round(memory["2n"]["peak_pss_mib"] / memory["n"]["peak_pss_mib"], 3)
        results["memory"] = memory
        results["manifest_10k"] = manifest_benchmark(root / "manifest")
    results["load_average_end"] = round(os.getloadavg()[0], 2)
    results["targets"] = {
        "pool_2_workers_speedup>=1.7": results["pool"]["speedup_wall"] >= 1.7,
        "manifest_10k_load_filter_split<1s": results["manifest_10k"]["total_s"] < 1.0,
        "memory_flat_with_clip_count": results["memory"]["ratio_2n_over_n"] <= 1.15,
    }
    if "manifest_equals_pool" in results.get("ray", {}):
        results["targets"]["ray_same_manifest"] = results["ray"]["manifest_equals_pool"]
    print_table(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {RESULTS}")


def print_table(results: dict[str, Any]) -> None:
    pool, memory, manifest = results["pool"], results["memory"], results["manifest_10k"]
    print(f"\ncorpus build on {results['machine']}: {results['real_clips']} real clips x (1 + "
          f"{results['generators']}) = {pool['tasks']} clips; load average {results['load_average_start']} -> "
          f"{results['load_average_end']}")
    print(f"{'measurement':44} {'value':>14}  note")
    rows = [
        ("pool, 1 worker (best wall)", f"{min(r['wall_s'] for r in pool['1_worker']):.1f} s", ""),
        ("pool, 2 workers (best wall)", f"{min(r['wall_s'] for r in pool['2_workers']):.1f} s", ""),
        ("speed-up 2 vs 1 workers", f"{pool['speedup_wall']:.2f}x", "target >= 1.7x"),
        ("  the same after the first finished clip", f"{pool['speedup_after_first_clip']:.2f}x",
         f"start-up (imports) {min(r['first_clip_s'] for r in pool['2_workers']):.1f} s"),
        ("CPU time of the build tree, 1 / 2 workers",
         f"{pool['1_worker'][0]['cpu_s']:.0f} / {pool['2_workers'][0]['cpu_s']:.0f} s", "first repeat"),
    ]
    ray = results.get("ray", {})
    if "wall_s" in ray:
        rows.append(("ray, 2 workers (wall)", f"{ray['wall_s']:.1f} s",
                     f"manifest equals pool's: {ray['manifest_equals_pool']}"))
    elif ray:
        rows.append(("ray", "skipped", ray["skipped"]))
    rows += [
        (f"peak anonymous memory, {memory['n']['real_clips']} real clips",
         f"{memory['n']['peak_pss_anon_mib']:.0f} MiB", "build + forkserver + workers (Pss_Anon)"),
        (f"peak anonymous memory, {memory['2n']['real_clips']} real clips",
         f"{memory['2n']['peak_pss_anon_mib']:.0f} MiB", f"ratio {memory['ratio_2n_over_n']:.2f}, target <= 1.15"),
        ("peak total memory, N / 2N real clips",
         f"{memory['n']['peak_pss_mib']:.0f} / {memory['2n']['peak_pss_mib']:.0f} MiB",
         f"ratio {memory['total_ratio_2n_over_n']:.2f} (Pss, with library files)"),
        ("10,000-row manifest: load + validate", f"{manifest['load_s'] * 1000:.0f} ms", "files checked"),
        ("10,000-row manifest: filter", f"{manifest['filter_s'] * 1000:.1f} ms", ""),
        ("10,000-row manifest: split", f"{manifest['split_s'] * 1000:.0f} ms", ""),
        ("10,000-row manifest: total", f"{manifest['total_s'] * 1000:.0f} ms", "target < 1 s"),
    ]
    for name, value, note in rows:
        print(f"{name:44} {value:>14}  {note}")
    print("targets:", ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in results["targets"].items()))


if __name__ == "__main__":
    main()
