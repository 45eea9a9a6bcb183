"""The key numbers of a run, as plain JSON: what a committed reference report (`reports/`) is checked against when
its config is run again (same seed, same numbers, within what another CPU's kernels may change)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from fakebench.tables import read_table

EVALUATION_KEYS = ("auc", "auc_ci_low", "auc_ci_high", "eer", "ap", "tpr_at_1fpr", "n_real", "n_fake",
                   "n_identities")
METRIC_KEYS = ("sync_offset_frames", "sync_confidence", "blink_rate_per_min", "ear_mean", "cpbd", "psnr", "ssim",
               "expression_not_neutral", "au04", "au12", "au26")
PER_EMOTION_KEYS = ("auc", "n_real", "n_fake", "mean_intensity")


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else round(v, 6)


def key_numbers(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Evaluation rows (detector/generator/perturbation: AUC with its interval, EER, AP, TPR@1%FPR, counts), the
    per-emotion rows when the run has them (detector/emotion/perturbation: AUC, counts, mean intensity), the
    cross-generator AUCs, the set metrics, each metric's mean per class (with the expression metric: the share of
    clips whose measured emotion is not neutral, and AU4, AU12 and AU26), and the shortcut verdict."""
    import pandas as pd

    run = Path(run_dir)
    out: dict[str, Any] = {}
    evaluation = pd.DataFrame(read_table(run / "evaluation" / "evaluation.parquet")[0])
    out["evaluation"] = {f"{r['detector']}/{r['generator']}/{r['perturbation']}":
                         {k: _number(r.get(k)) for k in EVALUATION_KEYS} for r in evaluation.to_dict("records")}
    per_emotion = run / "evaluation" / "per_emotion.parquet"
    if per_emotion.is_file():
        out["per_emotion"] = {f"{r['detector']}/{r['emotion']}/{r['perturbation']}":
                              {k: _number(r.get(k)) for k in PER_EMOTION_KEYS} for r in read_table(per_emotion)[0]}
    cross = run / "evaluation" / "cross_generator.parquet"
    if cross.is_file():
        out["cross_generator"] = {f"{r['detector']}/{r['trained_on']}->{r['tested_on']}": _number(r["auc"])
                                  for r in read_table(cross)[0]}
    out["compare"] = {f"{r['generator']}/{r['metric']}": _number(r.get("value"))
                      for r in read_table(run / "compare.parquet")[0]}
    metrics = pd.DataFrame(read_table(run / "metrics.parquet")[0])
    metrics["class"] = metrics["generator"].where(metrics["generator"].astype(bool), "real")
    if "expression_emotion" in metrics:
        measured = metrics["expression_emotion"].where(metrics["expression_emotion"].map(lambda v: isinstance(v, str)))
        metrics["expression_not_neutral"] = (measured != "neutral").where(measured.notna()).astype(float)
    out["metrics_mean"] = {f"{cls}/{key}": _number(pd.to_numeric(part[key], errors="coerce").mean())
                           for cls, part in metrics.groupby("class") for key in METRIC_KEYS if key in part}
    out["shortcut"] = json.loads((run / "evaluation" / "shortcut.json").read_text())
    return out
