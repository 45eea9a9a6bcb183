"""Lip sync on real speech: offsets, shifted copies, nulls and the reliability decision, per source group.

    python benchmarks/sync_real.py [--data DIR] [--syncnet-weights FILE] [--no-record]

DIR defaults to ../shared/data/real_av (real people speaking on camera with their own audio; evaluation only,
never committed). For every clip: the offset of the clip as it is and of copies with its audio shifted by
+-1, 2, 3, 5, 8 and 12 frames (truth: the shift, taking the clip as in sync); and three nulls that must not be
called reliable: the clip's mouth with other speakers' audio (one from each of three other groups), a still
photo of the clip's face with its speech (fakebench's static generator, re-analysed), and the clip with its
speech replaced by noise of the same level and spectrum band. And fakebench's own fakes: a warp clip of the
clip's best frame driven by its speech, with its audio shifted by 0, +-3 and +-8 frames.

av-cca is scored leave-one-speaker-out: every clip is measured by a model fitted on the other speaker groups
only (`fakebench.avsync.leave_one_group_out`), never by the shipped model, which was fitted on these clips. The
envelope estimator (the one before) runs on the same copies; SyncNet too when its weights are given.

A sanity table gives the other per-clip measurements on the same clips: face-track coverage, blinks per minute
and mean blink duration, and the identity distance between frames of the clip (dlib, 128-d).

Prints the tables and writes benchmarks/results/sync_real.json (unless --no-record).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results" / "sync_real.json"
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real_av"
SHIFTS = (0, 1, -1, 2, -2, 3, -3, 5, -5, 8, -8, 12, -12)
MAX_OFFSET = 15
SWAPS_PER_CLIP = 3
FAKE_SHIFTS = (0, 3, -3, 8, -8)


def source_group(name: str) -> str:
    if name.startswith("grid"):
        return "lab (GRID)"
    if name.startswith("pcavs"):
        return "interview crops"
    return "other"


def noise_like(audio: np.ndarray, sample_rate: int, seed: int) -> np.ndarray:
    """Steady noise in the speech band at the audio's level: sound without syllables."""
    from scipy import signal

    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(audio.size)
    sos = signal.butter(4, [100.0, min(4000.0, 0.45 * sample_rate)], btype="bandpass", fs=sample_rate, output="sos")
    noise = signal.sosfilt(sos, noise)
    rms = float(np.sqrt(np.mean(np.square(audio)))) or 0.05
    return (noise * rms / np.sqrt(np.mean(noise ** 2))).astype(np.float32)


def still_track(sample) -> tuple[Any, Any]:
    """A still photo of the clip's face (its best frame) speaking the clip's audio: generated, then analysed."""
    from fakebench.faces import analyze, choose_identity_frame
    from fakebench.generators.base import create

    clip = sample.clip
    _, photo, _ = choose_identity_frame(clip)
    fake = create("static", fps=clip.fps).generate(photo, clip.audio, clip.sample_rate).clip
    return fake, analyze(fake)


