"""The offline demo corpus: every bundled real photo speaking synthesized sentences (the reference class,
marked synthetic-reference), and its fakes built like any corpus (`fakebench corpus demo`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fakebench.assets import load_photo, photo_names
from fakebench.faces import analyze
from fakebench.media import Clip, corpus_bitrate, resample_audio
from fakebench.progress import Progress
from fakebench.speech import synthesize

SENTENCES = [
    "Place blue at F two now.",
    "A single photo and an audio file can make a talking portrait.",
    "Detectors must learn what real speech looks like on a face.",
    "Bin green by S nine again, please.",
]
FPS = 25.0
SAMPLE_RATE = 16000
FACE_IOD_PX = 52.0  # inter-ocular distance of the face in the 256x256 demo frames

# The demo corpus: Harvard sentences (IEEE 1969, public domain) and GRID-style commands, in varied voices.
CORPUS_SENTENCES = [
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "Place blue at F two now.",
    "It is easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Bin green by S nine again.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
]
CORPUS_VOICES = [("en-us", 165), ("en-gb", 150), ("en-us+f3", 175), ("en-gb-scotland", 160), ("en+m3", 185),
                 ("en-029", 155)]
CORPUS_PAD_S = 0.3  # silence around each sentence, as real recordings have (trimmed by the corpus build)


def photo_landmarks(photo: np.ndarray) -> np.ndarray:
    """The photo's 68 landmarks, through the same analysis every clip gets."""
    track = analyze(Clip(frames=np.stack([photo, photo]), fps=FPS))
    track.require_face("the demo")
    return track.landmarks[0].astype(np.float64)


def photo_crop(image: np.ndarray, side: int = 256) -> np.ndarray:
    """A square crop around the photo's face, scaled so the face has the demo's size."""
    from PIL import Image

    landmarks = photo_landmarks(image)
    iod = float(np.linalg.norm(landmarks[36:42].mean(0) - landmarks[42:48].mean(0)))
    scale = FACE_IOD_PX / iod
    half = side / scale / 2
    cx, cy = landmarks.mean(0)
    box = (int(cx - half), int(cy - half * 0.9), int(cx + half), int(cy + half * 1.1))
    return np.asarray(Image.fromarray(image).crop(box).resize((side, side), Image.LANCZOS))


# ---------------------------------------------------------------------------------------------- demo corpus

# Looks of one photo that the demo corpus treats as separate "identities" (pseudo-identities: the same person),
# so that identity-level confidence intervals have more than two clusters to resample. Variant 0 is the photo.
# (mirror, zoom >= 1 so that no border enters the frame, rotation in degrees, RGB gains)
PHOTO_VARIANTS = (
    (False, 1.0, 0.0, (1.0, 1.0, 1.0)),
    (True, 1.0, 0.0, (1.0, 1.0, 1.0)),
    (False, 1.1, 4.0, (1.06, 1.0, 0.92)),
    (True, 1.08, -3.0, (0.94, 1.0, 1.07)),
    (False, 1.04, -5.0, (1.0, 0.96, 0.96)),
    (True, 1.06, 5.0, (1.08, 1.04, 1.0)),
)


def variant_identity(photo: str, variant: int) -> str:
    return photo if variant == 0 else f"{photo}-v{variant}"


def photo_variant(face: np.ndarray, variant: int) -> np.ndarray:
    """The demo's `variant`-th look of a square face crop: mirrored, zoomed, rotated and colour-shifted."""
    from PIL import Image

    mirror, zoom, degrees, gains = PHOTO_VARIANTS[variant]
    out = face[:, ::-1] if mirror else face
    image = Image.fromarray(np.ascontiguousarray(out))
    if degrees:
        image = image.rotate(degrees, resample=Image.BICUBIC, fillcolor=tuple(int(v) for v in out[0, 0]))
    if zoom != 1.0:
        side = face.shape[0]
        inner = side / zoom
        box = ((side - inner) / 2, (side - inner) / 2, (side + inner) / 2, (side + inner) / 2)
        image = image.transform((side, side), Image.EXTENT, box, resample=Image.BICUBIC, fill=1)
    arr = np.asarray(image, np.float32) * np.asarray(gains, np.float32)
    return np.clip(arr.round(), 0, 255).astype(np.uint8)


