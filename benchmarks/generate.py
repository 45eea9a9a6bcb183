"""Benchmark of the photo-driven generators: frames per second and peak memory, one row per generator.

    python benchmarks/generate.py            # everything (the SDA 10-minute memory run takes ~15 minutes)
    python benchmarks/generate.py --quick    # 3 s clips only
    python benchmarks/generate.py --only sda

SDA (random full-size weights, 16 kHz / 30 fps like crema.dat, written as an original .dat and loaded
from it, 128x96 frames): the reference port (reference.py, one batched pass as the original) against the
optimised chunked engine on the same weights and inputs, for a 3 s and a 60 s clip (model time: prepared
inputs in, raw frames out; best of 3 and 2 interleaved runs; wall-clock frames/s, with the speed-up in
process CPU time beside it because the machine may be shared), with the largest difference between their
raw outputs; end-to-end `generate` (alignment and paste-back into the 512x512 photo) on the 3 s clip; the
peak memory (VmHWM of a child process) of `generate` on 10 minutes of audio. The reference port cannot
run 10 minutes: its memory is estimated from its per-frame skip copies and from its two measured peaks.
Target: optimised >= 2x the reference's frames/s (3 s clip, 2 threads), outputs equal within 1/255 after
the x125 + 125 scaling. Each measurement records the 1-minute load average before and after it.

Other registered generators get a generic row (end-to-end `generate` of the 3 s clip on the photo) from
`create(name)`; add a setup to SETUPS for a better one. Names not registered yet are skipped. Prints a
table and writes benchmarks/results/generate.json. Every measurement runs in a fresh child process (clean
memory high-water mark), with `--threads` torch threads.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from procmem import peak_rss_mib, rss_mib

RESULTS = Path(__file__).parent / "results" / "generate.json"
GENERATORS = ("sda", "warp", "static")
SPEECH = "The quick brown fox jumps over the lazy dog while we benchmark talking faces."


# ---------------------------------------------------------------------------------------------- inputs


def speech(seconds: float, sample_rate: int = 16000) -> np.ndarray:
    """Synthesized speech repeated to ``seconds``."""
    from fakebench.media import resample_audio
    from fakebench.speech import synthesize

    audio, sr, _ = synthesize(SPEECH)
    audio = resample_audio(audio, sr, sample_rate)
    n = int(round(seconds * sample_rate))
    return np.tile(audio, int(np.ceil(n / audio.size)))[:n].astype(np.float32)


def write_sda_checkpoint(path: Path) -> Path:
    """Random full-size weights (BatchNorm statistics too) at 16 kHz / 30 fps, saved as the original .dat."""
    from collections import OrderedDict

    import torch

    from fakebench.faces import default_template
    from fakebench.generators.sda.checkpoint import init_checkpoint
    from fakebench.generators.sda.config import SDAConfig

    cfg = SDAConfig(mean_face=default_template((128, 96)), img_size=(128, 96), audio_rate=16000, video_rate=30,
                    audio_feat_len=0.2, audio_feat_samples=3200)
    ckpt = init_checkpoint(cfg, seed=0, random_statistics=True)
    original = {part: OrderedDict(state) for part, state in ckpt.parts().items()}
    original.update(mean_face=cfg.mean_face, img_size=cfg.img_size, audio_rate=cfg.audio_rate,
                    video_rate=cfg.video_rate, audio_feat_len=cfg.audio_feat_len,
                    audio_feat_samples=cfg.audio_feat_samples, id_enc_dim=cfg.id_enc_dim,
                    rnn_gen_dim=cfg.rnn_gen_dim, aud_enc_dim=cfg.aud_enc_dim, aux_latent=cfg.aux_latent,
                    sequential_noise=cfg.sequential_noise)
    torch.save(original, path, _use_new_zipfile_serialization=False)
    return path


def cpu_s() -> float:
    """CPU seconds this process has used (all threads): less disturbed than wall time on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------------------------------------- children