def sanity(sample) -> dict[str, Any]:
    from fakebench.faces import face_descriptors, face_frame_indices
    from fakebench.metrics.blink import blink_metrics

    clip, track = sample.clip, sample.track
    out: dict[str, Any] = {"face_coverage": round(track.face_frames / max(track.n_frames, 1), 3)}
    try:
        blinks = blink_metrics(clip, track)
        out["blinks_per_min"] = round(blinks["blink_rate_per_min"], 1)
        durations = blinks["blink_durations_ms"]
        out["blink_mean_ms"] = round(float(np.mean(durations)), 1) if durations else None
    except Exception as e:  # noqa: BLE001 - a sanity table reports what failed
        out["blink_error"] = str(e).splitlines()[0]
    idx = face_frame_indices(track, 8)
    if len(idx) >= 2:
        d = face_descriptors(clip.frames[idx], track.landmarks[idx])
        pair = [np.linalg.norm(d[i] - d[j]) for i in range(len(d)) for j in range(i + 1, len(d))]
        out["identity_distance_mean"] = round(float(np.mean(pair)), 3)
        out["identity_distance_max"] = round(float(np.max(pair)), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--syncnet-weights", type=Path, default=None)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    from fakebench.avsync import (
        ClipFeatures,
        estimate_offset,
        leave_one_group_out,
        mel_levels,
        shift_audio,
        speaker_group,
    )
    from fakebench.faces import analyze
    from fakebench.generators.base import create
    from fakebench.media import VIDEO_EXTENSIONS
    from fakebench.metrics.sync import sync_metrics, sync_reliability
    from fakebench.samples import Sample

    paths = sorted(p for p in args.data.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
    if not paths:
        raise SystemExit(f"no clips in {args.data}")
    load_before = os.getloadavg()[0]
    samples, skipped = [], {}
    for path in paths:
        sample = Sample.from_path(path)
        try:
            sample.track.require_face("lip sync", min_ratio=0.5)
            samples.append(sample)
        except Exception as e:  # noqa: BLE001
            skipped[path.name] = str(e).splitlines()[0]
    names = [Path(s.name).name for s in samples]
    groups = [speaker_group(n) for n in names]

    # av-cca features: the clip as it is, shifted copies, nulls (librosa imported first, outside the timing).
    mel_levels(np.zeros(16000, np.float32), 16000, 25, 25.0)
    features: dict[tuple[str, str], ClipFeatures] = {}
    seconds: dict[str, float] = {}
    for sample, name in zip(samples, names, strict=True):
        clip, track = sample.clip, sample.track
        t0 = time.perf_counter()
        features[(name, "+0")] = ClipFeatures.of(track, clip.audio, clip.sample_rate, clip.fps, name)
        seconds[name] = time.perf_counter() - t0
        for shift in SHIFTS[1:]:
            audio = shift_audio(clip.audio, clip.sample_rate, clip.fps, shift)
            features[(name, f"{shift:+d}")] = ClipFeatures.of(track, audio, clip.sample_rate, clip.fps, name)
        features[(name, "noise")] = ClipFeatures.of(track, noise_like(clip.audio, clip.sample_rate, 0),
                                                    clip.sample_rate, clip.fps, name)
        still_clip, still = still_track(sample)
        features[(name, "still")] = ClipFeatures.of(still, still_clip.audio, still_clip.sample_rate, still_clip.fps,
                                                    name)
        # fakebench's own fake of the clip: warp lips on the clip's best frame, driven by the clip's speech
        warp_clip = create("warp", max_side=512).generate(still_clip.frames[0], clip.audio, clip.sample_rate,
                                                          seed=0).clip
        warp_track = analyze(warp_clip)
        for shift in FAKE_SHIFTS:
            audio = shift_audio(warp_clip.audio, warp_clip.sample_rate, warp_clip.fps, shift)
            features[(name, f"warp{shift:+d}")] = ClipFeatures.of(warp_track, audio, warp_clip.sample_rate,
                                                                  warp_clip.fps, name)
    rng = np.random.default_rng(0)
    for i, name in enumerate(names):
        others = [j for j in range(len(names)) if groups[j] != groups[i]]
        for j in rng.choice(others, size=min(SWAPS_PER_CLIP, len(others)), replace=False):
            sample, clip = samples[i], samples[i].clip
            other = samples[j].clip
            audio = np.resize(shift_audio(other.audio, other.sample_rate, other.fps, 0),
                              int(round(clip.n_frames / clip.fps * other.sample_rate)))
            features[(name, f"swap:{names[j]}")] = ClipFeatures.of(sample.track, audio, other.sample_rate,
                                                                   clip.fps, name)

    base = [features[(n, "+0")] for n in names]
    rows: list[dict[str, Any]] = []

    def evaluate(model, clip_features) -> None:
        name = clip_features.name
        for (clip_name, variant), f in features.items():
            if clip_name != name:
                continue
            t0 = time.perf_counter()
            found = estimate_offset(model, f, MAX_OFFSET)
            spent = time.perf_counter() - t0
            reliable, reason = sync_reliability(f.mouth_motion, f.speech_modulation_db, found.evidence_z)
            kind = "true" if variant[0] in "+-" else "warp" if variant.startswith("warp") else variant.split(":")[0]
            shift = int(variant.removeprefix("warp")) if kind in ("true", "warp") else None
            rows.append({"clip": name, "group": source_group(name), "variant": variant, "kind": kind,
                         "shift": shift, "offset": found.offset,
                         "evidence_z": round(found.evidence_z, 3), "agreement": round(found.agreement, 4),
                         "mouth_motion": round(f.mouth_motion, 5),
                         "speech_modulation_db": round(f.speech_modulation_db, 3),
                         "reliable": reliable, "reason": reason, "estimate_s": spent})

    leave_one_group_out(base, groups, evaluate)
    for row in rows:
        if row["shift"] is not None:
            row["error"] = row["offset"] - row["shift"]

    # The estimator before (envelope), on the same shifted copies.
    before = []
    for sample, name in zip(samples, names, strict=True):
        clip = sample.clip
        for shift in SHIFTS:
            shifted = clip.with_audio(shift_audio(clip.audio, clip.sample_rate, clip.fps, shift), clip.sample_rate)
            r = sync_metrics(shifted, sample.track, method="envelope", max_offset=MAX_OFFSET)
            before.append({"clip": name, "group": source_group(name), "shift": shift,
                           "error": None if r["sync_offset_frames"] is None else r["sync_offset_frames"] - shift})
    syncnet = []
    if args.syncnet_weights is not None:
        for sample, name in zip(samples, names, strict=True):
            clip = sample.clip
            for shift in SHIFTS:
                shifted = clip.with_audio(shift_audio(clip.audio, clip.sample_rate, clip.fps, shift),
                                          clip.sample_rate)
                r = sync_metrics(shifted, sample.track, method="syncnet", syncnet_weights=args.syncnet_weights,
                                 max_offset=MAX_OFFSET)
                syncnet.append({"clip": name, "group": source_group(name), "shift": shift,
                                "error": r["sync_offset_frames"] - shift, "reliable": r["sync_reliable"]})

    summary = summarise(rows, before, syncnet, seconds, samples, names)
    sanity_rows = {name: sanity(sample) for sample, name in zip(samples, names, strict=True)}
    print_tables(summary, sanity_rows, skipped)
    if not args.no_record:
        record = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                  "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)], "data": str(args.data),
                  "clips": len(samples), "skipped": skipped, "shifts": list(SHIFTS), "max_offset": MAX_OFFSET,
                  "summary": summary, "sanity": sanity_rows,
                  "rows": [{k: v for k, v in r.items() if k != "estimate_s"} for r in rows]}
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(record, indent=1) + "\n")
        print(f"recorded in {RESULTS}")


