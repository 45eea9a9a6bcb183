"""The offline demo: a clip made from a bundled real photo and synthesized speech, analyzed twice; every
generator animating the photo; and a small demo corpus (`make_demo_corpus`, also `fakebench corpus demo`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from fakebench.assets import describe_photo, load_photo, photo_names
from fakebench.faces import analyze, apply_transform, invert_transform
from fakebench.media import Clip, resample_audio, write_audio, write_clip
from fakebench.speech import synthesize
from fakebench.synthetic import moving_photo

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


def run_demo(output: Path, *, photo: str = "astronaut", seconds: float = 4.0, console: Console) -> dict:
    output.mkdir(parents=True, exist_ok=True)
    console.print("[bold]fakebench demo[/] (offline: a bundled real photo + espeak-ng speech)")
    console.print(f"photo: {photo} - {describe_photo(photo)}")

    text = " ".join(SENTENCES[: max(1, min(len(SENTENCES), round(seconds / 2.2)))])
    audio, sr, words = synthesize(text, voice="en-us", rate_wpm=165)
    audio = resample_audio(audio, sr, SAMPLE_RATE)
    write_audio(output / "speech.wav", audio, SAMPLE_RATE)
    console.print(f"speech: {len(words)} words, {audio.size / SAMPLE_RATE:.2f} s -> {output / 'speech.wav'}")

    image = load_photo(photo)
    landmarks = photo_landmarks(image)
    iod = float(np.linalg.norm(landmarks[36:42].mean(0) - landmarks[42:48].mean(0)))
    n_frames = int(round(audio.size / SAMPLE_RATE * FPS))
    moving = moving_photo(image, n_frames=n_frames, size=(256, 256), fps=FPS, centre=tuple(landmarks.mean(0)),
                          zoom=FACE_IOD_PX / iod, audio=audio, sample_rate=SAMPLE_RATE, seed=7)
    clip_path = output / "moving_photo.mp4"
    write_clip(clip_path, moving.clip)
    console.print(f"clip: {n_frames} frames at {FPS:g} fps, 256x256, head moved/scaled/rotated by known "
                  f"transforms, speech muxed -> {clip_path}")
    console.print("[yellow]note:[/] this first clip is a real photo under known head motion (lips still), made "
                  "to check face tracking against ground truth; the talking fakes follow in step 2.")

    t0 = time.perf_counter()
    cold = analyze(clip_path, use_cache=False)
    cold_s = time.perf_counter() - t0
    analyze(clip_path)  # fills the cache
    t0 = time.perf_counter()
    warm = analyze(clip_path)
    warm_s = time.perf_counter() - t0

    expected = moving.map_points(landmarks)
    err = np.linalg.norm(cold.landmarks - expected, axis=2).mean(1) / np.linalg.norm(
        expected[:, 36:42].mean(1) - expected[:, 42:48].mean(1), axis=1)
    summary = {
        "frames": cold.n_frames, "fps": cold.fps, "width": cold.width, "height": cold.height,
        "has_audio": cold.meta["media"]["has_audio"], "sample_rate": cold.meta["media"]["sample_rate"],
        "face_frames": cold.face_frames, "faces_max": cold.faces_max,
        "landmark_ok_ratio": round(cold.landmark_ok_ratio, 4),
        "landmark error vs known motion (mean / worst frame, % of inter-ocular)":
            f"{100 * np.nanmean(err):.2f} / {100 * np.nanmax(err):.2f}",
        "cold analysis": f"{cold_s:.2f} s ({cold.n_frames / cold_s:.0f} frames/s)",
        "cached analysis": f"{warm_s * 1000:.1f} ms (cache_hit={warm.meta['cache_hit']}, "
                           f"{cold_s / max(warm_s, 1e-9):.0f}x faster)",
    }
    table = Table(title=f"face track of {clip_path}", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    for k, v in summary.items():
        table.add_row(k, str(v))
    console.print(table)
    head = apply_transform(invert_transform(moving.transforms[0]), cold.landmarks[0].astype(np.float64))
    np.save(output / "landmarks.npy", cold.landmarks)
    console.print(f"landmarks of every frame -> {output / 'landmarks.npy'}; frame 0 mapped back to the photo "
                  f"lies {np.linalg.norm(head - landmarks, axis=1).mean():.2f} px from the photo's own landmarks")
    generate_step(output, image, audio, console=console)
    corpus_step(output / "corpus", console=console)
    return summary


def generate_step(output: Path, image: np.ndarray, audio: np.ndarray, *, console: Console) -> list[dict]:
    """Step 2: every photo generator animates the photo with the speech; desync shifts the warp clip's audio."""
    from fakebench.errors import WeightsError
    from fakebench.generators.base import available, create

    console.print("\n[bold]step 2: generate[/] (photo + speech -> talking clip, ground truth beside each mp4)")
    face_box = _photo_crop(image)
    rows = []
    warp_clip = None
    for name in ("sda", "warp", "static"):
        try:
            generator = create(name)
            t0 = time.perf_counter()
            made = generator.generate(face_box, audio, SAMPLE_RATE, seed=1)
            seconds = time.perf_counter() - t0
        except WeightsError as e:
            console.print(f"[yellow]{name}: skipped[/] - {e.one_line()}")
            continue
        video, truth = made.save(output / f"fake_{name}.mp4")
        if name == "warp":
            warp_clip = made.clip
        rows.append({"generator": name, "file": str(video), "frames": made.clip.n_frames,
                     "size": f"{made.clip.width}x{made.clip.height}", "seconds": seconds,
                     "blinks": len(made.ground_truth.get("blinks", []))})
    if warp_clip is not None:
        t0 = time.perf_counter()
        made = create("desync", shift_frames=5).from_clip(warp_clip)
        video, _ = made.save(output / "fake_desync.mp4")
        rows.append({"generator": "desync (+5 frames)", "file": str(video), "frames": made.clip.n_frames,
                     "size": f"{made.clip.width}x{made.clip.height}", "seconds": time.perf_counter() - t0,
                     "blinks": None})
    table = Table(title="generated clips")
    for col in ("generator", "frames", "size", "frames/s", "blinks put in", "file"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["generator"], str(r["frames"]), r["size"], f"{r['frames'] / max(r['seconds'], 1e-9):.0f}",
                      "-" if r["blinks"] is None else str(r["blinks"]), r["file"])
    console.print(table)
    console.print(f"generators available: {', '.join(available())}")
    return rows


