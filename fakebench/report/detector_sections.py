"""Sections 4-7: the detectors on clean clips (with ROC curves), across generators, under perturbations, and
their calibration."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fakebench.report import figures
from fakebench.report.common import (
    NOT_RUN,
    ci_cell,
    detectors_of,
    figure_item,
    generator_mask,
    group_order,
    is_detector,
    labels01,
    missing,
)
from fakebench.report.load import CROSS, EVALUATION, SCORES, Run
from fakebench.report.model import Item, Table, Text, slug
from fakebench.report.numbers import N_BOOT, fmt_fixed, number

# ------------------------------------------------------------------------------------------- 4. detectors


def _clean(run: Run) -> pd.DataFrame | None:
    if run.evaluation is None or not len(run.evaluation):
        return None
    ev = run.evaluation
    clean = ev[(ev["perturbation"].astype(str) == "none") & is_detector(ev["detector"])]
    return clean if len(clean) else None


def _clean_scores(run: Run) -> pd.DataFrame | None:
    if run.scores is None or not len(run.scores):
        return None
    s = run.scores
    pert = s["perturbation"].astype(str) if "perturbation" in s.columns else pd.Series("none", index=s.index)
    clean = s[(pert == "none") & is_detector(s["detector"])]
    return clean if len(clean) else None


def _no_clean(run: Run, file: str, what: str = "") -> list[Item]:
    """Why a table gives no detector rows on clean clips: it is absent or empty, or it holds none of them."""
    if getattr(run, "scores" if file == SCORES else "evaluation") is None:
        return missing(run, file, what=what)
    return [Text(f"{what + ': ' if what else ''}{NOT_RUN} ({file} has no rows of a detector on clean clips).",
                 "missing")]


def per_emotion_table(run: Run) -> list[Item]:
    """Detectors by the emotion the fakes were made with (evaluation/per_emotion.parquet, clean clips): nothing when
    the run has no such table (its fakes were made without emotions)."""
    table = run.per_emotion
    if table is None or not len(table):
        return []
    clean = table[(table["perturbation"].astype(str) == "none") & is_detector(table["detector"])]
    if not len(clean):
        return []
    emotions = list(dict.fromkeys(clean["emotion"].astype(str)))  # as evaluation wrote them: neutral, happy, ...
    rows, seen = [], {}
    for d in detectors_of(clean):
        part = clean[clean["detector"].astype(str) == d]
        for e in emotions:
            hit = part[part["emotion"].astype(str) == e]
            if not len(hit):
                continue
            r = hit.iloc[0].to_dict()
            rows.append([d, e, ci_cell(r, "auc"), fmt_fixed(r.get("eer")), fmt_fixed(r.get("mean_intensity")),
                         f"{_int(r.get('n_real'))} / {_int(r.get('n_fake'))}"])
            for note in _notes(r.get("notes")):
                seen[note] = None
    notes = ["Each emotion's fakes (as the corpus manifest records the emotion they were made with) against all real "
             "test clips; AUC [95 % CI] with the same bootstrap over identities as the table above "
             "(evaluation/per_emotion.parquet). \"not set\": fakes of generators without an emotion option. A "
             "detector whose AUC falls for one emotion is thrown by that expression.",
             *(f"Evaluation note: {n}." for n in seen)]
    return [Table("per_emotion", ["detector", "emotion of the fakes", "AUC", "EER", "mean intensity", "real / fake"],
                  rows, caption="Detectors by the fakes' emotion: does a detector still work when the fake smiles?",
                  numeric=[False, False, True, True, True, True], notes=notes)]


def _extra_intervals(run: Run, scores: pd.DataFrame | None, detector: str, generator: str) -> dict[str, Any]:
    """EER, AP and TPR@1%/5%FPR intervals from scores.parquet (bootstrap over identities, as evaluation's)."""
    from fakebench.evaluation import bootstrap_intervals

    if scores is None:
        return {}
    part = scores[scores["detector"].astype(str) == detector]
    part = part[generator_mask(part, generator)]
    y = labels01(part["label"])
    if len(np.unique(y)) < 2:
        return {}
    ids = part["identity"].astype(str).to_numpy() if "identity" in part.columns else None
    intervals, _ = bootstrap_intervals(y, part["score"].to_numpy(dtype=float), ids, n_boot=N_BOOT, seed=run.seed)
    out = {}
    for k, ci in intervals.items():
        if k != "auc" and ci is not None:
            out[f"{k}_ci_low"], out[f"{k}_ci_high"] = ci
    return out


def detectors_section(run: Run, palette: dict[str, str]) -> list[Item]:
    clean = _clean(run)
    if clean is None:
        return _no_clean(run, EVALUATION)
    scores = _clean_scores(run)
    detectors = detectors_of(clean)
    order = group_order(run, clean["generator"].astype(str))
    rows, notes = [], {}
    recomputed = False
    for d in detectors:
        part = clean[clean["detector"].astype(str) == d]
        for g in ["all", *order]:
            hit = part[part["generator"].astype(str) == g]
            if not len(hit):
                continue
            r = hit.iloc[0].to_dict()
            if not any(k in r for k in ("eer_ci_low", "ap_ci_low", "tpr_at_1fpr_ci_low")):
                extra = _extra_intervals(run, scores, d, g)
                recomputed |= bool(extra)
                r = {**r, **extra}
            rows.append([d, g, ci_cell(r, "auc"), ci_cell(r, "eer"), ci_cell(r, "ap"), ci_cell(r, "tpr_at_1fpr"),
                         ci_cell(r, "tpr_at_5fpr"), f"{_int(r.get('n_real'))} / {_int(r.get('n_fake'))}"])
            for note in _notes(r.get("notes")):
                notes[note] = None
    table_notes = ["AUC and its 95 % CI as evaluation.parquet gives them (bootstrap over identities)."]
    if recomputed:
        table_notes.append(f"EER, AP and TPR intervals: the same bootstrap over identities ({N_BOOT} resamples, seed "
                           f"{run.seed}) on scores.parquet.")
    table_notes += [f"Evaluation note: {n}." for n in notes]
    table_notes.append("The metadata shortcut probe is reported in section 2, not here.")
    items: list[Item] = [Table("detectors", ["detector", "generator", "AUC", "EER", "AP", "TPR@1%FPR", "TPR@5%FPR",
                                             "real / fake"], rows,
                               caption="Detectors on clean clips (perturbation none), each generator's fakes "
                                       "against all real clips", numeric=[False, False, *[True] * 6],
                               notes=table_notes)]
    items += per_emotion_table(run)
    if scores is None:
        items += _no_clean(run, SCORES, what="ROC curves")
        return items
    curves = {}
    from sklearn.metrics import roc_curve

    for d in detectors:
        part = scores[scores["detector"].astype(str) == d]
        ev = clean[clean["detector"].astype(str) == d]
        lines = []
        for g in ["all", *[o for o in order if o != "real"]]:
            sub = part[generator_mask(part, g)]
            y = labels01(sub["label"])
            if len(np.unique(y)) < 2:
                continue
            fpr, tpr, _ = roc_curve(y, sub["score"].to_numpy(dtype=float), pos_label=1)
            hit = ev[ev["generator"].astype(str) == g]
            lines.append((g, fpr, tpr, number(hit.iloc[0]["auc"]) if len(hit) else None))
        if lines:
            curves[d] = lines
    if curves:
        items.append(figure_item(run, "roc", figures.roc_curves(curves, palette),
                                 "ROC curves on clean clips, per detector ('all': every fake against every real clip)"))
    return items


def _notes(value: Any) -> list[str]:
    """evaluation.parquet's notes: "a; b" text (as evaluate writes it) or a list."""
    if isinstance(value, list | tuple | np.ndarray):
        return [str(v) for v in value if str(v)]
    return [n for n in str(value or "").split("; ") if n]


def _int(value: Any) -> str:
    x = number(value)
    return "–" if x is None else str(int(x))


# ------------------------------------------------------------------------------------------- 5. cross-gen


def cross_section(run: Run, palette: dict[str, str]) -> list[Item]:
    if run.cross is None or not len(run.cross):
        return missing(run, CROSS)
    cross = run.cross
    order = group_order(run, cross["trained_on"].astype(str), cross["tested_on"].astype(str))
    matrices, items = {}, []
    for d in sorted(cross["detector"].astype(str).unique()):
        part = cross[cross["detector"].astype(str) == d]
        trained = [g for g in [*order, "all"] if g in set(part["trained_on"].astype(str))]
        tested = [g for g in [*order, "all"] if g in set(part["tested_on"].astype(str))]
        values = np.full((len(trained), len(tested)), np.nan)
        texts = [["–"] * len(tested) for _ in trained]
        for r in part.to_dict("records"):
            i, j = trained.index(str(r["trained_on"])), tested.index(str(r["tested_on"]))
            values[i, j] = number(r.get("auc")) if number(r.get("auc")) is not None else np.nan
            texts[i][j] = ci_cell(r, "auc")
        matrices[d] = (trained, tested, values, [[t.replace(" [", "\n[") for t in row] for row in texts])
        items.append(Table(f"cross-{slug(d)}", [f"{d}: trained on ↓, tested on →", *tested],
                           [[t, *texts[i]] for i, t in enumerate(trained)],
                           caption=f"{d}: AUC [95 % CI] of a model trained on one generator's fakes, tested on each"))
    items.insert(0, figure_item(run, "cross", figures.heatmaps(matrices),
                                "Cross-generator AUC: rows the generator trained on, columns the one tested on"))
    return items


# ------------------------------------------------------------------------------------------ 6. robustness


def _level(tag: str) -> tuple[str, int] | None:
    name, _, level = tag.partition(":")
    try:
        return name, int(float(level))
    except ValueError:
        return None


def robustness_section(run: Run, palette: dict[str, str]) -> list[Item]:
    if run.evaluation is None or not len(run.evaluation):
        return missing(run, EVALUATION)
    ev = run.evaluation
    ev = ev[(ev["generator"].astype(str) == "all") & is_detector(ev["detector"])]
    tags = sorted(t for t in ev["perturbation"].astype(str).unique() if t != "none")
    parsed = {t: _level(t) for t in tags}
    names = sorted({p[0] for p in parsed.values() if p})
    if not names:
        return [Text(f"{NOT_RUN}: the evaluation has clean clips only (no perturbations).", "missing")]
    detectors = detectors_of(ev)
    panels: dict[str, dict[str, list]] = {}
    rows = []
    for name in names:
        panels[name] = {}
        for d in detectors:
            part = ev[ev["detector"].astype(str) == d]
            points = []
            for r in part.to_dict("records"):
                tag = str(r["perturbation"])
                level = 0 if tag == "none" else (parsed.get(tag) or ("", -1))[1]
                if tag == "none" or (parsed.get(tag) or ("",))[0] == name:
                    points.append((level, number(r.get("auc")), number(r.get("auc_ci_low")),
                                   number(r.get("auc_ci_high"))))
            panels[name][d] = sorted(points)
    for d in detectors:
        part = ev[ev["detector"].astype(str) == d]
        for tag in ["none", *tags]:
            hit = part[part["perturbation"].astype(str) == tag]
            if len(hit):
                r = hit.iloc[0].to_dict()
                rows.append([d, tag, ci_cell(r, "auc"), ci_cell(r, "eer"), ci_cell(r, "ap")])
    banded = any(p[2] is not None for lines in panels.values() for points in lines.values() for p in points)
    caption = "AUC (all generators) against perturbation level; " + (
        "bands: 95 % CI over identities" if banded else "no bands: the evaluation has no intervals (too few "
                                                        "identities)")
    return [figure_item(run, "robustness", figures.robustness(panels, palette), caption),
            Table("robustness", ["detector", "perturbation", "AUC", "EER", "AP"], rows,
                  caption="Per perturbation (all generators)", numeric=[False, False, True, True, True])]


# ----------------------------------------------------------------------------------------- 7. calibration


def calibration_section(run: Run, palette: dict[str, str]) -> list[Item]:
    from fakebench.evaluation import reliability_curve

    clean = _clean(run)
    scores = _clean_scores(run)
    if scores is None and clean is None:
        return _no_clean(run, SCORES) + _no_clean(run, EVALUATION)
    items: list[Item] = []
    detectors = detectors_of(scores if scores is not None else clean)
    curves, skipped = {}, []
    for d in detectors:
        ece = None
        if clean is not None:
            hit = clean[(clean["detector"].astype(str) == d) & (clean["generator"].astype(str) == "all")]
            ece = number(hit.iloc[0].get("ece")) if len(hit) else None
        if scores is None:
            continue
        part = scores[scores["detector"].astype(str) == d]
        s = part["score"].to_numpy(dtype=float)
        if not len(s) or s.min() < 0 or s.max() > 1:
            skipped.append(d)
            continue
        curve = reliability_curve(labels01(part["label"]), s)
        curves[d] = (curve["prob_pred"], curve["prob_true"], curve.get("count", []), ece)
    if curves:
        items.append(figure_item(run, "calibration", figures.reliability(curves, palette),
                                 "Reliability: fraction of fakes against the mean P(fake), 10 equal-width bins; "
                                 "dot area ~ clips in the bin"))
    elif scores is None:
        items += _no_clean(run, SCORES, what="Reliability curves")
    if clean is not None:
        rows = []
        for d in detectors_of(clean):
            hit = clean[(clean["detector"].astype(str) == d) & (clean["generator"].astype(str) == "all")]
            if len(hit):
                r = hit.iloc[0].to_dict()
                rows.append([d, fmt_fixed(r.get("ece"), 3), fmt_fixed(r.get("brier"), 3),
                             fmt_fixed(r.get("log_loss"), 3), fmt_fixed(r.get("threshold"), 2),
                             fmt_fixed(r.get("accuracy"), 2), fmt_fixed(r.get("balanced_accuracy"), 2)])
        items.append(Table("calibration", ["detector", "ECE", "Brier", "log loss", "threshold", "accuracy",
                                           "balanced accuracy"], rows,
                           caption="Calibration on clean clips, all generators (evaluation.parquet)"))
    if skipped:
        items.append(Text(f"No reliability curve for {', '.join(skipped)}: scores outside [0, 1].", "note"))
    return items