def person_splits(persons: Any, identities: Any, *, seed: int, val_share: float = 1 / 3) -> Any:
    """Person-disjoint train/test (half the persons each, at least one in test), and val taken from the train
    persons' variant identities: the test person's face is never seen in training or model selection."""
    import pandas as pd

    from fakebench.corpus.manifest import assign_splits

    persons = pd.Series(persons, dtype="string").reset_index(drop=True)
    identities = pd.Series(identities, dtype="string").reset_index(drop=True)
    split = assign_splits(persons, seed=seed, ratios=(0.5, 0.0, 0.5))
    if (split == "test").sum() == 0 or (split == "train").sum() == 0:
        return split
    train = split == "train"
    inner = assign_splits(identities[train], seed=seed, ratios=(1 - val_share, val_share, 0.0))
    split[train] = inner.to_numpy()
    return split


@dataclass(frozen=True)
class ReferenceJob:
    photo: str
    text: str
    voice: str
    rate_wpm: int
    seed: int
    folder: str  # the reference corpus folder
    clip_id: str
    generator: str  # the photo generator animating it (`reference_generator()` by default)
    variant: int = 0  # `PHOTO_VARIANTS` index
    emotion: str | None = None  # with the build's --emotion: this clip's, when the generator takes one
    intensity: float | None = None
    emotions: bool = False  # the build has --emotion: the manifest row records `emotion` and `emotion_intensity`


def reference_generator() -> str:
    """The default generator of the demo's reference clips: the first, in default order, whose plug-in says its
    clips may stand in for real video (``reference_ok``)."""
    from fakebench.errors import ConfigError
    from fakebench.generators.base import GENERATORS

    for name in GENERATORS.names():
        plugin = GENERATORS.get(name)
        if getattr(plugin, "reference_ok", False) and getattr(plugin, "takes", "photo") == "photo":
            return name
    raise ConfigError("no registered generator may make the demo's reference clips (none sets reference_ok)")


def fake_generators(reference: str | None = None) -> tuple[str, ...]:
    """The default generators of the demo's fakes: every registered one but the reference generator."""
    from fakebench.generators.base import GENERATORS

    reference = reference or reference_generator()
    return tuple(n for n in GENERATORS.names() if n != reference)


def make_demo_corpus(output: str | Path, *, clips_per_identity: int = 4,
                     generators: tuple[str, ...] | None = None, seed: int = 0, workers: int = 2,
                     executor: str = "pool", progress: Progress | None = None,
                     reference: str | None = None, variants: int = 1, emotion: str | None = None) -> Path:
    """The offline demo corpus in OUTPUT: reference clips in OUTPUT/reference, then the fake corpus in OUTPUT.

    Every bundled real photo speaks `clips_per_identity` synthesized sentences (varied sentences, voices and
    rates), animated by the `reference` photo generator (default: `reference_generator()`, the warp generator):
    the reference class, marked `synthetic-reference` in the manifest's `source` column because no real
    talking-face video ships offline. The fakes come from `generators` (default: every other generator).
    Resumable like any build: run it again to finish an interrupted one. ``emotion`` ("random" or a name) is the
    build's --emotion: the fakes of generators that declare an ``emotion`` option get one.
    """
    from fakebench.corpus.build import BuildOptions, check_emotion, emotion_of, run_build
    from fakebench.corpus.manifest import (
        SYNTHETIC_REFERENCE,
        assign_splits,
        claim_output,
        load_corpus,
        make_manifest,
        write_corpus,
    )
    from fakebench.corpus.workers import start_corpus_pool_server
    from fakebench.errors import ConfigError
    from fakebench.execution import ResumeState, Task, run_tasks

    if not isinstance(clips_per_identity, int) or clips_per_identity < 1:
        raise ConfigError(f"clips per identity must be a whole number >= 1, got {clips_per_identity!r}")
    if not isinstance(variants, int) or not 1 <= variants <= len(PHOTO_VARIANTS):
        raise ConfigError(f"photo variants must be a whole number from 1 to {len(PHOTO_VARIANTS)}, got {variants!r}")
    check_emotion(emotion)
    from fakebench.generators.base import GENERATORS

    default_reference = reference_generator()
    reference_name = reference or default_reference
    if getattr(GENERATORS.get(reference_name), "takes", "photo") != "photo":
        raise ConfigError(f"the demo's reference clips animate photos; {reference_name} does not take a photo")
    generators = fake_generators(reference_name) if generators is None else tuple(generators)
    if reference_name in generators:
        raise ConfigError(f"the demo's reference clips are {reference_name} animations; make its fakes with other "
                          "generators")
    start_corpus_pool_server(executor, "fakebench.corpus.demo")  # one server for both pools: the first one starts it
    output = Path(output)
    fingerprint = {"kind": "demo", "clips_per_identity": clips_per_identity, "generators": ",".join(generators),
                   "seed": seed}
    if reference_name != default_reference:  # the default keeps the fingerprint of demo corpora made before
        fingerprint["reference"] = reference_name
    if variants > 1:
        fingerprint["variants"] = variants
    if emotion is not None:
        fingerprint["emotion"] = emotion
    claim_output(output, fingerprint)
    reference = output / "reference"
    jobs = []
    for i, photo in enumerate(photo_names()):
        for v in range(variants):
            who = variant_identity(photo, v)
            for j in range(clips_per_identity):
                k = v * clips_per_identity + j
                voice, rate = CORPUS_VOICES[(i * clips_per_identity + k) % len(CORPUS_VOICES)]
                text = CORPUS_SENTENCES[(i * 3 + k) % len(CORPUS_SENTENCES)]
                clip_id = f"ref-{who}-{j}"
                clip_seed = seed * 1000 + i * 100 + k
                # The reference class shows emotions as the fakes do, so that an expression says nothing of the label.
                feeling, intensity = emotion_of(reference_name, BuildOptions(generators=(), emotion=emotion), clip_seed)
                jobs.append(Task(clip_id, ReferenceJob(photo=photo, text=text, voice=voice, rate_wpm=rate,
                                                       seed=clip_seed, folder=str(reference), clip_id=clip_id,
                                                       generator=reference_name, variant=v, emotion=feeling,
                                                       intensity=intensity, emotions=emotion is not None)))
    run_tasks(make_reference_clip, jobs, reference / ".state", executor=executor, workers=workers,
              total=len(jobs), description=f"reference clips ({reference_name})", progress=progress)
    state = ResumeState(reference / ".state")
    failures = state.failures()
    if failures:
        key, why = next(iter(failures.items()))
        raise ConfigError(f"{len(failures)} demo reference clip(s) could not be made, e.g. {key}: {why}")
    manifest = make_manifest(list(state.results()))
    if variants > 1:
        manifest["split"] = person_splits(manifest["person"], manifest["identity"], seed=seed).to_numpy()
    else:
        manifest["split"] = assign_splits(manifest["identity"], seed=seed, ratios=(0.5, 0.0, 0.5))
    write_corpus(reference, manifest, {"complete": True, "problems": [], "source": SYNTHETIC_REFERENCE})
    run_build(load_corpus(reference), output, BuildOptions(generators=tuple(generators), seed=seed, emotion=emotion),
              workers=workers, executor=executor, progress=progress)
    return output