def _photo_crop(image: np.ndarray, side: int = 256) -> np.ndarray:
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

@dataclass(frozen=True)
class ReferenceJob:
    photo: str
    text: str
    voice: str
    rate_wpm: int
    seed: int
    folder: str  # the reference corpus folder
    clip_id: str


def make_demo_corpus(output: str | Path, *, clips_per_identity: int = 4,
                     generators: tuple[str, ...] = ("sda", "static", "desync"), seed: int = 0, workers: int = 2,
                     executor: str = "pool", progress: bool = True, notify=print) -> Path:
    """The offline demo corpus in OUTPUT: reference clips in OUTPUT/reference, then the fake corpus in OUTPUT.

    Every bundled real photo speaks `clips_per_identity` synthesized sentences (varied sentences, voices and
    rates), animated by the warp generator: the reference class, marked `synthetic-reference` in the manifest's
    `source` column because no real talking-face video ships offline. The fakes come from `generators`.
    Resumable like any build: run it again to finish an interrupted one.
    """
    from fakebench.corpus import (
        SYNTHETIC_REFERENCE,
        assign_splits,
        claim_output,
        load_corpus,
        make_manifest,
        write_corpus,
    )
    from fakebench.corpus_build import BuildOptions, run_build
    from fakebench.errors import ConfigError
    from fakebench.execution import ResumeState, Task, run_tasks
    from fakebench.worker_preload import start_corpus_pool_server

    if not isinstance(clips_per_identity, int) or clips_per_identity < 1:
        raise ConfigError(f"clips per identity must be a whole number >= 1, got {clips_per_identity!r}")
    if "warp" in generators:
        raise ConfigError("the demo's reference clips are warp animations; make its fakes with other generators")
    start_corpus_pool_server(executor, "fakebench.demo")  # one server for both pools: the first one starts it
    output = Path(output)
    claim_output(output, {"kind": "demo", "clips_per_identity": clips_per_identity,
                          "generators": ",".join(generators), "seed": seed})
    reference = output / "reference"
    jobs = []
    for i, photo in enumerate(photo_names()):
        for j in range(clips_per_identity):
            voice, rate = CORPUS_VOICES[(i * clips_per_identity + j) % len(CORPUS_VOICES)]
            text = CORPUS_SENTENCES[(i * 3 + j) % len(CORPUS_SENTENCES)]
            clip_id = f"ref-{photo}-{j}"
            jobs.append(Task(clip_id, ReferenceJob(photo=photo, text=text, voice=voice, rate_wpm=rate,
                                                   seed=seed * 1000 + i * 100 + j, folder=str(reference),
                                                   clip_id=clip_id)))
    run_tasks(make_reference_clip, jobs, reference / ".state", executor=executor, workers=workers,
              total=len(jobs), description="reference clips (warp)", progress=progress)
    state = ResumeState(reference / ".state")
    failures = state.failures()
    if failures:
        key, why = next(iter(failures.items()))
        raise ConfigError(f"{len(failures)} demo reference clip(s) could not be made, e.g. {key}: {why}")
    manifest = make_manifest(list(state.results()))
    manifest["split"] = assign_splits(manifest["identity"], seed=seed, ratios=(0.5, 0.0, 0.5))
    write_corpus(reference, manifest, {"complete": True, "problems": [], "source": SYNTHETIC_REFERENCE})
    run_build(load_corpus(reference), output, BuildOptions(generators=tuple(generators), seed=seed),
              workers=workers, executor=executor, progress=progress, notify=notify)
    return output


