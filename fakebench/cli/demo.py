"""The offline demo walkthrough behind `fakebench demo`: a clip made from a bundled real photo and synthesized
speech, analyzed twice; every generator animating the photo; a small demo corpus."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from fakebench.assets import describe_photo, load_photo
from fakebench.cli.progress import RichProgress
from fakebench.corpus.demo import (
    FACE_IOD_PX,
    FPS,
    SAMPLE_RATE,
    SENTENCES,
    make_demo_corpus,
    photo_crop,
    photo_landmarks,
)
from fakebench.faces import analyze, apply_transform, invert_transform
from fakebench.io import atomic_write
from fakebench.media import resample_audio, write_audio, write_clip
from fakebench.speech import synthesize
from fakebench.synthetic import moving_photo


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
    atomic_write(output / "landmarks.npy", lambda f: np.save(f, cold.landmarks))
    console.print(f"landmarks of every frame -> {output / 'landmarks.npy'}; frame 0 mapped back to the photo "
                  f"lies {np.linalg.norm(head - landmarks, axis=1).mean():.2f} px from the photo's own landmarks")
    generate_step(output, image, audio, console=console)
    corpus_step(output / "corpus", console=console)
    return summary


def generate_step(output: Path, image: np.ndarray, audio: np.ndarray, *, console: Console) -> list[dict]:
    """Step 2: every photo generator animates the photo with the speech; every clip generator then manipulates
    the clip of the demo's reference generator (warp), as it would a real clip of a corpus."""
    from fakebench.corpus.demo import reference_generator
    from fakebench.errors import WeightsError
    from fakebench.generators.base import GENERATORS, available, photo_generators

    console.print("\n[bold]step 2: generate[/] (photo + speech -> talking clip, ground truth beside each mp4)")
    face_box = photo_crop(image)
    rows = []
    clips = {}
    for name in photo_generators():
        try:
            generator = GENERATORS.create(name)
            t0 = time.perf_counter()
            made = generator.generate(face_box, audio, SAMPLE_RATE, seed=1)
            seconds = time.perf_counter() - t0
        except WeightsError as e:
            console.print(f"[yellow]{name}: skipped[/] - {e.one_line()}")
            continue
        video, truth = made.save(output / f"fake_{name}.mp4")
        clips[name] = made.clip
        rows.append({"generator": name, "file": str(video), "frames": made.clip.n_frames,
                     "size": f"{made.clip.width}x{made.clip.height}", "seconds": seconds,
                     "blinks": len(made.ground_truth.get("blinks", []))})
    source_name = reference_generator()
    source = clips.get(source_name)
    for name in [n for n in GENERATORS.names() if n not in photo_generators()] if source is not None else []:
        t0 = time.perf_counter()
        made = GENERATORS.create(name).fake_from_source(source, source.audio, source.sample_rate, seed=1)
        video, _ = made.save(output / f"fake_{name}.mp4")
        rows.append({"generator": f"{name} (of {source_name})", "file": str(video), "frames": made.clip.n_frames,
                     "size": f"{made.clip.width}x{made.clip.height}", "seconds": time.perf_counter() - t0,
                     "blinks": None})
    table = Table(title="generated clips")
    for col in ("generator", "frames", "size", "frames/s", "blinks put in", "file"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["generator"], str(r["frames"]), r["size"], f"{r['frames'] / max(r['seconds'], 1e-9):.0f}",
                      "-" if r["blinks"] is None else str(r["blinks"]), r["file"])
    console.print(table)
    console.print(f"generators available: {', '.join(n for n, e in available().items() if e.is_available)}")
    return rows


def corpus_step(output: Path, *, console: Console) -> None:
    """Step 3: a small demo corpus (two clips per photo) and its summary."""
    from fakebench.cli.corpus import print_info
    from fakebench.corpus.manifest import corpus_info, load_corpus

    console.print("\n[bold]step 3: corpus[/] (reference clips of the bundled photos speaking in varied voices, "
                  "fakes from the other generators; see `fakebench corpus --help`)")
    # In this process: its face models are loaded already, which costs a new worker process seconds.
    make_demo_corpus(output, clips_per_identity=2, executor="local", workers=1,
                     progress=RichProgress(console, note_prefix=""))
    print_info(corpus_info(load_corpus(output)), console)
