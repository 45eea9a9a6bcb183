"""Make one fake from files: the library call behind `fakebench generate`."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakebench.errors import ConfigError
from fakebench.generators.base import create
from fakebench.media import check_output_path, read_audio, read_clip, read_image

PHOTO_GENERATORS = ("sda", "warp", "static")


@dataclass(frozen=True)
class GenerationResult:
    video: Path
    ground_truth: Path
    n_frames: int
    fps: float
    width: int
    height: int
    seconds: float


def generate_from_photo(generator: str, image: str | os.PathLike, audio: str | os.PathLike,
                        output: str | os.PathLike, *, seed: int = 0, **options: Any) -> GenerationResult:
    """Photo + audio file -> OUT.mp4 (video with the driving audio muxed) and OUT.json (ground truth)."""
    if generator not in PHOTO_GENERATORS:
        raise ConfigError(f"--generator {generator} does not animate a photo; photo generators are "
                          f"{', '.join(PHOTO_GENERATORS)} (desync takes --video)")
    out = check_output_path(output)
    photo = read_image(image)
    samples, rate = read_audio(audio)
    gen = create(generator, **{k: v for k, v in options.items() if v is not None})
    t0 = time.perf_counter()
    made = gen.generate(photo, samples, rate, seed=seed)
    seconds = time.perf_counter() - t0
    made.ground_truth.setdefault("inputs", {"image": str(image), "audio": str(audio)})
    video, truth = made.save(out)
    return GenerationResult(video, truth, made.clip.n_frames, made.clip.fps, made.clip.width, made.clip.height,
                            seconds)


def generate_desync(video: str | os.PathLike, output: str | os.PathLike, *, shift_frames: int,
                    other_audio: str | os.PathLike | None = None, seed: int = 0) -> GenerationResult:
    """A real clip with its audio shifted by K frames (+K = audio later), or replaced by another file's audio."""
    out = check_output_path(output)
    clip = read_clip(video)
    gen = create("desync", shift_frames=shift_frames)
    t0 = time.perf_counter()
    if other_audio is not None:
        samples, rate = read_audio(other_audio)
        made = gen.from_clip(clip, seed=seed, other_audio=samples, other_sample_rate=rate,
                             audio_source=str(other_audio))
    else:
        made = gen.from_clip(clip, seed=seed)
    seconds = time.perf_counter() - t0
    made.ground_truth.setdefault("inputs", {"video": str(video)})
    path, truth = made.save(out)
    return GenerationResult(path, truth, made.clip.n_frames, made.clip.fps, made.clip.width, made.clip.height,
                            seconds)