def child_sda_compare(checkpoint: str, seconds: float, repeats: int) -> dict[str, Any]:
    """Reference port vs engine on the same prepared inputs (model time only: no alignment, no paste-back)."""
    import torch

    from fakebench.assets import load_photo
    from fakebench.generators.sda.checkpoint import load_original
    from fakebench.generators.sda.generator import Networks, SDAEngine
    from fakebench.generators.sda.noise_generator import draw_noise
    from fakebench.generators.sda.preprocessing import align_photo, crop_to_tensor, prepare_audio
    from fakebench.generators.sda.reference import reference_forward

    ckpt = load_original(checkpoint)
    cfg = ckpt.config
    prepared = prepare_audio(speech(seconds), 16000, cfg)
    plan = prepared.plan
    signal = torch.from_numpy(plan.pad(prepared.resampled))
    image = crop_to_tensor(align_photo(load_photo("astronaut"), cfg).crop)
    noise = draw_noise(plan.n_frames, cfg.aux_latent, 0)
    starts = torch.from_numpy(plan.starts)
    engine = SDAEngine(ckpt, "cpu")
    nets = Networks.from_checkpoint(ckpt)
    base_mib = peak_rss_mib()
    wall: dict[str, list[float]] = {"engine": [], "reference": []}
    cpu: dict[str, list[float]] = {"engine": [], "reference": []}
    out = ref = engine_peak = None
    for _ in range(repeats):  # interleaved, best of each: the machine may be shared
        t0, c0 = time.perf_counter(), cpu_s()
        out = torch.cat(list(engine.run(image, signal, starts, noise, chunk_frames=256)))
        wall["engine"].append(time.perf_counter() - t0)
        cpu["engine"].append(cpu_s() - c0)
        if engine_peak is None:  # before the reference has run: the high-water mark is the engine's
            engine_peak = peak_rss_mib()
        del ref
        t0, c0 = time.perf_counter(), cpu_s()
        ref = reference_forward(nets, image, plan.windows(signal), noise).permute(0, 2, 3, 1)
        wall["reference"].append(time.perf_counter() - t0)
        cpu["reference"].append(cpu_s() - c0)
    diff = (out - ref).abs().max().item()
    pixels = ((out * 125 + 125).clamp(0, 255) - (ref * 125 + 125).clamp(0, 255)).abs().max().item()
    n = plan.n_frames
    best = {k: min(v) for k, v in wall.items()}
    best_cpu = {k: min(v) for k, v in cpu.items()}
    return {"seconds": seconds, "frames": n, "repeats": repeats, "reference_s": best["reference"],
            "engine_s": best["engine"], "reference_fps": n / best["reference"], "engine_fps": n / best["engine"],
            "speedup": best["reference"] / best["engine"],
            "reference_cpu_s": best_cpu["reference"], "engine_cpu_s": best_cpu["engine"],
            "speedup_cpu_time": best_cpu["reference"] / best_cpu["engine"],
            "all_wall_s": wall, "max_abs_diff_raw": diff, "max_abs_diff_pixels": pixels,
            "rss_after_load_mib": base_mib, "engine_peak_rss_mib": engine_peak,
            "reference_peak_rss_mib": peak_rss_mib(), "engine_algorithm": engine.algorithm}


def child_sda_generate(checkpoint: str, seconds: float, paste_back: bool) -> dict[str, Any]:
    """End-to-end `generate` on the photo (paste-back) or on its aligned crop (memory run)."""
    import torch  # noqa: F401  (its own footprint, before the model's)

    from fakebench.assets import load_photo
    from fakebench.generators.sda import SDAGenerator
    from fakebench.generators.sda.preprocessing import align_photo

    baseline_mib = rss_mib()
    gen = SDAGenerator(checkpoint, device="cpu", paste_back=paste_back, aligned=not paste_back)
    loaded_mib, load_peak_mib = rss_mib(), peak_rss_mib()
    photo = load_photo("astronaut")
    audio = speech(seconds)
    image = photo if paste_back else align_photo(photo, gen.config).crop
    if paste_back:
        gen.generate(image, audio[:16000], 16000)  # the photo's face analysis, cached from here on
    t0 = time.perf_counter()
    clip = gen.generate(image, audio, 16000).clip
    elapsed = time.perf_counter() - t0
    return {"seconds": seconds, "frames": clip.n_frames, "frame_size": [clip.height, clip.width],
            "wall_s": elapsed, "fps": clip.n_frames / elapsed, "rss_after_imports_mib": baseline_mib,
            "rss_after_load_mib": loaded_mib,
            "peak_rss_during_load_mib": load_peak_mib, "peak_rss_mib": peak_rss_mib(),
            "output_mib": clip.frames.nbytes / 2**20}


