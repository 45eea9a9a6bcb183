"""Fake corpora from real ones: every real clip, every generator, resumable and in parallel.

For each real clip the builder writes the clip itself, re-encoded after trimming its leading and trailing
silence, and `per_clip` fakes per generator, each made by the generator's `fake_from_source`: a photo
generator animates the sharpest, most frontal open-eyed frame of the clip (chosen by a face-quality score);
a clip generator manipulates the clip itself (shifts or swaps its audio, say). The driving audio is the
clip's own (real and fake say the same words) or another clip's, trimmed the same way, so leading silence
tells nothing apart. Each real clip is one task of
`fakebench.execution.run_tasks` whose parts are its output clips: the clip is decoded, trimmed and its
identity frame chosen once for all of them; a finished output is never redone, a failed one is recorded
and retried on the next run. Splits are inherited from the source clip's identity.

A visual-only real clip (``has_audio`` false in the manifest) is written untrimmed (there is no speech to trim
by) and is never chosen to drive another clip's fake. With ``--audio own`` its fakes are skipped, not failed:
every generator is driven by the clip's own audio, which it lacks; the reason is on the real clip's manifest
row (``fakes_skipped``) and in ``corpus.json`` (``skipped``). With another clip's audio its fakes are made.
"""

from __future__ import annotations

import functools
import hashlib
import os
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fakebench.corpus.manifest import (
    CORPUS_ENCODER_THREADS,
    Corpus,
    CorpusError,
    assign_splits,
    claim_output,
    load_corpus,
    make_manifest,
    write_corpus,
)
from fakebench.corpus.workers import corpus_worker_preload, start_corpus_pool_server
from fakebench.errors import AudioError, ConfigError
from fakebench.execution import ResumeState, RunSummary, Task, check_executor, run_tasks
from fakebench.faces import choose_identity_frame
from fakebench.generators.base import GENERATORS
from fakebench.media import Clip, speech_cut, trim_silence
from fakebench.progress import Progress, or_silent
from fakebench.speech import EMOTIONS

AUDIO_MODES = ("own", "other-same-identity", "other")
NO_AUDIO = "no audio track"
STATE = ".build-state"
MEDIA = "media"


@dataclass(frozen=True)
class BuildOptions:
    generators: tuple[str, ...]
    checkpoint: str | None = None
    audio: str = "own"
    per_clip: int = 1
    seed: int = 0
    device: str = "auto"
    emotion: str | None = None  # None (no emotion), "random" (drawn per fake) or one of `EMOTIONS`

    def offered(self) -> dict[str, Any]:
        """The build-wide options each generator gets when it declares them (`GeneratorBase.source_options`)."""
        return {"checkpoint": self.checkpoint, "device": self.device}

    def fingerprint(self) -> dict[str, Any]:
        return {"generators": ",".join(self.generators), "checkpoint": self.checkpoint, "audio": self.audio,
                "per_clip": self.per_clip, "seed": self.seed, "video": "cbr",
                **({"emotion": self.emotion} if self.emotion is not None else {})}  # corpora made before keep theirs


@dataclass(frozen=True)
class ClipJob:
    """Everything one worker needs to make one output clip (picklable, small)."""

    clip_id: str
    generator: str | None  # None: the real clip itself
    source: dict[str, Any]  # manifest row of the real clip (paths absolute)
    audio: dict[str, Any]  # manifest row of the clip whose audio drives it
    seed: int
    output: str  # the corpus folder
    checkpoint: str | None = None
    device: str = "auto"
    problem: str | None = None  # known before running (e.g. no other clip to take audio from)
    fakes_skipped: str | None = None  # the real clip's own job: why none of its fakes is made (no audio track)
    build_seed: int = 0  # the build's seed (`edge_cut` draws from it)
    emotion: str | None = None  # given to a generator that declares an `emotion` option (with `intensity`)
    emotion_intensity: float | None = None  # None: the generator's default intensity
    emotions: bool = False  # the build has --emotion: the manifest row records `emotion` and `emotion_intensity`

    def offered(self) -> dict[str, Any]:
        """The options this job's generator gets when it declares them (`GeneratorBase.source_options`): the
        build-wide ones, and this fake's emotion and its intensity."""
        offered: dict[str, Any] = {"checkpoint": self.checkpoint, "device": self.device}
        if self.emotion is not None:
            offered["emotion"] = self.emotion
            if self.emotion_intensity is not None:
                offered["intensity"] = self.emotion_intensity
        return offered