def summarise(rows, before, syncnet, seconds, samples, names) -> dict[str, Any]:
    by_group: dict[str, dict[str, Any]] = defaultdict(dict)
    for group in sorted({r["group"] for r in rows}) + ["all"]:
        mine = [r for r in rows if group in ("all", r["group"])]
        true = [r for r in mine if r["kind"] == "true"]
        as_is = [r for r in true if r["shift"] == 0]
        shifted = [r for r in true if r["shift"] != 0]
        nulls = {k: [r for r in mine if r["kind"] == k] for k in ("swap", "still", "noise")}
        fakes = [r for r in mine if r["kind"] == "warp"]
        old = [r for r in before if group in ("all", r["group"]) and r["error"] is not None]
        clips = {r["clip"] for r in as_is}
        per_clip_s = [seconds[n] / (samples[names.index(n)].clip.duration_s / 10.0) for n in clips]
        by_group[group] = {
            "clips": len(clips),
            "within_1_as_is": _share(abs(r["error"]) <= 1 for r in as_is),
            "within_1_shifted": _share(abs(r["error"]) <= 1 for r in shifted),
            "mae_frames": round(float(np.mean([abs(r["error"]) for r in true])), 2),
            "reliable_true": _share(r["reliable"] for r in true),
            "reliable_and_right_true": _share(r["reliable"] and abs(r["error"]) <= 1 for r in true),
            **{f"false_reliable_{k}": _share(r["reliable"] for r in v) for k, v in nulls.items()},
            "false_reliable_nulls": _share(r["reliable"] for v in nulls.values() for r in v),
            "warp_fakes_within_1": _share(abs(r["error"]) <= 1 for r in fakes),
            "warp_fakes_reliable": _share(r["reliable"] for r in fakes),
            "envelope_within_1_as_is": _share(abs(r["error"]) <= 1 for r in old if r["shift"] == 0),
            "envelope_within_1_shifted": _share(abs(r["error"]) <= 1 for r in old if r["shift"] != 0),
            "sync_seconds_per_10s": round(float(np.mean(per_clip_s)), 3) if per_clip_s else None,
        }
        if syncnet:
            net = [r for r in syncnet if group in ("all", r["group"])]
            by_group[group]["syncnet_within_1_as_is"] = _share(abs(r["error"]) <= 1 for r in net if r["shift"] == 0)
            by_group[group]["syncnet_within_1_shifted"] = _share(abs(r["error"]) <= 1 for r in net if r["shift"])
    true_z = [r["evidence_z"] for r in rows if r["kind"] == "true"]
    null_z = [r["evidence_z"] for r in rows if r["kind"] == "swap"]
    # The threshold the nulls allow: the smallest evidence z at which at most 5 % of swapped-audio pairs pass.
    candidates = sorted(set(null_z))
    allowed = next(z for z in candidates if np.mean(np.asarray(null_z) >= z) <= 0.05)
    by_group["threshold_for_5pct_swapped"] = round(float(allowed), 2)
    by_group["evidence_z_percentiles"] = {
        "true_p5_p10_p50": [round(float(np.percentile(true_z, q)), 2) for q in (5, 10, 50)],
        "swap_p50_p95_p99": [round(float(np.percentile(null_z, q)), 2) for q in (50, 95, 99)],
    }
    relative = defaultdict(list)
    for r in rows:
        if r["kind"] == "true":
            relative[r["clip"]].append(r)
    tracking = []
    for clip_rows in relative.values():
        zero = next(r["offset"] for r in clip_rows if r["shift"] == 0)
        tracking += [abs(r["offset"] - zero - r["shift"]) <= 1 for r in clip_rows if r["shift"] != 0]
    by_group["shift_tracking_within_1"] = _share(tracking)  # estimate(shifted) - estimate(as is) vs the shift
    return dict(by_group)


