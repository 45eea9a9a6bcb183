"""What the report's sections share: labels, groups (real and each generator), "not run" notes, and the metrics table
with the manifest's columns filled in."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from fakebench.detectors.base import corpus_checks
from fakebench.report.load import Run
from fakebench.report.model import Figure, Item, Text, slug
from fakebench.report.numbers import fmt_ci, number

NOT_RUN = "not run"
# Per-clip metric keys (as `fakebench measure` writes them), in the order the report shows them, with labels.
METRIC_LABELS = {
    "sync_offset_frames": "sync offset (frames)",
    "sync_confidence": "sync confidence",
    "lse_d": "LSE-D",
    "lse_c": "LSE-C",
    "blink_count": "blinks",
    "blink_rate_per_min": "blink rate (/min)",
    "blink_duration_ms": "blink duration (ms)",
    "ibi_mean_s": "inter-blink interval (s)",
    "ear_mean": "eye aspect ratio",
    "identity_distance": "identity distance",
    "identity_cosine": "identity cosine",
    "facenet_cosine": "FaceNet cosine",
    "cpbd": "CPBD (sharpness)",
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "lmd_mouth": "LMD mouth",
    "lmd_face": "LMD face",
    "duration_s": "clip duration (s)",
}


def missing(run: Run, *files: str, what: str = "") -> list[Item]:
    """"not run" and why: each table is not in the run folder, or holds no rows."""
    why = [f"{f} holds no rows" if f in run.empty else f"{f} is not in this run folder" for f in files]
    return [Text(f"{what + ': ' if what else ''}{NOT_RUN} ({'; '.join(why)}).", "missing")]


def label_name(value: Any) -> str:
    """"real" or "fake" from the labels tables hold: "real"/"fake" strings or 0/1 (scores.parquet)."""
    text = str(value).strip().lower()
    return "real" if text in ("real", "0", "false", "0.0") else "fake" if text in ("fake", "1", "true", "1.0") \
        else text


def group_of(label: Any, generator: Any) -> str:
    if label_name(label) == "real":
        return "real"
    g = "" if generator is None or (isinstance(generator, float) and generator != generator) else str(generator)
    return g or "unknown"


def groups_of(frame: pd.DataFrame) -> pd.Series:
    generator = frame["generator"] if "generator" in frame.columns else pd.Series([None] * len(frame),
                                                                                 index=frame.index)
    return pd.Series([group_of(lab, gen) for lab, gen in zip(frame["label"], generator, strict=True)],
                     index=frame.index)


def group_order(run: Run, *names: Any) -> list[str]:
    """Group order: real, then the run's generators as run.json lists them, then any others sorted."""
    listed = [str(g) for g in ((run.info.get("corpus") or {}).get("generators") or [])]
    seen = {str(n) for many in names for n in many}
    order = ["real"] if "real" in seen else []
    order += [g for g in listed if g in seen and g != "real"]
    order += sorted(g for g in seen if g not in order and g not in ("real", "all"))
    return order


def ci_cell(row: dict, key: str, decimals: int | None = 2) -> str:
    return fmt_ci(row.get(key), row.get(f"{key}_ci_low"), row.get(f"{key}_ci_high"), decimals)


def figure_item(run: Run, name: str, png: bytes, caption: str) -> Figure:
    return Figure(file=f"{slug(run.name)}-{name}.png", png=png, caption=caption, alt=f"{run.name}: {caption}")


def is_detector(names: pd.Series) -> pd.Series:
    """True where a table's detector column names a detector, not a corpus check (the metadata shortcut probe,
    whose verdict has its own section)."""
    return ~names.astype(str).isin(corpus_checks())


def detectors_of(frame: pd.DataFrame) -> list[str]:
    return sorted(frame.loc[is_detector(frame["detector"]), "detector"].astype(str).unique())


def labels01(labels: pd.Series) -> np.ndarray:
    return np.array([1 if label_name(v) == "fake" else 0 for v in labels], dtype=np.int64)


def generator_mask(frame: pd.DataFrame, generator: str) -> pd.Series:
    """Rows of that generator's fakes and all real clips ("all": every row)."""
    if generator == "all":
        return pd.Series(True, index=frame.index)
    return (groups_of(frame) == generator) | (frame["label"].map(label_name) == "real")


def metric_frame(run: Run) -> pd.DataFrame | None:
    """metrics.parquet with identity, generator, duration_s and emotion (the one a fake was made with) filled in from
    the manifest where it lacks them, and blink_duration_ms (the mean of a clip's blink durations)."""
    if run.metrics is None:
        return None
    frame = run.metrics.copy()
    if run.manifest is not None and "clip_id" in run.manifest.columns:
        extra = [c for c in ("identity", "generator", "duration_s", "split", "emotion") if c in run.manifest.columns
                 and (c not in frame.columns or frame[c].isna().all())]
        if extra:
            frame = frame.drop(columns=[c for c in extra if c in frame.columns])
            frame = frame.merge(run.manifest[["clip_id", *extra]], on="clip_id", how="left")
    if "blink_durations_ms" in frame.columns:
        frame["blink_duration_ms"] = [mean_of_list(v) for v in frame["blink_durations_ms"]]
    frame["group"] = groups_of(frame)
    return frame


def mean_of_list(value: Any) -> float | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, list | tuple | np.ndarray):
        vals = [number(v) for v in value]
        vals = [v for v in vals if v is not None]
        return float(np.mean(vals)) if vals else None
    return number(value)


def present(frame: pd.DataFrame, column: str) -> bool:
    return column in frame.columns and any(number(v) is not None for v in frame[column])


def evidence_list(value: Any) -> list[str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value] if value else []
    if isinstance(value, list | tuple | np.ndarray):
        return [str(v) for v in value if str(v)]
    return [] if value is None else [str(value)]
