"""Sections 8-10: each metric's distribution, sample frames of each generator beside the real clip, and the
worst-misclassified clips."""

from __future__ import annotations

import pandas as pd

from fakebench.report import figures
from fakebench.report.common import (
    METRIC_LABELS,
    NOT_RUN,
    evidence_list,
    figure_item,
    group_of,
    group_order,
    groups_of,
    label_name,
    metric_frame,
    missing,
    present,
)
from fakebench.report.load import EVIDENCE, MANIFEST, METRICS, Run
from fakebench.report.model import Figure, Item, Table, Text
from fakebench.report.numbers import fmt_fixed, number

MAX_EVIDENCE_ROWS = 20
MAX_THUMBNAILS = 6


# --------------------------------------------------------------------------------------- 8. distributions


def distributions_section(run: Run, palette: dict[str, str]) -> list[Item]:
    frame = metric_frame(run)
    if frame is None or not len(frame):
        return missing(run, METRICS)
    order = group_order(run, frame["group"])
    panels = {}
    for key, label in METRIC_LABELS.items():
        if not present(frame, key):
            continue
        groups = {}
        for g in order:
            vals = [number(v) for v in frame.loc[frame["group"] == g, key]]
            groups[g] = [v for v in vals if v is not None]
        panels[label] = groups
    if not panels:
        return [Text(f"{NOT_RUN}: metrics.parquet holds no per-clip metric values.", "missing")]
    return [figure_item(run, "distributions", figures.distributions(panels, order, palette),
                        "Each metric per clip: real clips (grey) and each generator's fakes; boxes span the quartiles")]


# ------------------------------------------------------------------------------------------------ 9. frames


def _pick_frames(run: Run) -> tuple[list[str], list[list[tuple[str | None, str]]]] | None:
    """Columns (real, then each generator) and up to two rows of clip ids: identities with the most generators."""
    m = run.manifest
    if m is None or not len(m) or "path" not in m.columns:
        return None
    m = m.copy()
    m["group"] = groups_of(m)
    order = group_order(run, m["group"])
    gens = [g for g in order if g != "real"]
    if "identity" not in m.columns:
        m["identity"] = m["clip_id"]
    if "split" in m.columns:
        m = m.assign(_test=(m["split"] != "test").astype(int)).sort_values(["_test", "clip_id"])
    else:
        m = m.sort_values("clip_id")
    fakes = m[m["group"] != "real"]
    coverage = fakes.groupby("identity", sort=False)["group"].nunique().sort_values(ascending=False, kind="stable")
    identities = list(coverage.index[:2]) or list(m["identity"].unique()[:1])
    real_ids = set(m.loc[m["group"] == "real", "clip_id"])
    rows = []
    for ident in identities:
        mine = m[m["identity"] == ident]
        picks: dict[str, str | None] = {}
        for g in gens:
            hit = mine[mine["group"] == g]
            picks[g] = str(hit.iloc[0]["clip_id"]) if len(hit) else None
        source = None
        for g in gens:
            if picks[g] is not None and "source_clip" in mine.columns:
                src = mine.loc[mine["clip_id"] == picks[g], "source_clip"].iloc[0]
                if src in real_ids:
                    source = str(src)
                    break
        if source is None:
            reals = mine[mine["group"] == "real"]
            source = str(reals.iloc[0]["clip_id"]) if len(reals) else None
        rows.append([(source, str(ident)), *[(picks[g], g) for g in gens]])
    return ["real", *gens], rows


