"""Sections 1-3: what was run, the shortcut verdict, and the generators beside the real clips."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from fakebench.report.common import (
    METRIC_LABELS,
    NOT_RUN,
    group_order,
    groups_of,
    metric_frame,
    missing,
    present,
)
from fakebench.report.load import COMPARE, EVALUATION, MANIFEST, METRICS, Run
from fakebench.report.model import Bullets, Code, Item, Table, Text
from fakebench.report.numbers import MIN_IDENTITIES, N_BOOT, fmt, fmt_ci, fmt_fixed, fmt_seconds, mean_ci, number

# ---------------------------------------------------------------------------------------- 1. what was run


def what_was_run(run: Run, palette: dict[str, str]) -> list[Item]:
    import yaml

    info = run.info
    items: list[Item] = []
    if run.synthetic_reference:
        items.append(Text("SYNTHETIC REFERENCE: run.json marks this run's \"real\" class as synthetic (animated "
                          "offline from photos, not recordings of people).", "banner"))
    facts = [f"fakebench {info.get('fakebench_version', '?')}", f"seed {info.get('seed', '?')}"]
    if info.get("config_hash"):
        facts.append(f"config hash {str(info['config_hash'])[:16]}")
    if info.get("started") or info.get("finished"):
        facts.append(f"started {info.get('started', '?')}, finished {info.get('finished', '?')}")
    items.append(Text("; ".join(facts) + "."))
    config = info.get("config")
    if config:
        items.append(Code(yaml.safe_dump(config, sort_keys=False, default_flow_style=False, allow_unicode=True)
                          .rstrip(), "yaml"))
    else:
        items.append(Text("run.json records no configuration.", "note"))
    items.append(_data_table(run))
    items += _weights(run)
    stages = info.get("stages") or {}
    if stages:
        items.append(Table("stages", ["stage", "done", "seconds", "note"],
                           [[str(k), "yes" if (v or {}).get("done") else "no", fmt_seconds((v or {}).get("seconds")),
                             _stage_note(v or {})] for k, v in stages.items()], caption="Stages",
                           numeric=[False, False, True, False]))
    versions = info.get("versions") or {}
    if versions:
        items.append(Text("Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) + ".", "note"))
    return items


def _stage_note(stage: dict[str, Any]) -> str:
    notes = []
    if stage.get("skipped"):
        notes.append(f"skipped: {stage['skipped']}")
    if number(stage.get("failures")):
        notes.append(f"{int(stage['failures'])} failed")
    if stage.get("note"):
        notes.append(str(stage["note"]))
    return "; ".join(notes)


def synthetic_banner(names: list[str]) -> str:
    """The warning at the top of a report that holds runs whose real class is synthetic (the offline demo)."""
    runs = ", ".join(names)
    these = "this run's" if len(names) == 1 else "these runs'"
    return (f"SYNTHETIC REFERENCE ({runs}): {these} \"real\" class is synthetic, animated offline from photos, not "
            "recordings of people. The numbers show how the benchmark works; they say nothing about detecting fakes "
            "of real video.")


def _data_table(run: Run) -> Item:
    corpus = run.info.get("corpus") or {}
    if run.manifest is None or not len(run.manifest):
        text = (f"Corpus: {corpus.get('n_clips', '?')} clips, {corpus.get('n_identities', '?')} identities, "
                f"generators {', '.join(map(str, corpus.get('generators') or [])) or 'none'}; "
                f"{MANIFEST} {'is empty' if run.manifest is not None else 'is not in this run folder'}.")
        return Text(text, "note")
    m = run.manifest.copy()
    m["group"] = groups_of(m)
    splits = [s for s in ("train", "val", "test") if "split" in m.columns and (m["split"] == s).any()]
    rows = []
    for g in group_order(run, m["group"]):
        part = m[m["group"] == g]
        cells = [str(int((part["split"] == s).sum())) for s in splits]
        ids = str(part["identity"].nunique()) if "identity" in part.columns else "–"
        duration = fmt(part["duration_s"].sum()) if "duration_s" in part.columns else "–"
        rows.append([g, *cells, str(len(part)), ids, duration])
    ids_total = str(m["identity"].nunique()) if "identity" in m.columns else "–"
    rows.append(["total", *[str(int((m["split"] == s).sum())) for s in splits], str(len(m)), ids_total,
                 fmt(m["duration_s"].sum()) if "duration_s" in m.columns else "–"])
    return Table("data", ["class", *splits, "clips", "identities", "seconds"], rows,
                 caption=f"Data: the corpus ({corpus.get('path', 'corpus')}/), clips per split")


def _weights(run: Run) -> list[Item]:
    items: list[Item] = []
    weights = run.info.get("weights") or {}
    if weights:
        rows = []
        for name, w in sorted(weights.items()):
            if not isinstance(w, dict):
                continue
            where = " – ".join(str(v) for v in (w.get("path"), w.get("where")) if v)
            checksum = f"checksum {w['checksum']}" if w.get("checksum") else ""
            rows.append([str(name), str(w.get("status", "?")), str(w.get("sha256") or "–"),
                         "; ".join(v for v in (where, checksum, str(w.get("note") or "")) if v) or "–"])
        items.append(Table("weights", ["weights", "status", "SHA-256", "path / note"], rows,
                           caption="Model weights", numeric=[False] * 4))
    else:
        items.append(Text("run.json lists no model weights.", "note"))
    substitutes = [str(s) for s in run.info.get("substitutes") or []]
    if substitutes:
        items.append(Text("Substitutes used for missing weights:", "p"))
        items.append(Bullets(substitutes))
    else:
        items.append(Text("No substitutes: every metric ran with its own weights.", "note"))
    return items


# -------------------------------------------------------------------------------------------- 2. shortcut


def shortcut_section(run: Run, palette: dict[str, str]) -> list[Item]:
    v = run.shortcut
    if v is None:
        return missing(run, "evaluation/shortcut.json", EVALUATION)
    if not v.get("ran"):
        return [Text(f"{NOT_RUN}: the shortcut probe did not run ({v.get('why') or 'no reason recorded'}).",
                     "missing")]
    auc = fmt_ci(v.get("auc"), v.get("auc_ci_low"), v.get("auc_ci_high"), 2)
    carrier = v.get("carrier")
    carrier_auc = fmt_fixed(v.get("carrier_auc"))
    if v.get("found"):
        carried = f" It is carried by {carrier} (AUC {carrier_auc} on that feature alone)." if carrier else ""
        text = (f"SHORTCUT FOUND: metadata alone separates real from fake, AUC {auc}.{carried} Detector scores "
                "in this run may measure this shortcut rather than the manipulation.")
        style = "alarm"
    else:
        strongest = f" Strongest single feature: {carrier} (AUC {carrier_auc} alone)." if carrier else ""
        if number(v.get("auc_ci_low")) is None:
            why = str(v.get("why") or "the probe's AUC has no confidence interval").removesuffix(": no verdict")
            text = f"NO VERDICT: {why}. Metadata probe AUC {auc}.{strongest}"
            style = "neutral"
        else:
            text = f"No shortcut found: the metadata probe's AUC {auc} includes 0.5.{strongest}"
            style = "clear"
    rows = [["metadata probe AUC", auc], ["verdict", "shortcut" if v.get("found") else
                                          ("no verdict" if style == "neutral" else "none found")]]
    if carrier:
        rows.append(["strongest feature", f"{carrier} (AUC {carrier_auc})"])
    return [Text(text, style), Table("shortcut", ["", "value"], rows, numeric=[False, False])]


# ------------------------------------------------------------------------------------------ 3. generators


def _reliable(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return 1.0 if value is True or value == 1 else 0.0


def generators_section(run: Run, palette: dict[str, str]) -> list[Item]:
    """One row per measure, one column per group (real, then each generator): mean [95 % CI] over clips."""
    frame = metric_frame(run)
    compare = run.compare
    if frame is None and compare is None:
        return missing(run, METRICS, COMPARE)
    seed = run.seed
    measures: list[tuple[str, pd.Series | None]] = []  # (label, per-clip values); None: the FID row
    if frame is not None:
        reliable = frame["sync_reliable"].map(_reliable) if "sync_reliable" in frame.columns else None
        if present(frame, "sync_offset_frames"):
            offset = frame["sync_offset_frames"].map(lambda v: abs(v) if number(v) is not None else None)
            if reliable is not None:
                offset = offset.where(reliable == 1.0, None)
            measures.append(("|sync offset| (frames)", offset))
        if reliable is not None:
            measures.append(("sync reliable (share)", reliable))
        for key in ("sync_confidence", "lse_d", "lse_c", "blink_rate_per_min", "blink_duration_ms", "duration_s"):
            if present(frame, key):
                measures.append((METRIC_LABELS[key], frame[key]))
        order = group_order(run, frame["group"], [] if compare is None else compare["generator"].astype(str))
    else:
        order = group_order(run, ["real"], compare["generator"].astype(str))
    fid_label, fid_cells = _fid_cells(compare, order)
    if fid_label:
        measures.append((fid_label, None))
    if frame is not None:
        measures += [(METRIC_LABELS[k], frame[k]) for k in ("identity_distance", "psnr", "ssim", "cpbd")
                     if present(frame, k)]
    identities = None if frame is None else (frame["identity"] if "identity" in frame.columns else frame["clip_id"])
    rows = [["clips", *[str(int((frame["group"] == g).sum())) if frame is not None else "–" for g in order]]]
    few = False
    for label, series in measures:
        cells = [label]
        for g in order:
            if series is None:
                cells.append(fid_cells.get(g, "(reference)" if g == "real" else "–"))
                continue
            mask = frame["group"] == g
            mean, low, high, n = mean_ci(series[mask].tolist(), identities[mask].tolist(), seed=seed)
            few |= n > 1 and low is None
            cells.append(fmt_ci(mean, low, high))
        rows.append(cells)
    expression_rows, expression_notes = _expression_rows(frame, order, identities, seed)
    rows += expression_rows
    notes = []
    if frame is not None:
        notes.append(f"Mean [95 % CI] over clips; intervals: percentile bootstrap over identities ({N_BOOT} "
                     f"resamples, seed {seed})" + (f"; none with fewer than {MIN_IDENTITIES} identities." if few
                                                   else "."))
        if "sync_reliable" in frame.columns:
            notes.append("|sync offset| counts only clips whose offset is reliable; the share of such clips is the "
                         "next row.")
    else:
        notes.append(f"{NOT_RUN}: per-clip metrics ({METRICS} is not in this run folder).")
    notes += expression_notes
    if compare is None:
        notes.append(f"{NOT_RUN}: FID or its substitute ({COMPARE} is not in this run folder).")
    items: list[Item] = [Table("generators", ["measure", *order], rows,
                               caption="Each generator's fakes beside the real clips", notes=notes)]
    if compare is not None and len(compare):
        items.append(_compare_table(compare, order))
    return items


# The expression metric's rows: the AUs always shown (the smile and the frown), how many others (the most active in
# any group) join them, and how active an AU must be on average to be shown (FACS trace A is 0.2).
EXPRESSION_AUS = ("au12", "au04")
EXPRESSION_EXTRA_AUS = 2
EXPRESSION_SHOWN_AT = 0.05
TOP_EMOTIONS = 2  # "most frequent": this many emotions per group, with their shares


def _emotion_of(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def expression_summary(frame: pd.DataFrame, order: list[str]) -> dict[str, Any]:
    """What the generators table shows of the expression metric, per group: the share of clips whose measured
    emotion is not neutral, the most frequent measured emotions, the share measured as asked (where the manifest
    records the emotion a fake was made with), and which AUs to show (`EXPRESSION_AUS`, then the
    `EXPRESSION_EXTRA_AUS` others whose mean is highest in some group, if at least `EXPRESSION_SHOWN_AT`; AU7 is
    AU6 again and AU26 follows speech, so neither is a candidate)."""
    measured = frame["expression_emotion"].map(_emotion_of)
    groups: dict[str, dict[str, Any]] = {}
    for g in order:
        got = measured[frame["group"] == g].dropna()
        counts = got.value_counts()
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        asked = (frame.loc[got.index, "emotion"].map(_emotion_of) if "emotion" in frame.columns
                 else pd.Series(None, index=got.index, dtype=object))
        with_ask = asked.dropna().index
        groups[g] = {"n": len(got), "not_neutral": (got != "neutral").astype(float),
                     "top": [(e, n / len(got)) for e, n in ranked[:TOP_EMOTIONS]],
                     "as_asked": (got[with_ask] == asked[with_ask]).astype(float) if len(with_ask) else None}
    candidates = [c for c in frame.columns if re.fullmatch(r"au\d\d", str(c)) and c not in
                  (*EXPRESSION_AUS, "au07", "au26")]
    activity = {c: max((number(pd.to_numeric(frame.loc[frame["group"] == g, c], errors="coerce").mean()) or 0.0)
                       for g in order) for c in candidates}
    extra = [c for c, a in sorted(activity.items(), key=lambda kv: (-kv[1], kv[0])) if a >= EXPRESSION_SHOWN_AT]
    aus = [c for c in EXPRESSION_AUS if c in frame.columns] + sorted(extra[:EXPRESSION_EXTRA_AUS])
    aus += ["au26"] if "au26" in frame.columns else []
    return {"groups": groups, "aus": aus}


def _expression_rows(frame: pd.DataFrame | None, order: list[str], identities: pd.Series | None,
                     seed: int) -> tuple[list[list[str]], list[str]]:
    """The generators table's expression rows and their note (none when the run did not measure expression)."""
    if frame is None or "expression_emotion" not in frame.columns or not frame["expression_emotion"].map(
            _emotion_of).notna().any():
        return [], []
    from fakebench.metrics.expression import AU_NAMES

    summary = expression_summary(frame, order)
    groups = summary["groups"]

    def share(values: pd.Series | None) -> str:
        if values is None or not len(values):
            return "–"
        mean, low, high, _ = mean_ci(values.tolist(), identities[values.index].tolist(), seed=seed)
        return fmt_ci(mean, low, high, 2)

    rows = [["expression not neutral (share)", *[share(groups[g]["not_neutral"]) for g in order]],
            ["most frequent expressions", *[", ".join(f"{e} {100 * p:.0f} %" for e, p in groups[g]["top"]) or "–"
                                            for g in order]]]
    if any(groups[g]["as_asked"] is not None for g in order):
        rows.append(["expression measured as asked (share)", *[share(groups[g]["as_asked"]) for g in order]])
    for au in summary["aus"]:
        series = pd.to_numeric(frame[au], errors="coerce")
        cells = []
        for g in order:
            part = series[frame["group"] == g]
            mean, low, high, _ = mean_ci(part.tolist(), identities[part.index].tolist(), seed=seed)
            cells.append(fmt_ci(mean, low, high, 2))
        rows.append([f"{au.upper()} {AU_NAMES[int(au[2:])]} (mean)", *cells])
    note = ("Expression (the expression metric, on every clip's face alike, real or fake, against population "
            "norms of real talking faces): the measured emotion's shares per group, and action-unit intensities on "
            "FACS's 0-1 scale (0.2 a trace, 0.6 marked, 1 maximal). AU12 (smile) and AU04 (frown) are always shown, "
            f"with the {EXPRESSION_EXTRA_AUS} other AUs most active in some group and AU26 (jaw drop, which speech "
            "moves too); metrics.parquet holds all 13.")
    if any(groups[g]["as_asked"] is not None for g in order):
        note += (" \"As asked\": the share of fakes whose measured emotion is the one the manifest says they were "
                 "made with.")
    return rows, [note]