def make_reference_clip(job: ReferenceJob) -> dict:
    """One reference clip: a bundled photo saying a sentence, animated by the job's photo generator."""
    from fakebench.corpus.manifest import CORPUS_ENCODER_THREADS, SYNTHETIC_REFERENCE
    from fakebench.generators.base import GENERATORS
    from fakebench.media import file_sha256

    audio, sr, _ = synthesize(job.text, voice=job.voice, rate_wpm=job.rate_wpm, fresh=True)
    pad = np.zeros(int(CORPUS_PAD_S * SAMPLE_RATE), np.float32)
    audio = np.concatenate([pad, resample_audio(audio, sr, SAMPLE_RATE), pad])
    plugin = GENERATORS.get(job.generator)
    options = {"fps": FPS} if "fps" in {o.name for o in plugin.options} else {}
    if job.emotion is not None:
        options["emotion"] = job.emotion
        if job.intensity is not None:
            options["intensity"] = job.intensity
    face = photo_variant(photo_crop(load_photo(job.photo)), job.variant)
    made = plugin(**options).generate(face, audio, SAMPLE_RATE, seed=job.seed)
    made.ground_truth["inputs"] = {"photo": job.photo, "variant": job.variant, "text": job.text, "voice": job.voice,
                                   "rate_wpm": job.rate_wpm}
    identity = variant_identity(job.photo, job.variant)
    relative = Path("media") / identity / f"{job.clip_id}.mp4"
    video, _ = made.save(Path(job.folder) / relative, encoder_threads=CORPUS_ENCODER_THREADS,
                         bitrate=corpus_bitrate(made.clip.width, made.clip.height, made.clip.fps))
    return {
        "clip_id": job.clip_id, "path": relative.as_posix(), "label": "real", "generator": None,
        "identity": identity, "person": job.photo, "source_clip": job.clip_id, "audio_source": job.clip_id,
        "split": None,
        "fps": FPS, "sample_rate": SAMPLE_RATE, "n_frames": made.clip.n_frames,
        "duration_s": round(made.clip.duration_s, 4), "sha256": file_sha256(video),
        "ground_truth": relative.with_suffix(".json").as_posix(), "source": SYNTHETIC_REFERENCE,
        "text": job.text, "voice": job.voice,
        **({"emotion": job.emotion, "emotion_intensity": job.intensity} if job.emotions else {}),
    }