@dataclass(frozen=True)
class ClipGroup:
    """One real clip and the output clips made from it (itself re-encoded, its fakes): one task."""

    source: dict[str, Any]  # manifest row of the real clip (paths absolute)
    jobs: tuple[ClipJob, ...]


@dataclass
class BuildResult:
    folder: Path
    clips: int
    summary: RunSummary
    skipped_generators: dict[str, str] = field(default_factory=dict)
    skipped_fakes: dict[str, str] = field(default_factory=dict)  # fake clip id -> why it is not made (not a failure)


def parse_generators(text: str | None) -> tuple[str, ...]:
    """Comma-separated generator names, checked; None: every registered generator, in default order."""
    if text is None:
        return tuple(GENERATORS.names())
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    known = sorted(GENERATORS.names())
    unknown = [n for n in names if n not in GENERATORS]
    if not names or unknown:
        raise ConfigError(f"unknown generator(s) {', '.join(unknown) or '(none given)'}; choose from "
                          f"{', '.join(known)}")
    return names


# ---------------------------------------------------------------------------------------------- building

def build_corpus(real: str | os.PathLike, output: str | os.PathLike, options: BuildOptions, *,
                 workers: int = 1, executor: str = "local", progress: Progress | None = None,
                 ray_address: str | None = None) -> BuildResult:
    """Make the fake corpus OUTPUT from the real corpus REAL (resuming OUTPUT when it holds this same build).

    ``progress`` (see `fakebench.progress`) counts the outputs made and gets a note per generator skipped.
    """
    _check_options(options)
    check_executor(executor, workers)
    start_corpus_pool_server(executor)
    corpus = load_corpus(real)
    output = Path(output)
    manifest_sha = hashlib.sha256((corpus.folder / "manifest.parquet").read_bytes()).hexdigest()
    claim_output(output, {"kind": "build", "real": str(corpus.folder.resolve()), "real_manifest": manifest_sha,
                          **options.fingerprint()})
    return run_build(corpus, output, options, workers=workers, executor=executor, progress=progress,
                     ray_address=ray_address)


def _check_options(options: BuildOptions) -> None:
    if options.audio not in AUDIO_MODES:
        raise ConfigError(f"--audio must be one of {', '.join(AUDIO_MODES)}, got {options.audio!r}")
    if not isinstance(options.per_clip, int) or options.per_clip < 1:
        raise ConfigError(f"--per-clip must be a whole number >= 1, got {options.per_clip!r}")
    if options.seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {options.seed}")
    check_emotion(options.emotion)
    parse_generators(",".join(options.generators))


def check_emotion(emotion: str | None) -> None:
    """ConfigError unless `emotion` is None, "random" or one of `EMOTIONS`."""
    if emotion is not None and emotion not in ("random", *EMOTIONS):
        raise ConfigError(f"--emotion must be random or one of {', '.join(EMOTIONS)}, got {emotion!r}")