def child_generic(name: str, seconds: float) -> dict[str, Any]:
    from fakebench.assets import load_photo
    from fakebench.generators.base import create

    gen = create(name)
    photo = load_photo("astronaut")
    audio = speech(seconds)
    gen.generate(photo, audio[:16000], 16000)  # warm-up (face analysis cached)
    t0 = time.perf_counter()
    clip = gen.generate(photo, audio, 16000).clip
    elapsed = time.perf_counter() - t0
    return {"seconds": seconds, "frames": clip.n_frames, "frame_size": [clip.height, clip.width],
            "wall_s": elapsed, "fps": clip.n_frames / elapsed, "peak_rss_mib": peak_rss_mib()}


CHILDREN: dict[str, Callable[..., dict[str, Any]]] = {
    "sda_compare": child_sda_compare, "sda_generate": child_sda_generate, "generic": child_generic,
}


def in_child(task: str, threads: int, cache: str, **kwargs: Any) -> dict[str, Any]:
    spec = json.dumps({"task": task, "threads": threads, "kwargs": kwargs})
    env = {**os.environ, "FAKEBENCH_CACHE": cache}
    load_before = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, __file__, "--child", spec], capture_output=True, text=True, env=env)
    load = [round(load_before, 2), round(os.getloadavg()[0], 2)]  # 1-minute load average before and after
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": f"exit {proc.returncode}: " + " | ".join(tail), "load_average": load}
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "load_average": load}


def run_child(spec: str) -> None:
    import torch

    request = json.loads(spec)
    torch.set_num_threads(request["threads"])
    print(json.dumps(CHILDREN[request["task"]](**request["kwargs"])))


# ---------------------------------------------------------------------------------------------- setups


def setup_sda(args: argparse.Namespace, cache: str) -> dict[str, Any]:
    from fakebench.generators.sda.checkpoint import load_original
    from fakebench.generators.sda.generator import Networks
    from fakebench.generators.sda.reference import skip_copy_bytes_per_frame

    row: dict[str, Any] = {"weights": "random, full size (55.3 M parameters), 16 kHz / 30 fps, "
                                      "loaded from an original-format .dat"}
    dat = str(write_sda_checkpoint(Path(cache) / "random-crema.dat"))
    durations = [3.0] if args.quick else [3.0, 60.0]
    row["compare"] = [in_child("sda_compare", args.threads, cache, checkpoint=dat, seconds=s,
                               repeats=3 if s <= 3 else 2) for s in durations]
    row["generate_paste_back"] = in_child("sda_generate", args.threads, cache, checkpoint=dat, seconds=3.0,
                                          paste_back=True)
    if not args.quick:
        row["memory_10min"] = in_child("sda_generate", args.threads, cache, checkpoint=dat, seconds=600.0,
                                       paste_back=False)
    config = load_original(dat).config
    per_frame = skip_copy_bytes_per_frame(Networks.build(config), config.img_size)
    estimate: dict[str, Any] = {"skip_copies_bytes_per_frame": per_frame,
                                "skip_copies_10min_gib": per_frame * 18000 / 2**30}
    measured = [c for c in row["compare"] if "error" not in c]
    if len(measured) == 2:  # a line through the two measured peaks
        (t0, m0), (t1, m1) = ((c["frames"], c["reference_peak_rss_mib"]) for c in measured)
        slope = (m1 - m0) / (t1 - t0)
        estimate["measured_mib_per_frame"] = slope
        estimate["extrapolated_10min_gib"] = (m0 + slope * (18000 - t0)) / 1024
    row["reference_10min_estimate"] = estimate
    return row


def setup_generic(name: str) -> Callable[[argparse.Namespace, str], dict[str, Any]]:
    def setup(args: argparse.Namespace, cache: str) -> dict[str, Any]:
        return {"generate": in_child("generic", args.threads, cache, name=name, seconds=3.0)}

    return setup


SETUPS: dict[str, Callable[[argparse.Namespace, str], dict[str, Any]]] = {
    "sda": setup_sda, "warp": setup_generic("warp"), "static": setup_generic("static")}


# ---------------------------------------------------------------------------------------------- report


