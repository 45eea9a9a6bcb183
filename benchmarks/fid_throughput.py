"""Benchmark of FID feature extraction (fakebench vs pytorch-fid) and of the per-clip identity metrics.

    python benchmarks/fid_throughput.py                 # 50 images, 3 interleaved rounds (~10 min)
    python benchmarks/fid_throughput.py --images 100 --rounds 5
    python benchmarks/fid_throughput.py --full-fid      # also the 2048-d FID of both (minutes: sqrtm)

Target: fakebench's Inception features >= 0.9x the images/s of pytorch-fid's ``get_activations`` on
the same PNG files, same weights file, same machine, same run. Both networks get the same weights:
pytorch-fid's official file when fakebench finds it, else one random file (BatchNorm statistics set
from a batch of noise, so activations keep a realistic scale); speed does not depend on the values.
Rounds are interleaved in a rotating order and each ratio is the median of per-round ratios, so
that load from other processes on a shared machine affects both sides alike.
Also timed: ``identity_metrics`` on a 10 s 256x256 clip with 16 sampled frames (its face track is
computed beforehand, as in a benchmark run). Prints a table, writes
benchmarks/results/fid_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "fid_throughput.json"
WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"


def make_images(n: int, size: int = 128, seed: int = 0) -> np.ndarray:
    """n crops (size x size) of the two bundled photos, half each."""
    from fakebench.assets import load_photo

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        photo = load_photo("astronaut" if i < n // 2 else "grace_hopper")
        y, x = rng.integers(0, photo.shape[0] - size), rng.integers(0, photo.shape[1] - size)
        out.append(photo[y:y + size, x:x + size])
    return np.stack(out)


def weights_file(cache: Path) -> tuple[Path, str]:
    """The official weights if fakebench finds them, else a random file; placed in a torch hub cache."""
    import torch

    from fakebench.metrics.fid import FIDInceptionV3
    from fakebench.weights import locate

    target = cache / "hub" / "checkpoints" / WEIGHTS_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    found = locate("inception_fid")
    if found.found and found.checksum in ("prefix ok", "ok") and found.path is not None:
        target.symlink_to(found.path.resolve())
        return target, f"official ({found.path})"
    torch.manual_seed(0)
    model = FIDInceptionV3()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.rand(4, 3, 128, 128))
    torch.save(model.eval().state_dict(), target)
    return target, "random (official weights not found)"


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (pytorch-fid's DataLoader worker)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(fn, times: list[float], cpu: list[float] | None = None) -> object:
    t0, c0 = time.perf_counter(), _cpu_s()
    result = fn()
    times.append(time.perf_counter() - t0)
    if cpu is not None:
        cpu.append(_cpu_s() - c0)
    return result


def time_features(images: np.ndarray, folder: Path, checkpoint: Path, rounds: int, batch_size: int) -> dict:
    """Images/s of each method, rounds interleaved with a rotating order; paired ratios per round."""
    import torch
    from pytorch_fid import fid_score
    from pytorch_fid.inception import InceptionV3

    from fakebench.metrics.fid import inception_features, load_inception, read_image_folder

    files = sorted(folder.glob("*.png"))
    ours_model = load_inception(checkpoint, verify=False)
    their_model = InceptionV3([3]).eval()  # loads the same file from $TORCH_HOME's hub cache
    net_batch = images[:min(16, batch_size)]
    x = torch.from_numpy(net_batch).permute(0, 3, 1, 2).contiguous().float().div(255)
    features = {}

    def their_net():
        with torch.no_grad():
            return their_model(x)

    def our_net():
        with torch.inference_mode():
            return ours_model(x)

    methods = {
        "theirs": lambda: fid_score.get_activations(files, their_model, batch_size, 2048, "cpu", 1),
        "theirs_w0": lambda: fid_score.get_activations(files, their_model, batch_size, 2048, "cpu", 0),
        "ours_png": lambda: inception_features(read_image_folder(folder), ours_model, batch_size),
        "ours_array": lambda: inception_features(images, ours_model, batch_size),
    }
    times: dict[str, list[float]] = {k: [] for k in (*methods, "theirs_net", "ours_net")}
    cpu: dict[str, list[float]] = {k: [] for k in times}
    names = list(methods)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            features[name] = timed(methods[name], times[name], cpu[name])
        pair = [("theirs_net", their_net), ("ours_net", our_net)]
        for name, fn in pair if r % 2 == 0 else pair[::-1]:
            timed(fn, times[name], cpu[name])
    n = {k: len(net_batch) if k.endswith("_net") else len(images) for k in times}
    rate = {k: n[k] / float(np.median(v)) for k, v in times.items()}

    def paired(ours: str, theirs: str, seconds: dict[str, list[float]] = times) -> float:
        return round(float(np.median(np.array(seconds[theirs]) / np.array(seconds[ours]))), 3)

    return {"images": len(images), "batch_size": batch_size, "network_batch": len(net_batch),
            "rounds": rounds,
            "images_per_s_median": {k: round(v, 3) for k, v in rate.items()},
            "cpu_s_per_image_median": {k: round(float(np.median(v)) / n[k], 3) for k, v in cpu.items()},
            "seconds": {k: [round(t, 2) for t in v] for k, v in times.items()},
            "cpu_seconds": {k: [round(t, 2) for t in v] for k, v in cpu.items()},
            "ratio_ours_png_vs_theirs": paired("ours_png", "theirs"),
            "ratio_ours_png_vs_theirs_no_workers": paired("ours_png", "theirs_w0"),
            "ratio_ours_array_vs_theirs": paired("ours_array", "theirs"),
            "ratio_network_only": paired("ours_net", "theirs_net"),
            "cpu_ratio_ours_png_vs_theirs": paired("ours_png", "theirs", cpu),
            "cpu_ratio_network_only": paired("ours_net", "theirs_net", cpu),
            "max_abs_feature_difference": float(np.abs(features["ours_png"] - features["theirs"]).max()),
            "_features": (features["ours_png"], features["theirs"])}


def full_fid(ours: np.ndarray, theirs: np.ndarray) -> dict:
    """The 2048-d FID between the two halves (the two people), by each implementation on its own features."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    from fakebench.metrics.fid import frechet_distance, statistics

    half = len(ours) // 2
    out = {}
    for name, feats, distance in (("ours", ours, frechet_distance),
                                  ("theirs", theirs, calculate_frechet_distance)):
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[name] = float(distance(*statistics(feats[:half]), *statistics(feats[half:])))
        except ValueError as e:
            out[name] = f"ValueError: {e}"
        out[f"{name}_s"] = round(time.perf_counter() - t0, 1)
    if isinstance(out["ours"], float) and isinstance(out["theirs"], float):
        out["abs_difference"] = abs(out["ours"] - out["theirs"])
    return out