def run_build(corpus: Corpus, output: Path, options: BuildOptions, *, workers: int = 1, executor: str = "local",
              progress: Progress | None = None, ray_address: str | None = None) -> BuildResult:
    """Build into an already claimed OUTPUT folder."""
    real = corpus.manifest[corpus.manifest["label"] == "real"].copy()
    if real.empty:
        raise CorpusError(f"{corpus.folder} holds no real clips to make fakes from")
    if real["split"].isna().any():
        real["split"] = assign_splits(real["identity"], seed=options.seed)
    skipped = _unavailable_generators(options)
    for name, why in skipped.items():
        or_silent(progress).note(f"skipping generator {name}: {why}")
    generators = tuple(g for g in options.generators if g not in skipped)
    _remove_stale_temporaries(output / MEDIA)
    plugins = tuple(sorted({GENERATORS.get(g).__module__ for g in generators}))
    skipped_clips = sorted(fakes_skipped(real, options)) if generators else []
    skipped_fakes = {f"{clip_id}.{g}.{k}": fakes_skipped_reason() for clip_id in skipped_clips
                     for g in generators for k in range(options.per_clip)}
    if skipped_clips:
        or_silent(progress).note(f"no fakes of {len(skipped_clips)} visual-only clip(s) "
                                 f"({_few_ids(skipped_clips)}): {fakes_skipped_reason()}")
    total = len(real) * (1 + len(generators) * options.per_clip) - len(skipped_fakes)
    summary = run_tasks(make_clip_group, plan_tasks(corpus.folder, real, output, options, generators),
                        output / STATE, executor=executor, workers=workers, total=total,
                        description=f"building {output.name}", progress=progress, ray_address=ray_address,
                        plugin_modules=plugins, preload=corpus_worker_preload(generators))
    state = ResumeState(output / STATE)
    rows = list(state.results())
    failures = state.failures()
    problems = ([{"item": f"generator {n}", "error": why} for n, why in skipped.items()]
                + [{"item": k, "error": v} for k, v in failures.items()]
                + corpus.meta.get("problems", []))
    if rows:
        meta = {**corpus_meta_of(output), "complete": not failures and not skipped, "problems": problems,
                "skipped": [{"item": k, "reason": v} for k, v in sorted(skipped_fakes.items())],
                "built_from": str(corpus.folder.resolve())}
        write_corpus(output, make_manifest(rows), meta)
    return BuildResult(folder=output, clips=len(rows), summary=summary, skipped_generators=skipped,
                       skipped_fakes=skipped_fakes)


def _few_ids(ids: list[str], n: int = 3) -> str:
    return ", ".join(ids[:n]) + (f" and {len(ids) - n} more" if len(ids) > n else "")


def has_audio(row: dict[str, Any]) -> bool:
    """Whether a manifest row's clip has audio (a manifest older than the column: yes)."""
    value = row.get("has_audio", True)
    return True if _missing(value) else bool(value)


def fakes_skipped_reason() -> str:
    return (f"{NO_AUDIO}: with --audio own every generator is driven by the clip's own audio (use --audio "
            "other-same-identity or other to make them from another clip's)")


def fakes_skipped(real: pd.DataFrame, options: BuildOptions) -> dict[str, str]:
    """The real clips whose fakes are skipped, not made (visual-only clips with --audio own), with the reason."""
    if options.audio != "own":
        return {}
    return {row["clip_id"]: fakes_skipped_reason() for row in real.to_dict("records") if not has_audio(row)}


def corpus_meta_of(folder: Path) -> dict[str, Any]:
    from fakebench.corpus.manifest import read_meta

    meta = read_meta(folder)
    meta.pop("format", None)
    return meta


def _unavailable_generators(options: BuildOptions) -> dict[str, str]:
    """The chosen generators that cannot run (their weights are missing, say), with the reason."""
    reasons = {name: GENERATORS.unavailable_reason(name, **options.offered()) for name in options.generators}
    return {name: why for name, why in reasons.items() if why}


def _remove_stale_temporaries(media: Path) -> None:
    """Files a killed run was writing (atomic writes use hidden temporary names): never finished, so removed."""
    if media.is_dir():
        for path in media.rglob(".*"):
            if path.is_file():
                path.unlink(missing_ok=True)


def task_seed(seed: int, clip_id: str) -> int:
    """A per-clip seed that does not depend on the order clips are made in."""
    return int.from_bytes(hashlib.sha256(f"{seed}\x00{clip_id}".encode()).digest()[:4], "big") >> 1


