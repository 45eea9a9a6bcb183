"""Talking-face clips made by fakebench's warp generator, for training where no real talking-face video is at
hand (as offline here): the bundled real photos in many looks (mirrored, reshaped, rotated, zoomed, relit and
recoloured), espeak-ng speech of varied sentences, voices, rates and pitches, and (``--emotion-share``) facial
expressions with the matching prosody. A model trained on them learns the warp generator's mouth motion and
expressions, not a real person's: say so wherever its numbers are quoted.

    python -m fakebench.generators.sda.training.warp_data OUT_DIR --clips 64 --val-clips 4 --seed 0 \
        [--photos astronaut] [--looks 12] [--emotion-share 0.6]

Each clip's ground truth is written next to it (CLIP.json: emotion, intensity, per-frame action units), which
training reads as the clip's emotion label. The last ``val_clips`` clips (in name order, so the trainer holds
them out) speak sentences that no training clip speaks.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please place the blue book on the top shelf.",
    "We walked along the river until the sun went down.",
    "Fresh bread smells wonderful early in the morning.",
    "My brother bought a bright yellow bicycle yesterday.",
    "Open the window and let the cool air inside.",
    "Seven small boats sailed past the old lighthouse.",
    "She sings beautifully whenever the piano plays.",
    "Put the red cup beside the white plate, please.",
    "A gentle breeze moved the tall grass in the field.",
    "The meeting starts at nine o'clock on Monday.",
    "Who would like another slice of apple pie?",
    "Thunder rolled across the valley all night long.",
    "Mix the flour with milk and two large eggs.",
    "The children laughed as the puppy chased its tail.",
    "Remember to lock the door before you leave.",
    "Bright stars filled the sky above the quiet village.",
    "Pack a warm coat, the mountains get very cold.",
    "Five violins and a cello played together.",
    "Move the heavy box over to the far corner.",
    "Every evening we read a chapter of the old book.",
    "Will you pass me the salt and the pepper?",
    "The train to the coast leaves from platform four.",
    "Oh, what a lovely surprise to see you here!",
)
HELD_OUT = (
    "Bob found a shiny coin buried in the garden sand.",
    "Why do the pigeons gather by the fountain at noon?",
    "Maple leaves turn orange and purple in the fall.",
    "Measure the shelf twice before you cut the wood.",
)
VOICES = ("en-us", "en-gb", "en", "en-us+f3", "en-gb+m3", "en+f2", "en-us-nyc", "en-gb-scotland")


# Looks of one photo: (mirror, width stretch, rotation in degrees, zoom, RGB gains, gamma, saturation). A stretch
# changes the face's proportions (a narrower or broader face), the closest an offline build gets to new people.
LOOKS = (
    (False, 1.0, 0.0, 1.0, (1.0, 1.0, 1.0), 1.0, 1.0),
    (True, 1.0, 0.0, 1.0, (1.08, 1.0, 0.9), 1.0, 1.0),
    (False, 0.88, 3.0, 1.0, (1.0, 1.0, 1.0), 0.8, 1.0),
    (True, 1.12, -4.0, 1.1, (0.92, 0.98, 1.08), 1.0, 0.8),
    (False, 1.0, -6.0, 0.85, (1.1, 0.95, 0.85), 1.2, 1.2),
    (True, 0.92, 5.0, 1.0, (1.0, 1.0, 1.0), 1.0, 0.0),
    (False, 1.08, 0.0, 1.15, (0.85, 0.9, 1.0), 0.9, 1.0),
    (True, 0.95, -2.0, 0.9, (1.15, 1.05, 0.95), 1.3, 1.3),
    (False, 1.15, 6.0, 1.0, (1.0, 0.92, 0.9), 1.0, 0.6),
    (True, 0.85, 0.0, 1.05, (0.95, 1.0, 0.95), 0.75, 1.0),
    (False, 1.0, 2.0, 0.95, (0.8, 0.8, 0.85), 1.0, 1.0),
    (True, 1.05, -5.0, 1.0, (1.2, 1.1, 1.0), 1.1, 0.9),
)


def look(photo: np.ndarray, spec: tuple) -> np.ndarray:
    """One look of a photo (`LOOKS` entry): geometry about the image centre, then colour."""
    from PIL import Image

    mirror, stretch, degrees, zoom, gains, gamma, saturation = spec
    out = np.ascontiguousarray(photo[:, ::-1] if mirror else photo)
    h, w = out.shape[:2]
    image = Image.fromarray(out)
    if stretch != 1.0:
        image = image.resize((max(8, round(w * stretch)), h), Image.BICUBIC)
    if degrees:
        image = image.rotate(degrees, resample=Image.BICUBIC, expand=False,
                             fillcolor=tuple(int(v) for v in out[0, 0]))
    if zoom != 1.0:
        side_w, side_h = image.size
        box = (side_w / 2 - side_w / zoom / 2, side_h / 2 - side_h / zoom / 2,
               side_w / 2 + side_w / zoom / 2, side_h / 2 + side_h / zoom / 2)
        image = image.transform(image.size, Image.EXTENT, box, resample=Image.BICUBIC, fill=1,
                                fillcolor=tuple(int(v) for v in out[0, 0]))
    x = np.asarray(image, np.float32) / 255.0
    grey = x.mean(axis=2, keepdims=True)
    x = np.clip(grey + saturation * (x - grey), 0, 1) ** gamma * np.asarray(gains, np.float32)
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


def photo_variants(photos: tuple[str, ...] | None = None, looks: int = 4) -> dict[str, np.ndarray]:
    """The bundled photos (all, or those named), each in its first ``looks`` `LOOKS`."""
    from fakebench.assets import load_photo, photo_names

    out = {}
    for name in photos or photo_names():
        photo = load_photo(name)
        for i, spec in enumerate(LOOKS[:looks]):
            out[name if i == 0 else f"{name}-look{i}"] = look(photo, spec)
    return out


EMOTION_INTENSITY = (0.4, 1.0)  # the range each emotional clip's intensity is drawn from


def make_warp_clips(out_dir: str | Path, *, clips: int = 64, val_clips: int = 4, seed: int = 0,
                    fps: float = 25.0, max_side: int = 384, photos: tuple[str, ...] | None = None, looks: int = 4,
                    emotion_share: float = 0.0) -> list[Path]:
    """Write ``clips`` mp4 clips to ``out_dir``, each with its ground truth (CLIP.json), and ``clips.json``
    saying how each was made. ``emotion_share`` of the clips show an emotion (uniform over the non-neutral
    ones, intensity in `EMOTION_INTENSITY`) and speak with that emotion's prosody."""
    from fakebench.generators.warp import WarpGenerator
    from fakebench.io import write_json_atomic
    from fakebench.metrics.expression import EMOTIONS
    from fakebench.speech import synthesize

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    variants = photo_variants(photos, looks)
    names = sorted(variants)
    written, records = [], []
    for i in range(clips):
        held_out = i >= clips - val_clips
        text = HELD_OUT[i % len(HELD_OUT)] if held_out else SENTENCES[i % len(SENTENCES)]
        photo = names[int(rng.integers(len(names)))]
        voice = VOICES[int(rng.integers(len(VOICES)))]
        rate, pitch = int(rng.integers(130, 200)), int(rng.integers(30, 71))
        emotion, intensity = "neutral", 0.0
        if rng.random() < emotion_share:
            emotion = [e for e in EMOTIONS if e != "neutral"][int(rng.integers(len(EMOTIONS) - 1))]
            intensity = round(float(rng.uniform(*EMOTION_INTENSITY)), 3)
        if emotion == "neutral":
            audio, sr, _ = synthesize(text, voice=voice, rate_wpm=rate, pitch=pitch)
        else:  # the emotion's own rate and pitch (explicit ones would win over its preset)
            rate, pitch = None, None
            audio, sr, _ = synthesize(text, voice=voice, emotion=emotion)
        generator = WarpGenerator(fps=fps, max_side=max_side, emotion=emotion, intensity=intensity or 0.6)
        result = generator.generate(variants[photo], audio, sr, seed=int(rng.integers(1 << 31)))
        path = out / f"{'val' if held_out else 'train'}-{i:03d}-{photo}.mp4"
        result.save(path)
        written.append(path)
        records.append({"file": path.name, "photo": photo, "text": text, "voice": voice, "rate_wpm": rate,
                        "pitch": pitch, "emotion": emotion, "intensity": intensity, "frames": result.clip.n_frames,
                        "held_out_sentence": held_out})
    write_json_atomic(out / "clips.json", {"generator": "warp", "fps": fps, "max_side": max_side, "seed": seed,
                                           "photos": sorted(photos or ()), "looks": looks,
                                           "emotion_share": emotion_share, "clips": records}, indent=1)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--val-clips", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--photos", nargs="*", default=None, help="bundled photos to use (default: all)")
    parser.add_argument("--looks", type=int, default=4, help=f"looks of each photo, 1-{len(LOOKS)}")
    parser.add_argument("--emotion-share", type=float, default=0.0, help="share of clips with an emotion")
    args = parser.parse_args(argv)
    paths = make_warp_clips(args.out_dir, clips=args.clips, val_clips=args.val_clips, seed=args.seed,
                            photos=tuple(args.photos) if args.photos else None, looks=args.looks,
                            emotion_share=args.emotion_share)
    print(f"wrote {len(paths)} clips to {args.out_dir}")


if __name__ == "__main__":
    main()