def _fid_cells(compare: pd.DataFrame | None, order: list[str]) -> tuple[str, dict[str, str]]:
    """The FID column: "FID" with each generator's value, or the substitute (labelled) where FID is missing."""
    if compare is None or not len(compare):
        return "", {}
    cells: dict[str, str] = {}
    used: set[str] = set()
    metrics = compare["metric"].astype(str)
    for g in order:
        part = compare[(compare["generator"].astype(str) == g)]
        for metric in ("fid", *sorted(m for m in set(metrics) if m.startswith("fd_")), "kid"):
            hit = part[part["metric"].astype(str) == metric]
            if len(hit) and number(hit.iloc[0]["value"]) is not None:
                r = hit.iloc[0].to_dict()
                used.add(metric)
                text = fmt_ci(r.get("value"), r.get("ci_low"), r.get("ci_high"))
                cells[g] = text if metric == "fid" else f"{text} ({metric})"
                break
    if not used:
        return "", {}
    if len(used) == 1:  # the row's label names the one metric: no need to repeat it in each cell
        cells = {g: c.rsplit(" (", 1)[0] if c.endswith(")") and "fid" not in used else c for g, c in cells.items()}
    label = "FID" if used == {"fid"} else ("FID (substitute: " + ", ".join(sorted(used - {"fid"})) + ")"
                                           if "fid" not in used else "FID or substitute")
    return label, cells


def _compare_table(compare: pd.DataFrame, order: list[str]) -> Table:
    rank = {g: i for i, g in enumerate(order)}
    frame = compare.copy()
    frame["_rank"] = frame["generator"].astype(str).map(lambda g: rank.get(g, len(rank)))
    rows = [[str(r["generator"]), str(r["metric"]), fmt_ci(r.get("value"), r.get("ci_low"), r.get("ci_high")),
             str(r.get("note") or "")] for r in frame.sort_values(["_rank", "metric"]).to_dict("records")]
    return Table("compare", ["generator", "metric", "value [95 % CI]", "note"], rows,
                 caption="Set metrics, each generator's fakes against the real clips (compare.parquet)",
                 numeric=[False, False, True, False])
