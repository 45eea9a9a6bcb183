"""Does an SDA checkpoint keep the person it animates? Identity, speckle, reconstruction and emotions.

    python benchmarks/sda_identity.py [--checkpoint DIR ...] [--real-faces DIR] [--no-record]

For each checkpoint (default: the packaged default; give several to compare, e.g. an older one) and for the warp
generator beside them, on each photo: `fakebench generate` animates it with 3 s of espeak-ng speech, and the clip
is measured against the photo:

- identity: dlib's face-descriptor distance of the clip's face frames to the photo's face (`identity` metric;
  0.6 is dlib's same-person threshold; the issue's target is at most 0.5);
- speckle: CPBD sharpness and high-frequency noise (standard deviation of the Laplacian of the aligned 128x128
  face crop's luma) of the clip, each as a ratio to the photo's own (target: within 20 %, ratios 0.8-1.2);
- emotions (a checkpoint with emotion codes, on grace_hopper): each emotion at intensity 0.9, measured by the
  `expression` metric with the photo as reference: the emotion it reads and the clip's action units.

Photos: grace_hopper and astronaut (the bundled photos, which fakebench's checkpoints were trained on, in other
looks) and, when DIR exists (default ../shared/data/real_faces; evaluation only, never committed), every photo in
DIR/photos: real people none of fakebench's models saw (the summary's "real_faces").

Reconstruction: fresh warp clips of grace_hopper speaking the held-out sentences (neutral), aligned as training
aligns them; each checkpoint generates them from their first frame and their audio: PSNR/SSIM of its crops
against the clip's, beside the still-image baseline (the first frame repeated).

Prints the tables and writes benchmarks/results/sda_identity.json (unless --no-record).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results" / "sda_identity.json"
DEFAULT_REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real_faces"
SENTENCE = ("Every photo can talk now, and some of them can even sing a little song.", "en-us")
EMOTION_INTENSITY = 0.9
BUNDLED_PHOTO = "grace_hopper"


def speech() -> tuple[np.ndarray, int]:
    from fakebench.speech import synthesize

    audio, sr, _ = synthesize(SENTENCE[0], voice=SENTENCE[1])
    return audio[: 3 * sr], sr


def face_crop(frames: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    from fakebench.faces import align_faces

    return align_faces(frames, landmarks, (128, 128))


def sharpness_and_noise(crops: np.ndarray) -> tuple[float, float]:
    """Mean CPBD and mean Laplacian standard deviation (luma, 0-255) of aligned face crops."""
    from scipy.ndimage import laplace

    from fakebench.metrics.quality import cpbd, luma

    grey = [np.clip(np.round(luma(c)), 0, 255) for c in crops]
    return (float(np.mean([cpbd(g.astype(np.uint8)) for g in grey])),
            float(np.mean([laplace(g.astype(np.float64)).std() for g in grey])))


def measure(clip, photo: np.ndarray, photo_stats: tuple[float, float]) -> dict[str, Any]:
    from fakebench.faces import analyze
    from fakebench.metrics.identity import identity_metrics

    track = analyze(clip, use_cache=False)
    idx = np.flatnonzero(track.valid)
    if len(idx) == 0:
        return {"error": "no face found in the generated clip"}
    identity = identity_metrics(clip, track, photo)
    pick = idx[np.linspace(0, len(idx) - 1, min(12, len(idx))).round().astype(int)]
    sharp, noise = sharpness_and_noise(face_crop(clip.frames[pick], track.landmarks[pick]))
    return {"identity_distance": round(identity["identity_distance"], 3),
            "identity_same_person": identity["identity_same_person"], "face_frames": int(len(idx)),
            "frames": clip.n_frames, "cpbd": round(sharp, 3), "cpbd_ratio": round(sharp / photo_stats[0], 3),
            "hf_noise": round(noise, 2), "hf_noise_ratio": round(noise / photo_stats[1], 3)}


def photo_statistics(photo: np.ndarray) -> tuple[float, float]:
    from fakebench.faces import photo_face

    face = photo_face(photo)
    return sharpness_and_noise(face_crop(photo[None], face.landmarks[None]))


def generators(checkpoints: list[str | None]) -> dict[str, Any]:
    from fakebench.generators.sda import SDAGenerator
    from fakebench.generators.warp import WarpGenerator

    out: dict[str, Any] = {}
    for ckpt in checkpoints:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gen = SDAGenerator(ckpt, device="cpu")
        out[f"sda:{ckpt or 'default'}"] = gen
    out["warp"] = WarpGenerator()
    return out


def photos(real_faces: Path | None) -> dict[str, np.ndarray]:
    from fakebench.assets import load_photo
    from fakebench.media import IMAGE_EXTENSIONS, read_image

    out = {BUNDLED_PHOTO: load_photo(BUNDLED_PHOTO), "astronaut": load_photo("astronaut")}
    if real_faces is not None and (real_faces / "photos").is_dir():
        for path in sorted((real_faces / "photos").iterdir()):
            if path.suffix.lower() in IMAGE_EXTENSIONS:
                out["real:" + path.stem] = read_image(path)
    return out


def identity_table(gens: dict[str, Any], pics: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    audio, sr = speech()
    rows = []
    for photo_name, photo in pics.items():
        try:
            stats = photo_statistics(photo)
        except Exception as e:  # noqa: BLE001 - a table of real photos reports what failed
            rows.append({"photo": photo_name, "error": f"photo: {e}"})
            continue
        for gen_name, gen in gens.items():
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    clip = gen.generate(photo, audio, sr, seed=0).clip
                    row = measure(clip, photo, stats)
            except Exception as e:  # noqa: BLE001
                row = {"error": str(e).splitlines()[0]}
            row |= {"photo": photo_name, "generator": gen_name, "seconds": round(time.perf_counter() - t0, 1),
                    "photo_cpbd": round(stats[0], 3), "photo_hf_noise": round(stats[1], 2)}
            rows.append(row)
            print(f"{photo_name:40s} {gen_name:40s} identity {row.get('identity_distance', '-')!s:6s} "
                  f"cpbd x{row.get('cpbd_ratio', '-')!s:6s} noise x{row.get('hf_noise_ratio', '-')!s:6s} "
                  f"{row.get('error', '')}", flush=True)
    return rows


def emotion_table(gens: dict[str, Any]) -> list[dict[str, Any]]:
    from fakebench.assets import load_photo
    from fakebench.faces import analyze
    from fakebench.generators.sda import SDAGenerator
    from fakebench.metrics.expression import EMOTIONS
    from fakebench.metrics.measure import measure_clips
    from fakebench.metrics.registry import Reference
    from fakebench.samples import Sample

    audio, sr = speech()
    photo = load_photo(BUNDLED_PHOTO)
    reference = Reference(path=BUNDLED_PHOTO, photo=photo)
    rows = []
    for gen_name, gen in gens.items():
        if not isinstance(gen, SDAGenerator) or not gen.config.emotions:
            continue
        for emotion in EMOTIONS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                made = SDAGenerator(gen.checkpoint_path, device="cpu", emotion=emotion,
                                    intensity=EMOTION_INTENSITY).generate(photo, audio, sr, seed=0)
                (result,) = measure_clips([Sample.from_clip(made.clip, track=analyze(made.clip, use_cache=False))],
                                          ["expression"], reference=reference)
            aus = {k: v for k, v in result.items() if k.startswith("au") and len(k) == 4}
            rows.append({"generator": gen_name, "emotion": emotion, "measured": result.get("expression_emotion"),
                         "confidence": result.get("expression_confidence"), "aus": aus})
            top = sorted(aus.items(), key=lambda kv: -kv[1])[:3]
            print(f"{gen_name:40s} {emotion:10s} -> {result.get('expression_emotion')!s:10s} "
                  f"({', '.join(f'{k} {v:.2f}' for k, v in top)})", flush=True)
    return rows


def reconstruction_table(gens: dict[str, Any], n_clips: int = 6) -> list[dict[str, Any]]:
    """PSNR/SSIM on warp clips of grace_hopper speaking held-out sentences, against the still-image baseline."""
    import torch

    from fakebench.generators.sda import SDAGenerator
    from fakebench.generators.sda.noise_generator import draw_noise
    from fakebench.generators.sda.training.config import DataConfig
    from fakebench.generators.sda.training.data import prepare_data, to_model_range
    from fakebench.generators.sda.training.warp_data import make_warp_clips
    from fakebench.metrics.quality import psnr, ssim

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clips_dir = Path(tmp) / "clips"
        # all "val": sentences no training clip spoke
        make_warp_clips(clips_dir, clips=n_clips, val_clips=n_clips, seed=11, photos=(BUNDLED_PHOTO,), looks=1)
        for gen_name, gen in gens.items():
            if not isinstance(gen, SDAGenerator):
                continue
            cfg = gen.config
            data = prepare_data(clips_dir, Path(tmp) / f"cache-{len(rows)}", cfg,
                                DataConfig(val_clips=0, sequence_frames=16))
            scores = {"psnr": [], "ssim": [], "still_psnr": [], "still_ssim": []}
            for clip in data.clips:
                n = min(75, clip.n_frames)
                first = int(np.flatnonzero(clip.valid)[0])
                still = to_model_range(clip.frames[first][None])
                noise = draw_noise(n, cfg.aux_latent, seed=0)
                out = torch.cat(list(gen.engine.run(still, torch.from_numpy(clip.signal),
                                                    torch.from_numpy(clip.starts[:n]), noise)))
                fake = out.mul(125.0).add(125.0).clamp(0, 255).trunc().to(torch.uint8).numpy()
                real = np.asarray(clip.frames[:n])
                ok = clip.valid[:n].copy()
                ok[first] = False  # the still itself is not a test of reconstruction
                repeated = np.repeat(np.asarray(clip.frames[first])[None], ok.sum(), axis=0)
                scores["psnr"].append(psnr(real[ok], fake[ok]))
                scores["ssim"].append(ssim(real[ok], fake[ok]))
                scores["still_psnr"].append(psnr(real[ok], repeated))
                scores["still_ssim"].append(ssim(real[ok], repeated))
            row = {"generator": gen_name, "clips": len(data.clips)} | {k: round(float(np.mean(v)), 3)
                                                                     for k, v in scores.items()}
            rows.append(row)
            print(f"{gen_name:40s} reconstruction PSNR {row['psnr']:.2f} dB (still {row['still_psnr']:.2f}), SSIM "
                  f"{row['ssim']:.3f} (still {row['still_ssim']:.3f})", flush=True)
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for gen in sorted({r["generator"] for r in rows if "generator" in r}):
        mine = [r for r in rows if r.get("generator") == gen and "identity_distance" in r]
        real = [r for r in mine if r["photo"].startswith("real:")]

        def stats(sel: list[dict[str, Any]]) -> dict[str, Any]:
            if not sel:
                return {}
            return {"photos": len(sel), "identity_distance_mean": round(float(np.mean([r["identity_distance"]
                                                                                       for r in sel])), 3),
                    "identity_within_0.5": int(sum(r["identity_distance"] <= 0.5 for r in sel)),
                    "cpbd_ratio_mean": round(float(np.mean([r["cpbd_ratio"] for r in sel])), 3),
                    "hf_noise_ratio_mean": round(float(np.mean([r["hf_noise_ratio"] for r in sel])), 3)}

        out[gen] = {BUNDLED_PHOTO: stats([r for r in mine if r["photo"] == BUNDLED_PHOTO]),
                    "real_faces": stats(real), "failed": sum(1 for r in rows if r.get("generator") == gen
                                                             and "error" in r)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", action="append", default=None,
                        help="an SDA checkpoint to measure (repeatable; default: the packaged default)")
    parser.add_argument("--real-faces", type=Path, default=DEFAULT_REAL)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    record: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average": [round(os.getloadavg()[0], 2), None], "sentence": SENTENCE[0],
    }
    gens = generators(args.checkpoint or [None])
    record["identity"] = identity_table(gens, photos(args.real_faces if args.real_faces.is_dir() else None))
    record["summary"] = summary(record["identity"])
    record["emotions"] = emotion_table(gens)
    record["reconstruction"] = reconstruction_table(gens)
    record["load_average"][1] = round(os.getloadavg()[0], 2)
    print(json.dumps(record["summary"], indent=1))
    if not args.no_record:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(record, indent=1) + "\n")
        print(f"recorded in {RESULTS}")


if __name__ == "__main__":
    main()