def plan_tasks(real_folder: Path, real: pd.DataFrame, output: Path, options: BuildOptions,
               generators: tuple[str, ...]) -> Iterator[Task]:
    """The build's tasks, lazily: one per real clip, making the clip itself and then its fakes, generator by
    generator."""
    rows = {r["clip_id"]: _absolute(r, real_folder) for r in real.to_dict("records")}
    by_identity: dict[str, list[str]] = defaultdict(list)
    for clip_id, row in rows.items():
        by_identity[row["identity"]].append(clip_id)
    ids = sorted(rows)
    skipping = fakes_skipped(real, options)
    for clip_id in ids:
        row = rows[clip_id]
        why_not = skipping.get(clip_id) if generators else None
        emotions = options.emotion is not None
        jobs = [ClipJob(clip_id=clip_id, generator=None, source=row, audio=row,
                        seed=task_seed(options.seed, clip_id), output=str(output), fakes_skipped=why_not,
                        build_seed=options.seed, emotions=emotions)]
        for generator in generators if why_not is None else ():
            for k in range(options.per_clip):
                fake_id = f"{clip_id}.{generator}.{k}"
                seed = task_seed(options.seed, fake_id)
                audio_id, problem = choose_audio(clip_id, rows, by_identity, ids, options.audio, seed)
                emotion, intensity = emotion_of(generator, options, seed)
                jobs.append(ClipJob(clip_id=fake_id, generator=generator, source=row,
                                    audio=rows[audio_id] if audio_id else row, seed=seed, output=str(output),
                                    checkpoint=options.checkpoint, device=options.device, problem=problem,
                                    build_seed=options.seed, emotion=emotion, emotion_intensity=intensity,
                                    emotions=emotions))
        yield Task(clip_id, ClipGroup(source=row, jobs=tuple(jobs)), parts=tuple(j.clip_id for j in jobs))


EMOTION_INTENSITY = (0.5, 0.9)  # the range --emotion random draws each fake's intensity from


def emotion_of(generator: str, options: BuildOptions, seed: int) -> tuple[str | None, float | None]:
    """The emotion and its intensity of one fake (`seed`: the fake's) made by `generator`: (None, None) without
    --emotion or when the generator declares no `emotion` option. ``random`` draws the emotion uniformly over
    `EMOTIONS` and the intensity in `EMOTION_INTENSITY`; a named emotion has the intensity the generator declares
    by default (None when it declares none)."""
    declared = {o.name: o for o in GENERATORS.get(generator).options}
    if options.emotion is None or "emotion" not in declared:
        return None, None
    if options.emotion != "random":
        default = declared["intensity"].default if "intensity" in declared else None
        return options.emotion, None if default is None else float(default)
    rng = np.random.default_rng([zlib.crc32(b"emotion"), seed])
    emotion = EMOTIONS[int(rng.integers(len(EMOTIONS)))]
    intensity = round(float(rng.uniform(*EMOTION_INTENSITY)), 3) if "intensity" in declared else None
    return emotion, intensity


def _absolute(row: dict[str, Any], folder: Path) -> dict[str, Any]:
    out = {k: (None if _missing(v) else v) for k, v in row.items()}
    out["path"] = str((folder / row["path"]).resolve())
    if out.get("audio_path"):
        out["audio_path"] = str((folder / out["audio_path"]).resolve())
    return out


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def choose_audio(clip_id: str, rows: dict[str, dict], by_identity: dict[str, list[str]], ids: list[str],
                 mode: str, seed: int) -> tuple[str | None, str | None]:
    """The clip whose audio drives a fake of `clip_id`: (its id, None), or (None, why there is none). A visual-only
    clip has no audio to give."""
    if mode == "own":
        return clip_id, None
    identity = rows[clip_id]["identity"]
    if mode == "other-same-identity":
        candidates = [c for c in by_identity[identity] if c != clip_id and has_audio(rows[c])]
        why = f"identity {identity} has no other clip to take audio from (--audio other-same-identity)"
    else:
        candidates = [c for c in ids if rows[c]["identity"] != identity and has_audio(rows[c])]
        why = "no clip of another identity to take audio from (--audio other)"
    if not candidates:
        return None, why
    return candidates[int(np.random.default_rng(seed).integers(len(candidates)))], None