def print_table(results: dict[str, Any]) -> None:
    print(f"\ngenerators on {results['machine']}, torch threads {results['threads']}, "
          f"load average {results['load_average_start']} -> {results['load_average_end']}")
    sda = results["generators"].get("sda")
    if sda:
        print(f"\nSDA ({sda['weights']}), 128x96 frames, model time only")
        print(f"{'clip':>6} {'frames':>7} {'reference fps':>14} {'optimised fps':>14} {'speed-up':>9} "
              f"{'(CPU time)':>10} {'max |diff| raw':>15} {'pixels':>7} {'ref peak MiB':>13} {'opt peak MiB':>13}")
        for c in sda["compare"]:
            if "error" in c:
                print(f"  failed: {c['error']}")
                continue
            print(f"{c['seconds']:5.0f}s {c['frames']:7d} {c['reference_fps']:14.2f} {c['engine_fps']:14.2f} "
                  f"{c['speedup']:8.2f}x {c['speedup_cpu_time']:9.2f}x {c['max_abs_diff_raw']:15.2e} "
                  f"{c['max_abs_diff_pixels']:7.4f} "
                  f"{c['reference_peak_rss_mib']:13.0f} {c['engine_peak_rss_mib']:13.0f}   load {c['load_average']}")
        g = sda["generate_paste_back"]
        if "error" not in g:
            print(f"end-to-end generate, paste-back into {g['frame_size'][1]}x{g['frame_size'][0]}: "
                  f"{g['fps']:.2f} frames/s, load {g['load_average']}")
        m = sda.get("memory_10min")
        if m and "error" not in m:
            print(f"10 min of audio ({m['frames']} frames, raw 128x96 crops): peak RSS {m['peak_rss_mib']:.0f} MiB "
                  f"(torch imported: {m['rss_after_imports_mib']:.0f} MiB; model loaded: "
                  f"{m['rss_after_load_mib']:.0f} MiB, peak while loading {m['peak_rss_during_load_mib']:.0f} MiB; "
                  f"output frames: {m['output_mib']:.0f} MiB), {m['fps']:.2f} frames/s, load {m['load_average']}")
        e = sda["reference_10min_estimate"]
        line = f"reference port, 10 min: skip copies alone {e['skip_copies_10min_gib']:.1f} GiB"
        if "extrapolated_10min_gib" in e:
            line += f"; measured peaks extrapolate to {e['extrapolated_10min_gib']:.1f} GiB"
        print(line + " (not run)")
    for name, row in results["generators"].items():
        if name == "sda":
            continue
        g = row["generate"]
        print(f"{name}: " + (f"failed: {g['error']}" if "error" in g else
                             f"{g['fps']:.1f} frames/s end to end ({g['frame_size'][1]}x{g['frame_size'][0]}, "
                             f"{g['seconds']:.0f} s clip), peak RSS {g['peak_rss_mib']:.0f} MiB"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s clips only: no 60 s clip, no 10-minute run")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--only", nargs="*", help="generator names to run (default: all registered)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child)
        return
    from fakebench.generators.base import available

    registered = available()
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "threads": args.threads, "load_average_start": round(os.getloadavg()[0], 2), "generators": {},
    }
    with tempfile.TemporaryDirectory(prefix="fakebench-bench-") as cache:
        for name in args.only or GENERATORS:
            if name not in registered:
                print(f"{name}: not registered, skipped")
                continue
            print(f"{name}: running...", flush=True)
            results["generators"][name] = SETUPS.get(name, setup_generic(name))(args, cache)
    results["load_average_end"] = round(os.getloadavg()[0], 2)
    sda = results["generators"].get("sda")
    if sda and "error" not in sda["compare"][0]:
        first = sda["compare"][0]
        results["targets"] = {"sda_speedup_3s>=2": first["speedup"] >= 2,
                              "sda_diff<1/255_pixel": all(c.get("max_abs_diff_pixels", 1) < 1 / 255
                                                          for c in sda["compare"])}
    print_table(results)
    if "targets" in results:
        print("targets:", ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in results["targets"].items()))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name, row in previous.get("generators", {}).items():  # keep what this run did not measure
        for key, value in row.items():
            results["generators"].setdefault(name, {}).setdefault(key, value)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"recorded in {RESULTS}")


if __name__ == "__main__":
    main()