def time_identity(seconds: float = 10.0, frames: int = 16) -> dict:
    from fakebench.assets import load_photo
    from fakebench.faces import analyze
    from fakebench.metrics.identity import identity_metrics
    from fakebench.synthetic import moving_photo

    photo = load_photo("astronaut")
    n = int(round(seconds * 25))
    clip = moving_photo(photo, n_frames=n, size=(256, 256), centre=(225, 130), zoom=1.0, seed=11).clip
    reference = moving_photo(photo, n_frames=n, size=(256, 256), centre=(225, 130), zoom=1.0, seed=12).clip
    track, ref_track = analyze(clip), analyze(reference)
    t0 = time.perf_counter()
    first = identity_metrics(clip, track, photo, frames=frames)
    first_s = time.perf_counter() - t0
    photo_runs, clip_runs = [], []
    for _ in range(3):
        timed(lambda: identity_metrics(clip, track, photo, frames=frames), photo_runs)
        timed(lambda: identity_metrics(clip, track, (reference, ref_track), frames=frames), clip_runs)
    return {"clip": f"256x256, {seconds:g} s, 25 fps ({n} frames)", "frames_sampled": frames,
            "photo_reference_first_s": round(first_s, 3),
            "photo_reference_s": round(float(np.median(photo_runs)), 3),
            "clip_reference_s": round(float(np.median(clip_runs)), 3),
            "identity_distance": round(first["identity_distance"], 4), "facenet": "facenet_cosine" in first}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--full-fid", action="store_true", help="also the full 2048-d FID of both (slow)")
    parser.add_argument("--skip-identity", action="store_true")
    args = parser.parse_args()
    import torch
    from PIL import Image

    torch.set_num_threads(args.threads)
    os.environ.setdefault("FAKEBENCH_CACHE", tempfile.mkdtemp(prefix="fakebench-bench-cache-"))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "torch"
        checkpoint, weights_kind = weights_file(cache)
        os.environ["TORCH_HOME"] = str(cache)
        torch.hub.download_url_to_file = _no_download  # pytorch-fid must find the file, never fetch one
        images = make_images(args.images)
        folder = Path(tmp) / "images"
        folder.mkdir()
        for i, image in enumerate(images):
            Image.fromarray(image).save(folder / f"{i:05d}.png")
        features = time_features(images, folder, checkpoint, args.rounds, args.batch_size)
    ours, theirs = features.pop("_features")
    fid = full_fid(ours, theirs) if args.full_fid else None
    ident = None if args.skip_identity else time_identity()
    load_after = os.getloadavg()

    r = features["images_per_s_median"]
    print(f"\nFID Inception features on {platform.machine()}, {os.cpu_count()} cores, torch threads "
          f"{torch.get_num_threads()}, load average {load_before[0]:.1f} -> {load_after[0]:.1f}; "
          f"{features['images']} PNG images 128x128, batch {features['batch_size']}, weights {weights_kind}; "
          f"median of {features['rounds']} interleaved rounds")
    print(f"{'method':62} {'images/s':>9} {'CPU s/image':>12}")
    net = f"forward only (batch {features['network_batch']})"
    for key, label in (("theirs", "pytorch-fid get_activations (PNG files, DataLoader 1 worker)"),
                       ("theirs_w0", "pytorch-fid get_activations (PNG files, no workers)"),
                       ("ours_png", "fakebench read_image_folder + inception_features (PNG files)"),
                       ("ours_array", "fakebench inception_features (uint8 arrays in memory)"),
                       ("theirs_net", f"pytorch-fid InceptionV3 {net}"),
                       ("ours_net", f"fakebench FIDInceptionV3 {net}")):
        print(f"{label:62} {r[key]:9.2f} {features['cpu_s_per_image_median'][key]:12.3f}")
    print(f"ours/theirs, median of per-round ratios: {features['ratio_ours_png_vs_theirs']:.3f} (PNG, vs "
          f"1 worker), {features['ratio_ours_png_vs_theirs_no_workers']:.3f} (PNG, vs no workers), "
          f"{features['ratio_ours_array_vs_theirs']:.3f} (arrays), network only "
          f"{features['ratio_network_only']:.3f}; in CPU time: "
          f"{features['cpu_ratio_ours_png_vs_theirs']:.3f} (PNG), {features['cpu_ratio_network_only']:.3f} "
          f"(network only); "
          f"max |feature difference| {features['max_abs_feature_difference']:.2e}")
    if fid:
        print(f"2048-d FID: ours {fid['ours']} ({fid['ours_s']} s), "
              f"pytorch-fid {fid['theirs']} ({fid['theirs_s']} s)")
    if ident:
        print(f"identity_metrics on a {ident['clip']}, {ident['frames_sampled']} frames: photo reference "
              f"{ident['photo_reference_s']:.2f} s (first call, with the photo's face analysis: "
              f"{ident['photo_reference_first_s']:.2f} s), clip reference {ident['clip_reference_s']:.2f} s")
    target = {"features>=0.9x_pytorch_fid": features["ratio_ours_png_vs_theirs"] >= 0.9}
    print("targets:", ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in target.items()))
    record = {"date": time.strftime("%Y-%m-%d %H:%M"),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "torch_threads": torch.get_num_threads(),
              "load_average": [round(load_before[0], 2), round(load_after[0], 2)],
              "weights": weights_kind, "features": features, "full_fid": fid, "identity": ident,
              "targets": target}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(record, indent=1) + "\n")
    print(f"recorded in {RESULTS}")


def _no_download(*args, **kwargs):
    raise RuntimeError("the benchmark never downloads weights")


if __name__ == "__main__":
    main()
