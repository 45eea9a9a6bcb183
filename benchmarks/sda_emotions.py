"""Does an SDA checkpoint with emotion codes show the emotion it is asked for? Measured by the expression metric.

    python benchmarks/sda_emotions.py [--checkpoint DIR ...] [--no-record]

For each checkpoint (default: the packaged default), on both bundled photos (astronaut, grace_hopper: the people
fakebench's checkpoints were trained on) and two espeak-ng sentences (3 s each), each of the 7 emotions at
intensity 0.9 is generated and measured by the `expression` metric with the photo as reference (so the photo's own
smile is the neutral). Per checkpoint: how many of the 28 clips read as asked, the per-clip readings, and how far
each emotion's 13 action units move from the same photo and sentence's neutral clip (L1; the default's test asks
for more than 0.5 on most). Prints a table and writes benchmarks/results/sda_emotions.json (unless --no-record).
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

RESULTS = Path(__file__).parent / "results" / "sda_emotions.json"
PHOTOS = ("grace_hopper", "astronaut")
SENTENCES = (("Every photo can talk now, and some of them can even sing a little song.", "en-us"),
             ("Place blue at F two now, please.", "en-gb"))
INTENSITY = 0.9


def speech() -> list[tuple[np.ndarray, int]]:
    from fakebench.media import resample_audio
    from fakebench.speech import synthesize

    out = []
    for text, voice in SENTENCES:
        audio, sr, _ = synthesize(text, voice=voice)
        out.append((resample_audio(audio, sr, 16000)[: 3 * 16000], 16000))
    return out


def evaluate(checkpoint: str | None, sentences: list[tuple[np.ndarray, int]]) -> dict[str, Any]:
    from fakebench.assets import load_photo
    from fakebench.faces import analyze
    from fakebench.generators.sda import SDAGenerator
    from fakebench.metrics.expression import EMOTIONS
    from fakebench.metrics.measure import measure_clips
    from fakebench.metrics.registry import Reference
    from fakebench.samples import Sample

    rows, distances = [], []
    for name in PHOTOS:
        photo = load_photo(name)
        reference = Reference(path=name, photo=photo)
        for s, (audio, sr) in enumerate(sentences):
            neutral = None
            for emotion in EMOTIONS:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # the note on what a self-trained checkpoint knows
                    made = SDAGenerator(checkpoint, device="cpu", emotion=emotion, intensity=INTENSITY).generate(
                        photo, audio, sr, seed=0)
                    (r,) = measure_clips([Sample.from_clip(made.clip, track=analyze(made.clip, use_cache=False))],
                                         ["expression"], reference=reference)
                aus = np.array([v for k, v in sorted(r.items()) if k.startswith("au") and len(k) == 4], float)
                if emotion == "neutral":
                    neutral = aus
                distance = None if neutral is None or emotion == "neutral" else float(np.abs(aus - neutral).sum())
                if distance is not None:
                    distances.append(distance)
                rows.append({"photo": name, "sentence": s, "emotion": emotion,
                             "measured": r.get("expression_emotion"), "au_distance_from_neutral": distance})
                print(f"{str(checkpoint or 'default')[-30:]:30s} {name:13s} {s} {emotion:10s} -> "
                      f"{r.get('expression_emotion')}", flush=True)
    right = sum(r["measured"] == r["emotion"] for r in rows)
    return {"read_as_asked": right, "clips": len(rows), "au_distance_median": round(float(np.median(distances)), 3),
            "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", action="append", default=None,
                        help="an SDA checkpoint folder with emotion codes (repeatable; default: the packaged one)")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    sentences = speech()
    results = {str(c or "default"): evaluate(c, sentences) for c in (args.checkpoint or [None])}
    record = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)], "intensity": INTENSITY,
              "photos": list(PHOTOS), "sentences": [list(s) for s in SENTENCES], "checkpoints": results}
    print(f"\n{'checkpoint':60s}{'read as asked':>15s}{'AU distance (median)':>22s}")
    for name, r in results.items():
        print(f"{name[-59:]:60s}{r['read_as_asked']:>9d} / {r['clips']:<3d}{r['au_distance_median']:>22.2f}")
    if not args.no_record:
        from record import write_record

        write_record(RESULTS, record)


if __name__ == "__main__":
    main()