def _share(values) -> float | None:
    values = list(values)
    return round(float(np.mean(values)), 3) if values else None


def print_tables(summary: dict[str, Any], sanity_rows: dict[str, dict], skipped: dict[str, str]) -> None:
    columns = [("clips", "clips"), ("within_1_as_is", "+-1 as is"), ("within_1_shifted", "+-1 shifted"),
               ("mae_frames", "MAE"), ("reliable_true", "reliable (true)"),
               ("false_reliable_swap", "false rel. swap"), ("false_reliable_still", "still"),
               ("false_reliable_noise", "noise"), ("warp_fakes_within_1", "warp fakes +-1"),
               ("warp_fakes_reliable", "warp reliable"), ("envelope_within_1_as_is", "before: as is"),
               ("envelope_within_1_shifted", "before: shifted"), ("sync_seconds_per_10s", "s per 10 s")]
    print("\nav-cca (leave-one-speaker-out) on real clips; before = envelope-xcorr-v1")
    print(f"{'group':18s}" + "".join(f"{title:>17s}" for _, title in columns))
    for group, values in summary.items():
        if not isinstance(values, dict) or "clips" not in values:
            continue
        print(f"{group:18s}" + "".join(f"{_fmt(values.get(key)):>17s}" for key, _ in columns))
    print(f"evidence z: {summary['evidence_z_percentiles']}; the smallest threshold passing at most 5 % of "
          f"swapped-audio pairs: {summary['threshold_for_5pct_swapped']}; shift tracking relative to the clip's own "
          f"estimate: {summary['shift_tracking_within_1']}")
    print("\nsanity: coverage, blinks, identity")
    print(f"{'clip':40s}{'coverage':>10s}{'blinks/min':>12s}{'blink ms':>10s}{'id dist':>10s}")
    for name, values in sanity_rows.items():
        print(f"{name[:39]:40s}{_fmt(values.get('face_coverage')):>10s}{_fmt(values.get('blinks_per_min')):>12s}"
              f"{_fmt(values.get('blink_mean_ms')):>10s}{_fmt(values.get('identity_distance_mean')):>10s}")
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


if __name__ == "__main__":
    main()
