"""A small run folder as `fakebench bench` writes it, made from plausible numbers, for the report tests.

`make_run(folder)` writes run.json, corpus/manifest.parquet with tiny mp4 clips (gradients, no audio; a colour per
generator), metrics.parquet, compare.parquet and evaluation/{scores,evaluation,cross_generator,evidence}.parquet
and evaluation/shortcut.json. The evaluation rows are computed from the scores with `fakebench.evaluation`, as
bench does, so the report's numbers can be checked against them. ``tables`` picks which optional files to write.
``emotions=True`` makes the static fakes with emotions (`EMOTIONS_ASKED` in turn, recorded in the manifest), adds the
expression metric's keys to metrics.parquet (`expression_of`) and writes evaluation/per_emotion.parquet.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

GENERATORS = ("desync", "static")
DETECTORS = ("blink", "sync")
IDENTITIES = tuple(f"person{i}" for i in range(6))
CLIPS_PER_IDENTITY = 2
PERTURBATIONS = ("blur:2", "blur:4")
ALL_TABLES = frozenset({"media", "metrics", "compare", "scores", "evaluation", "shortcut", "cross", "evidence"})
FPS = 25.0
N_FRAMES = 8
EMOTIONS_ASKED = ("happy", "sad", "neutral")  # the static fakes' emotions, in turn


def _split(identity: str) -> str:
    i = IDENTITIES.index(identity)
    return "test" if i >= 4 else "val" if i == 3 else "train"


def manifest_rows(emotions: bool = False) -> list[dict]:
    rows = []
    n_static = 0
    for ident in IDENTITIES:
        for k in range(CLIPS_PER_IDENTITY):
            real_id = f"{ident}-{k}"
            base = {"identity": ident, "split": _split(ident), "fps": FPS, "sample_rate": 16000,
                    "n_frames": N_FRAMES, "sha256": "0" * 64, "audio_source": real_id, "source": "synthetic-reference",
                    "has_audio": False}
            rows.append({**base, "clip_id": real_id, "path": f"media/real/{real_id}.mp4", "label": "real",
                         "generator": None, "source_clip": real_id, "duration_s": 2.0 + 0.1 * k,
                         "ground_truth": ""})
            for g in GENERATORS:
                clip_id = f"{real_id}.{g}.0"
                rows.append({**base, "clip_id": clip_id, "path": f"media/{g}/{clip_id}.mp4", "label": "fake",
                             "generator": g, "source_clip": real_id, "ground_truth": "",
                             "duration_s": (1.8 if g == "desync" else 2.0) + 0.1 * k})
                if emotions:
                    asked = EMOTIONS_ASKED[n_static % len(EMOTIONS_ASKED)] if g == "static" else None
                    n_static += g == "static"
                    rows[-1] |= {"emotion": asked, "emotion_intensity": 0.7 if asked else None}
    if emotions:
        for r in rows:
            r.setdefault("emotion", None)
            r.setdefault("emotion_intensity", None)
    return rows


def expression_of(row: dict) -> dict:
    """The expression metric's keys for a manifest row: real clips read neutral but person0's first clip (happy);
    a fake reads as asked, but sad (which reads neutral); AU12 0.7 where it reads happy (else 0.05), AU4 0.3 and
    AU15 0.25 where sadness was asked, AU26 0.5 everywhere, the other AUs 0."""
    asked = row.get("emotion")
    if row["label"] == "real":
        measured = "happy" if row["clip_id"] == "person0-0" else "neutral"
    else:
        measured = "neutral" if asked in (None, "sad") else asked
    aus = dict.fromkeys((1, 2, 4, 5, 6, 7, 9, 10, 12, 15, 20, 23, 26), 0.0)
    aus |= {12: 0.7 if measured == "happy" else 0.05, 26: 0.5}
    if asked == "sad":
        aus |= {4: 0.3, 15: 0.25}
    return {"expression_emotion": measured, "expression_confidence": 0.9,
            **{f"au{au:02d}": v for au, v in aus.items()}}


def _frames(group: str, seed: int) -> np.ndarray:
    tint = {"real": (200, 160, 120), "desync": (90, 140, 220), "static": (120, 200, 110)}[group]
    y, x = np.mgrid[0:48, 0:48].astype(np.float64)
    frames = np.zeros((N_FRAMES, 48, 48, 3), np.uint8)
    for t in range(N_FRAMES):
        ring = 60 * np.exp(-((x - 24) ** 2 + (y - 24 - t) ** 2) / 120.0)
        frames[t] = np.clip(np.dstack([tint[0] + ring - x, tint[1] + ring, tint[2] + y + seed]), 0, 255)
    return frames


def _metrics(rows: list[dict], rng: np.random.Generator, emotions: bool = False) -> list[dict]:
    out = []
    for r in rows:
        g = r["generator"] or "real"
        fake = g != "real"
        blinks = 0 if g == "static" else int(rng.integers(1, 4))
        out.append({
            "clip_id": r["clip_id"], "label": r["label"], "generator": r["generator"], "identity": r["identity"],
            "split": r["split"],
            "sync_offset_frames": int(rng.choice([-6, -5, 5, 6])) if g == "desync" else int(rng.integers(-1, 2)),
            "sync_confidence": float(rng.normal(3.0 if g == "desync" else 6.0, 0.6)),
            "sync_reliable": bool(g != "static"),
            "blink_count": blinks, "blink_rate_per_min": 0.0 if not blinks else float(rng.normal(17.0, 4.0)),
            "blink_durations_ms": [float(rng.normal(180, 25)) for _ in range(blinks)],
            "ibi_mean_s": float(rng.normal(3.5, 0.5)) if blinks > 1 else None,
            "ear_mean": float(rng.normal(0.29, 0.01)),
            "cpbd": float(rng.normal(0.55 if fake else 0.62, 0.03)),
            "psnr": float(rng.normal(31.0, 1.5)) if fake else None,
            "ssim": float(rng.normal(0.91, 0.02)) if fake else None,
            "identity_distance": float(rng.normal(0.32, 0.04)) if fake else None,
            **(expression_of(r) if emotions else {}),
        })
    return out


def _scores(rows: list[dict], rng: np.random.Generator) -> list[dict]:
    out = []
    strength = {"blink": {"desync": 0.4, "static": 2.5}, "sync": {"desync": 2.2, "static": 0.8}}
    for r in rows:
        g = r["generator"] or ""
        for det in (*DETECTORS, "shortcut"):
            for pert in ("none", *(PERTURBATIONS if det != "shortcut" else ())):
                damp = 1.0 if pert == "none" else 1.0 / (1 + int(pert.split(":")[1]) / 2)
                mu = (strength.get(det, {}).get(g, 1.5) if g else 0.0) * damp
                p = float(1 / (1 + np.exp(-(rng.normal(mu, 1.0) - 1.0))))
                out.append({"clip_id": r["clip_id"], "detector": det, "label": r["label"], "score": p,
                            "identity": r["identity"], "generator": g, "perturbation": pert, "split": r["split"]})
    return out


def make_run(folder: Path, *, tables: frozenset[str] | set[str] = ALL_TABLES, synthetic: bool = True,
             seed: int = 0, name: str | None = None, emotions: bool = False) -> Path:
    import pandas as pd

    from fakebench.corpus.manifest import MANIFEST, make_manifest
    from fakebench.evaluation import ScoreWriter, per_emotion, per_generator
    from fakebench.media import Clip, write_clip
    from fakebench.tables import Provenance, read_table, write_table

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = manifest_rows(emotions)
    corpus = folder / "corpus"
    corpus.mkdir(exist_ok=True)
    make_manifest(rows).to_parquet(corpus / MANIFEST, index=False)
    if "media" in tables:
        for i, r in enumerate(rows):
            frames = _frames(r["generator"] or "real", i % 7)
            write_clip(corpus / r["path"], Clip(frames=frames, fps=FPS, has_audio_track=False), preset="ultrafast")
    ev = folder / "evaluation"
    ev.mkdir(exist_ok=True)
    config = {"corpus": "demo", "generators": list(GENERATORS), "detectors": list(DETECTORS),
              "perturbations": list(PERTURBATIONS), "metrics": ["sync", "blink", "quality"], "n_boot": 200}
    if "metrics" in tables:
        write_table(folder / "metrics.parquet", _metrics(rows, rng, emotions),
                    Provenance.make("metrics", config=config))
    if "compare" in tables:
        compare = []
        for g in GENERATORS:
            value = 14.2 if g == "desync" else 31.7
            compare.append({"generator": g, "metric": "fd_dlib", "value": value, "ci_low": value * 0.8,
                            "ci_high": value * 1.2, "note": "substitute for FID: dlib descriptors"})
            compare.append({"generator": g, "metric": "kid", "value": 0.012 if g == "desync" else 0.034,
                            "ci_low": None, "ci_high": None, "note": ""})
        write_table(folder / "compare.parquet", compare, Provenance.make("compare", config=config))
    shortcut = {"ran": True, "auc": 0.91, "auc_ci_low": 0.84, "auc_ci_high": 0.97, "found": True,
                "carrier": "duration_s", "carrier_auc": 0.88}
    if "scores" in tables or "evaluation" in tables:
        scores_path = ev / "scores.parquet"
        with ScoreWriter(scores_path, Provenance.make("scores", config=config)) as writer:
            writer.write_many(_scores(rows, rng))
        scores = pd.DataFrame(read_table(scores_path)[0])
        if "evaluation" in tables:
            out = _per_detector(scores, per_generator, seed)
            for r in out:
                r["notes"] = "; ".join(r["notes"]) if isinstance(r["notes"], list) else (r["notes"] or "")
            write_table(ev / "evaluation.parquet", out,
                        Provenance.make("evaluation", config={**config, "shortcut": shortcut}))
            if emotions:  # as fakebench.detection does: the manifest's emotion beside each score
                asked = {r["clip_id"]: (r["emotion"], r["emotion_intensity"]) for r in rows}
                scores["emotion"] = [asked[c][0] for c in scores["clip_id"]]
                scores["emotion_intensity"] = [asked[c][1] for c in scores["clip_id"]]
                by_emotion = _per_detector(scores, per_emotion, seed)
                for r in by_emotion:
                    r["notes"] = "; ".join(r["notes"])
                write_table(ev / "per_emotion.parquet", by_emotion, Provenance.make("per_emotion", config=config))
        if "scores" not in tables:
            scores_path.unlink()
    if "shortcut" in tables:
        (ev / "shortcut.json").write_text(json.dumps(shortcut))
    if "cross" in tables:
        cross = []
        for det in DETECTORS:
            for trained in (*GENERATORS, "all"):
                for tested in (*GENERATORS, "all"):
                    auc = 0.95 if trained in (tested, "all") else 0.62
                    cross.append({"detector": det, "trained_on": trained, "tested_on": tested, "auc": auc,
                                  "auc_ci_low": auc - 0.08, "auc_ci_high": min(1.0, auc + 0.05), "n_real": 4,
                                  "n_fake": 4 if tested != "all" else 8})
        write_table(ev / "cross_generator.parquet", cross, Provenance.make("cross_generator", config=config))
    if "evidence" in tables:
        evidence = [{"clip_id": "person4-0.desync.0", "label": "fake", "generator": "desync", "detector": "blink",
                     "p_fake": 0.08, "evidence": json.dumps(["blink rate 17/min is human-like",
                                                             "no frozen frames"]), "frames": json.dumps([3])},
                    {"clip_id": "person5-1", "label": "real", "generator": "", "detector": "sync",
                     "p_fake": 0.93, "evidence": json.dumps(["audio leads the lips by 2 frames"]),
                     "frames": json.dumps([])}]
        write_table(ev / "evidence.parquet", evidence, Provenance.make("evidence", config=config))
    info = {
        "name": name or folder.name, "fakebench_version": "0.1.0", "config": config,
        "config_hash": "ab" * 32, "seed": seed, "versions": {"numpy": np.__version__, "pandas": pd.__version__},
        "weights": {"syncnet_v2": {"path": None, "sha256": None, "status": "missing",
                                   "note": "LSE-D/LSE-C not computed"},
                    "dlib_face_recognition": {"path": "/models/dlib_face_recognition_resnet_model_v1.dat",
                                              "sha256": "cd" * 32, "status": "found", "note": ""},
                    "inception_fid": {"path": None, "sha256": None, "status": "substitute",
                                      "note": "fd_dlib in its place"}},
        "substitutes": ["FID uses fd_dlib: Inception weights not found"],
        "synthetic_reference": synthetic,
        "corpus": {"path": "corpus", "n_clips": len(rows), "n_identities": len(IDENTITIES),
                   "generators": list(GENERATORS)},
        "stages": {"corpus": {"done": True, "seconds": 12.5}, "measure": {"done": "metrics" in tables,
                                                                           "seconds": 40.1},
                   "evaluate": {"done": "evaluation" in tables, "seconds": 8.25}},
        "started": "2025-01-01T10:00:00Z", "finished": "2025-01-01T10:01:01Z",
    }
    (folder / "run.json").write_text(json.dumps(info, indent=1))
    return folder


def _per_detector(scores, table_of, seed: int) -> list[dict]:
    """``table_of`` (per_generator or per_emotion) of each detector x perturbation's scores, as fakebench.detection
    writes them: one record per row, led by the detector and the perturbation."""
    out = []
    for (det, pert), part in scores.groupby(["detector", "perturbation"], sort=True):
        table = table_of(part, n_boot=200, seed=seed)
        table.insert(0, "perturbation", pert)
        table.insert(0, "detector", det)
        out += table.to_dict("records")
    return out