def frames_section(run: Run, palette: dict[str, str]) -> list[Item]:
    from fakebench.report.frames import clip_frame

    picked = _pick_frames(run)
    if picked is None:
        return missing(run, MANIFEST)
    columns, rows = picked
    if not columns[1:]:
        return [Text("No fakes in the corpus: nothing to show beside the real clips.", "note")]
    by_id = run.manifest.set_index("clip_id")
    cells, found = [], 0
    for row in rows:
        out = []
        for clip_id, _ in row:
            if clip_id is None:
                out.append((None, ""))
                continue
            r = by_id.loc[clip_id]
            frame = clip_frame(run.corpus_folder / str(r["path"]), fps=number(r.get("fps")),
                               duration_s=number(r.get("duration_s")))
            found += frame is not None
            out.append((frame, clip_id if frame is not None else f"{clip_id} (unreadable)"))
        cells.append(out)
    if not found:
        return [Text(f"{NOT_RUN}: none of the chosen clips could be read under {run.corpus_folder}.", "missing")]
    return [figure_item(run, "frames", figures.frame_grid(cells, columns),
                        "The middle frame of a real clip and of each generator's fake of the same person (test split "
                        "first)")]


# ------------------------------------------------------------------------------------------------ 10. worst


def worst_section(run: Run, palette: dict[str, str]) -> list[Item]:
    ev = run.evidence
    if ev is None and EVIDENCE in run.empty:
        return [Text(f"{EVIDENCE} holds no rows: no misclassified clips were recorded.", "note")]
    if ev is None:
        return missing(run, EVIDENCE)
    frame = ev.head(MAX_EVIDENCE_ROWS)
    rows = []
    for r in frame.to_dict("records"):
        frames = evidence_list(r.get("frames"))
        rows.append([str(r["clip_id"]), label_name(r["label"]), group_of(r["label"], r.get("generator")),
                     str(r["detector"]), fmt_fixed(r.get("p_fake"), 3),
                     "; ".join(evidence_list(r.get("evidence"))) or "–", ", ".join(frames) or "–"])
    notes = [f"The first {MAX_EVIDENCE_ROWS} of {len(ev)} rows."] if len(ev) > MAX_EVIDENCE_ROWS else []
    items: list[Item] = [Table("worst", ["clip", "label", "generator", "detector", "P(fake)", "evidence", "frames"],
                               rows, caption="The clips the detectors got most wrong, with what each detector saw "
                                             "(evidence.parquet)",
                               numeric=[False, False, False, False, True, False, False], notes=notes)]
    thumbs = _worst_frames(run, frame.head(MAX_THUMBNAILS))
    if thumbs is not None:
        items.append(thumbs)
    return items


def _worst_frames(run: Run, frame: pd.DataFrame) -> Figure | None:
    """One frame of each of the worst clips (the first frame the evidence names, else the middle one)."""
    from fakebench.report.frames import clip_frame

    has_manifest = run.manifest is not None and "path" in run.manifest.columns
    if not has_manifest and "path" not in frame.columns:
        return None
    by_id = run.manifest.drop_duplicates("clip_id").set_index("clip_id") if has_manifest else pd.DataFrame()
    cells, titles = [], []
    for r in frame.to_dict("records"):
        frames = [int(f) for f in evidence_list(r.get("frames")) if str(f).lstrip("-").isdigit()]
        if r["clip_id"] in by_id.index:
            m = by_id.loc[r["clip_id"]]
            path, fps, duration = run.corpus_folder / str(m["path"]), number(m.get("fps")), number(m.get("duration_s"))
        elif r.get("path"):  # evidence.parquet's own path, relative to the run folder
            path, fps, duration = run.folder / str(r["path"]), None, None
        else:
            continue
        image = clip_frame(path, fps=fps, duration_s=duration, frame=frames[0] if frames else None)
        if image is None:
            continue
        where = f"frame {frames[0]}" if frames else "middle frame"
        cells.append((image, f"{r['clip_id']}\n{where}"))
        titles.append(f"{label_name(r['label'])}, {r['detector']}: P(fake) {fmt_fixed(r.get('p_fake'), 2)}")
    if not cells:
        return None
    return figure_item(run, "worst", figures.frame_grid([cells], titles),
                       "The worst-misclassified clips: the frame the evidence points to (else the middle one)")
