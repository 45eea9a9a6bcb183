"""Talking-face clips made by fakebench's warp generator, for training where no real talking-face video is at
hand (as offline here): the two bundled real photos, mirrored and colour-shifted variants of them, and
espeak-ng speech of varied sentences, voices, rates and pitches. A model trained on them learns the warp
generator's mouth motion, not a real person's: say so wherever its numbers are quoted.

    python -m fakebench.generators.sda.training.warp_data OUT_DIR --clips 64 --val-clips 4 --seed 0

The last ``val_clips`` clips (in name order, so the trainer holds them out) speak sentences that no
training clip speaks.
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


def photo_variants() -> dict[str, np.ndarray]:
    """The bundled photos, each also mirrored, colour-shifted, and both."""
    from fakebench.assets import load_photo, photo_names

    out = {}
    for name in photo_names():
        photo = load_photo(name)
        warm = np.clip(photo.astype(np.float32) * [1.08, 1.0, 0.9] + 6, 0, 255).astype(np.uint8)
        out[name] = photo
        out[f"{name}-mirror"] = np.ascontiguousarray(photo[:, ::-1])
        out[f"{name}-warm"] = warm
        out[f"{name}-mirror-warm"] = np.ascontiguousarray(warm[:, ::-1])
    return out


def make_warp_clips(out_dir: str | Path, *, clips: int = 64, val_clips: int = 4, seed: int = 0,
                    fps: float = 25.0, max_side: int = 384) -> list[Path]:
    """Write ``clips`` mp4 clips to ``out_dir`` (and ``clips.json`` saying how each was made)."""
    from fakebench.generators.warp import WarpGenerator
    from fakebench.io import write_json_atomic
    from fakebench.media import Clip, write_clip
    from fakebench.speech import synthesize

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    photos = photo_variants()
    names = sorted(photos)
    generator = WarpGenerator(fps=fps, max_side=max_side)
    written, records = [], []
    for i in range(clips):
        held_out = i >= clips - val_clips
        text = HELD_OUT[i % len(HELD_OUT)] if held_out else SENTENCES[i % len(SENTENCES)]
        photo = names[int(rng.integers(len(names)))]
        voice = VOICES[int(rng.integers(len(VOICES)))]
        rate, pitch = int(rng.integers(130, 200)), int(rng.integers(30, 71))
        audio, sr, _ = synthesize(text, voice=voice, rate_wpm=rate, pitch=pitch)
        result = generator.generate(photos[photo], audio, sr, seed=int(rng.integers(1 << 31)))
        clip: Clip = result.clip
        path = out / f"{'val' if held_out else 'train'}-{i:03d}-{photo}.mp4"
        write_clip(path, clip)
        written.append(path)
        records.append({"file": path.name, "photo": photo, "text": text, "voice": voice, "rate_wpm": rate,
                        "pitch": pitch, "frames": clip.n_frames, "held_out_sentence": held_out})
    write_json_atomic(out / "clips.json", {"generator": "warp", "fps": fps, "max_side": max_side, "seed": seed,
                                           "clips": records}, indent=1)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--val-clips", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    paths = make_warp_clips(args.out_dir, clips=args.clips, val_clips=args.val_clips, seed=args.seed)
    print(f"wrote {len(paths)} clips to {args.out_dir}")


if __name__ == "__main__":
    main()