# ---------------------------------------------------------------------------------------------- one clip

class SourceClip:
    """A real clip's decoded, silence-trimmed frames and its identity frame, made on first use and shared by
    every output of the clip; an error doing so is kept and raised again for each output that needs them."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row
        self._made: dict[str, Any] = {}

    def _once(self, name: str, make):
        if name not in self._made:
            try:
                self._made[name] = (True, make())
            except Exception as e:
                self._made[name] = (False, e)
        ok, value = self._made[name]
        if not ok:
            raise value
        return value

    def trimmed(self) -> tuple[Clip, list[float]]:
        return self._once("trimmed", lambda: read_trimmed(self.row))

    def window(self, seed: int) -> tuple[Clip, int]:
        """The trimmed clip less a few frames at one end (`edge_cut`), and where the kept frames start."""
        return self._once("window", lambda: edge_cut(self.trimmed()[0], seed, self.row["clip_id"]))

    def identity_frame(self, seed: int) -> tuple[int, np.ndarray, float]:
        return self._once("identity_frame", lambda: choose_identity_frame(self.window(seed)[0]))


def make_clip_group(group: ClipGroup) -> Iterator[tuple[str, Any]]:
    """The outputs of one real clip, as (clip id, make) pairs for `run_tasks`; the clip is read once."""
    source = SourceClip(group.source)
    for job in group.jobs:
        yield job.clip_id, functools.partial(make_clip, job, source)


def make_clip(job: ClipJob, source_clip: SourceClip | None = None) -> dict[str, Any]:
    """Make one output clip (the real clip trimmed, or one fake), write it, and return its manifest row."""
    from fakebench.media import corpus_bitrate, file_sha256, write_clip

    if job.problem:
        raise CorpusError(job.problem)
    output = Path(job.output)
    source = job.source
    source_clip = source_clip or SourceClip(source)
    full, trim = source_clip.trimmed()
    real, start = source_clip.window(job.build_seed)
    folder = "real" if job.generator is None else job.generator
    relative = Path(MEDIA) / folder / source["identity"] / f"{job.clip_id}.mp4"
    target = output / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    truth_relative = None
    if job.generator is None:
        write_clip(target, real, encoder_threads=CORPUS_ENCODER_THREADS,
                   bitrate=corpus_bitrate(real.width, real.height, real.fps))
        clip = real
    else:
        audio = ((real.audio, real.sample_rate) if job.audio["clip_id"] == source["clip_id"]
                 else read_trimmed_audio(job.audio))
        made = run_generator(job, real, audio, functools.partial(source_clip.identity_frame, job.build_seed),
                             surround=(full, start))
        made.ground_truth.update({"source_clip": source["clip_id"], "audio_source": job.audio["clip_id"],
                                  "silence_trim_s": trim, "edge_cut_frames": full.n_frames - real.n_frames,
                                  "edge_cut_at": "start" if start else "end"})
        made.save(target, encoder_threads=CORPUS_ENCODER_THREADS,
                  bitrate=corpus_bitrate(made.clip.width, made.clip.height, made.clip.fps))
        clip = made.clip
        truth_relative = relative.with_suffix(".json").as_posix()
    return {
        "clip_id": job.clip_id, "path": relative.as_posix(), "label": "real" if job.generator is None else "fake",
        "generator": job.generator, "identity": source["identity"], "source_clip": source["clip_id"],
        "audio_source": job.audio["clip_id"] if clip.has_audio else None, "split": source["split"],
        "fps": clip.fps, "sample_rate": clip.sample_rate if clip.has_audio else 0, "n_frames": clip.n_frames,
        "duration_s": round(clip.duration_s, 4), "sha256": file_sha256(target), "ground_truth": truth_relative,
        "source": source.get("source"), "has_audio": clip.has_audio,
        **({"fakes_skipped": job.fakes_skipped} if job.fakes_skipped else {}),
        **(_emotion_columns(job, source) if job.emotions else {}),
    }


def _emotion_columns(job: ClipJob, source: dict[str, Any]) -> dict[str, Any]:
    """A fake's emotion; a real clip keeps the one its own manifest records (the demo's reference clips have one)."""
    if job.generator is None:
        return {"emotion": source.get("emotion"), "emotion_intensity": source.get("emotion_intensity")}
    return {"emotion": job.emotion, "emotion_intensity": job.emotion_intensity}


def read_trimmed(row: dict[str, Any]) -> tuple[Clip, list[float]]:
    """The clip of a manifest row (audio from its separate file when it has one), silence trimmed; a visual-only
    clip (``has_audio`` false) whole, as it is."""
    from fakebench.media import read_audio, read_clip

    clip = read_clip(row["path"])
    if row.get("audio_path"):
        clip = clip.with_audio(*read_audio(row["audio_path"]))
    if not has_audio(row) and not clip.has_audio_track:
        return clip, [0.0, round(clip.duration_s, 4)]
    if not clip.has_audio:
        raise AudioError(f"{row['path']} has no audio; a talking-face clip needs its speech")
    return trim_silence(clip)


def read_trimmed_audio(row: dict[str, Any]) -> tuple[np.ndarray, int]:
    """The audio of a manifest row cut exactly as `read_trimmed` cuts it, without decoding the video."""
    from fakebench.media import probe, read_audio

    audio, sample_rate = read_audio(row.get("audio_path") or row["path"])
    info = probe(row["path"])
    *_, a, b = speech_cut(audio, sample_rate, info.fps, info.n_frames_estimate)
    return audio[a:b], sample_rate


@functools.lru_cache(maxsize=8)
def _generator(name: str, options: tuple[tuple[str, Any], ...]):
    """One generator instance per process and options (a checkpoint is loaded once, not per clip)."""
    return GENERATORS.create(name, **dict(options))


EDGE_CUT_FRAMES = (3, 12)  # frames cut from one end of each real clip: a corpus desync fake's shift comes from them


def edge_cut(clip: Clip, seed: int, clip_id: str) -> tuple[Clip, int]:
    """The clip less K frames (3 to 12, at most a quarter of it) at its start or its end, drawn from the seed and
    the clip id; and the index of its first kept frame. Every output of a real clip (the real clip itself too)
    is cut the same way, so that a desync fake, which shifts the sound into the cut-away frames instead of
    padding it with silence, has the same length and the same kind of edges as the real clip."""
    if not clip.has_audio:
        return clip, 0
    rng = np.random.default_rng([zlib.crc32(clip_id.encode()), seed])
    k = min(int(rng.integers(*EDGE_CUT_FRAMES, endpoint=True)), clip.n_frames // 4)
    if k < 1:
        return clip, 0
    start = k if rng.random() < 0.5 else 0
    return clip.cut_frames(start, start + clip.n_frames - k), start


def run_generator(job: ClipJob, real: Clip, audio: tuple[np.ndarray, int], identity_frame=None,
                  surround: tuple[Clip, int] | None = None):
    """One fake of the real clip driven by `audio` (samples, sample rate), made by the generator's
    `fake_from_source` (a photo generator animates the clip's best frame: `identity_frame()` gives it; by
    default it is chosen from `real`)."""
    samples, sample_rate = audio
    plugin = GENERATORS.get(job.generator)
    options = plugin.source_options(real, job.offered())
    generator = _generator(job.generator, tuple(sorted(options.items())))
    own = job.audio["clip_id"] == job.source["clip_id"]
    extra = {"surround": surround} if surround is not None and getattr(plugin, "uses_surround", False) else {}
    return generator.fake_from_source(real, samples, sample_rate, seed=job.seed,
                                      audio_source=None if own else job.audio["clip_id"],
                                      identity_frame=identity_frame, **extra)