def make_reference_clip(job: ReferenceJob) -> dict:
    """One reference clip: a bundled photo saying a sentence, animated by the warp generator."""
    from fakebench.corpus import CORPUS_ENCODER_THREADS, SYNTHETIC_REFERENCE
    from fakebench.generators.base import create
    from fakebench.media import file_sha256

    audio, sr, _ = synthesize(job.text, voice=job.voice, rate_wpm=job.rate_wpm)
    pad = np.zeros(int(CORPUS_PAD_S * SAMPLE_RATE), np.float32)
    audio = np.concatenate([pad, resample_audio(audio, sr, SAMPLE_RATE), pad])
    made = create("warp", fps=FPS).generate(_photo_crop(load_photo(job.photo)), audio, SAMPLE_RATE, seed=job.seed)
    made.ground_truth["inputs"] = {"photo": job.photo, "text": job.text, "voice": job.voice,
                                   "rate_wpm": job.rate_wpm}
    relative = Path("media") / job.photo / f"{job.clip_id}.mp4"
    video, _ = made.save(Path(job.folder) / relative, encoder_threads=CORPUS_ENCODER_THREADS)
    return {
        "clip_id": job.clip_id, "path": relative.as_posix(), "label": "real", "generator": None,
        "identity": job.photo, "source_clip": job.clip_id, "audio_source": job.clip_id, "split": None,
        "fps": FPS, "sample_rate": SAMPLE_RATE, "n_frames": made.clip.n_frames,
        "duration_s": round(made.clip.duration_s, 4), "sha256": file_sha256(video),
        "ground_truth": relative.with_suffix(".json").as_posix(), "source": SYNTHETIC_REFERENCE,
        "text": job.text, "voice": job.voice,
    }


def corpus_step(output: Path, *, console: Console) -> None:
    """Step 3: a small demo corpus (two clips per photo) and its summary."""
    from fakebench.cli_corpus import print_info
    from fakebench.corpus import corpus_info, load_corpus

    console.print("\n[bold]step 3: corpus[/] (reference clips of the bundled photos speaking in varied voices, "
                  "fakes from the other generators; see `fakebench corpus --help`)")
    # In this process: its face models are loaded already, which costs a new worker process seconds.
    make_demo_corpus(output, clips_per_identity=2, executor="local", workers=1,
                     notify=lambda m: console.print(f"[yellow]{m}[/]"))
    print_info(corpus_info(load_corpus(output)), console)
