"""The report's figures, drawn with matplotlib's Agg canvas (no pyplot, no display, no global backend) and
returned as PNG bytes. Each function takes plain data (pandas frames, lists) that the sections module prepared;
none reads files."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

DPI = 110
REAL_COLOUR = "#555555"
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#7f7f7f")
STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8, "xtick.labelsize": 8,
         "ytick.labelsize": 8, "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
         "grid.alpha": 0.3, "svg.hashsalt": "fakebench", "path.simplify": True}


def palette(generators: Sequence[str], detectors: Sequence[str]) -> dict[str, str]:
    """Colours by name: "real" grey, "all" black, then generators and detectors each through the palette."""
    out = {"real": REAL_COLOUR, "all": "black"}
    out |= {f"generator:{g}": PALETTE[i % len(PALETTE)] for i, g in enumerate(generators)}
    out |= {f"detector:{d}": PALETTE[i % len(PALETTE)] for i, d in enumerate(detectors)}
    return out


def colour(colours: Mapping[str, str], name: str, kind: str = "generator") -> str:
    if name in ("real", "all") and kind == "generator":
        return colours.get(name, REAL_COLOUR)
    return colours.get(f"{kind}:{name}", PALETTE[-1])


def _figure(width: float, height: float) -> Any:
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return fig


def _png(fig: Any) -> bytes:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    with matplotlib.rc_context(STYLE):
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _grid(n: int, cols: int) -> tuple[int, int]:
    cols = max(1, min(cols, n))
    return math.ceil(n / cols), cols


def _axes(fig: Any, n: int, cols: int) -> list[Any]:
    import matplotlib

    rows, cols = _grid(n, cols)
    with matplotlib.rc_context(STYLE):
        axes = fig.subplots(rows, cols, squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return flat[:n]


def roc_curves(curves: Mapping[str, Sequence[tuple[str, np.ndarray, np.ndarray, float | None]]],
               colours: Mapping[str, str]) -> bytes:
    """One panel per detector: (generator, fpr, tpr, auc) curves; "all" in black."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        fig = _figure(*_size(len(curves), 3, 3.0, 2.9))
        for ax, (detector, lines) in zip(_axes(fig, len(curves), 3), curves.items(), strict=True):
            ax.plot([0, 1], [0, 1], color="#bbbbbb", lw=0.8, ls=":")
            for generator, fpr, tpr, auc in lines:
                c = colour(colours, generator)
                label = f"{generator} (AUC {auc:.2f})" if auc is not None else generator
                ax.plot(fpr, tpr, color=c, lw=2.0 if generator == "all" else 1.2, label=label,
                        drawstyle="steps-post")
            ax.set(title=detector, xlabel="false positive rate (real called fake)",
                   ylabel="true positive rate", xlim=(-0.01, 1.01), ylim=(-0.01, 1.01))
            ax.set_aspect("equal")
            ax.legend(loc="lower right", frameon=False)
        return _png(fig)


def _size(n: int, cols: int, w: float, h: float) -> tuple[float, float]:
    rows, cols = _grid(max(n, 1), cols)
    return w * cols + 0.4, h * rows + 0.3


def heatmaps(matrices: Mapping[str, tuple[list[str], list[str], np.ndarray, list[list[str]]]]) -> bytes:
    """One heatmap per detector: (row labels = trained on, column labels = tested on, AUC values, cell texts)."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        sizes = [(len(c), len(r)) for r, c, _, _ in matrices.values()]
        w = max(1.6 + 0.95 * c for c, _ in sizes)
        h = max(1.3 + 0.55 * r for _, r in sizes)
        per_row = 2 if 2 * w <= 8.5 else 1
        fig = _figure(*_size(len(matrices), per_row, w, h))
        image = None
        for ax, (detector, (rows, cols, values, texts)) in zip(_axes(fig, len(matrices), per_row), matrices.items(),
                                                               strict=True):
            ax.grid(False)
            image = ax.imshow(np.ma.masked_invalid(values), cmap="RdYlGn", vmin=0.5, vmax=1.0, aspect="auto")
            ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
            ax.set_yticks(range(len(rows)), rows)
            ax.set(title=detector, xlabel="tested on", ylabel="trained on")
            for i in range(len(rows)):
                for j in range(len(cols)):
                    ax.text(j, i, texts[i][j], ha="center", va="center", fontsize=8,
                            color="black" if np.isfinite(values[i, j]) else "#888888")
        if image is not None:
            fig.colorbar(image, ax=fig.axes, label="AUC", shrink=0.8)
        return _png(fig)


def robustness(panels: Mapping[str, Mapping[str, Sequence[tuple[int, float | None, float | None, float | None]]]],
               colours: Mapping[str, str]) -> bytes:
    """One panel per perturbation: per detector, AUC against level (0 = clean) with its 95 % band."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        fig = _figure(*_size(len(panels), 3, 3.2, 2.7))
        for ax, (perturbation, lines) in zip(_axes(fig, len(panels), 3), panels.items(), strict=True):
            levels: set[int] = set()
            for detector, points in lines.items():
                c = colour(colours, detector, "detector")
                pts = [p for p in points if p[1] is not None]
                if not pts:
                    continue
                x = [p[0] for p in pts]
                levels |= set(x)
                ax.plot(x, [p[1] for p in pts], marker="o", ms=3.5, color=c, label=detector)
                band = [p for p in pts if p[2] is not None and p[3] is not None]
                if band:
                    ax.fill_between([p[0] for p in band], [p[2] for p in band], [p[3] for p in band], color=c,
                                    alpha=0.15, lw=0)
            ax.axhline(0.5, color="#bbbbbb", lw=0.8, ls=":")
            ax.set(title=perturbation, xlabel="level (0 = clean)", ylabel="AUC (all generators)", ylim=(0.0, 1.02))
            if levels:
                ax.set_xticks(sorted(levels))
            ax.legend(loc="lower left", frameon=False)
        return _png(fig)


def reliability(curves: Mapping[str, tuple[list[float], list[float], list[int], float | None]],
                colours: Mapping[str, str]) -> bytes:
    """Reliability diagram: per detector the fraction of fakes against the mean score per bin (ECE in the
    legend), the diagonal a perfectly calibrated detector."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        fig = _figure(5.6, 3.6)
        ax = fig.subplots()
        ax.plot([0, 1], [0, 1], color="#bbbbbb", lw=0.8, ls=":", label="perfectly calibrated")
        for detector, (pred, true, counts, ece) in curves.items():
            label = f"{detector} (ECE {ece:.2f})" if ece is not None else detector
            sizes = 12 + 60 * np.sqrt(np.asarray(counts, dtype=float) / max(max(counts or [1]), 1))
            c = colour(colours, detector, "detector")
            ax.plot(pred, true, color=c, lw=1.2, label=label)
            ax.scatter(pred, true, s=sizes, color=c, alpha=0.7, zorder=3)
        ax.set(xlabel="mean P(fake) in bin", ylabel="fraction fake in bin", xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
        ax.set_aspect("equal")
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
        return _png(fig)


def distributions(panels: Mapping[str, Mapping[str, Sequence[float]]], order: Sequence[str],
                  colours: Mapping[str, str]) -> bytes:
    """One panel per metric: a box per group (real, then each generator) with the clips as jittered dots."""
    import matplotlib

    rng = np.random.default_rng(0)
    with matplotlib.rc_context(STYLE):
        n_groups = max((len(g) for g in panels.values()), default=1)
        fig = _figure(*_size(len(panels), 3, max(2.2, 0.5 * n_groups + 0.8), 2.1))
        for ax, (metric, groups) in zip(_axes(fig, len(panels), 3), panels.items(), strict=True):
            names = [g for g in order if g in groups]
            data = [np.asarray(groups[g], dtype=float) for g in names]
            ax.boxplot([d if len(d) else [np.nan] for d in data], widths=0.55, showfliers=False,
                       medianprops={"color": "black"})
            for i, (g, d) in enumerate(zip(names, data, strict=True), start=1):
                ax.scatter(i + rng.uniform(-0.18, 0.18, len(d)), d, s=7, color=colour(colours, g), alpha=0.7,
                           zorder=3, lw=0)
            ax.set_xticks(range(1, len(names) + 1), names, rotation=30 if len(names) > 3 else 0,
                          ha="right" if len(names) > 3 else "center")
            ax.set_title(metric)
        return _png(fig)


def frame_grid(cells: Sequence[Sequence[tuple[np.ndarray | None, str]]], columns: Sequence[str]) -> bytes:
    """Rows of frames (None: no clip), one column per group, each cell captioned."""
    import matplotlib

    rows = len(cells)
    with matplotlib.rc_context(STYLE):
        fig = _figure(1.9 * len(columns) + 0.2, 2.2 * rows + 0.3)
        fig.get_layout_engine().set(h_pad=0.06, w_pad=0.04)
        axes = fig.subplots(rows, len(columns), squeeze=False)
        for r, row in enumerate(cells):
            for c, (frame, caption) in enumerate(row):
                ax = axes[r][c]
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                for spine in ax.spines.values():
                    spine.set_visible(frame is not None)
                if frame is not None:
                    ax.imshow(frame)
                else:
                    ax.set_facecolor("#f2f2f2")
                    ax.text(0.5, 0.5, "no clip", ha="center", va="center", transform=ax.transAxes, color="#888")
                ax.set_xlabel(caption, fontsize=7)
                if r == 0:
                    ax.set_title(columns[c], fontsize=9 if len(columns[c]) <= 20 else 7, fontweight="bold")
        return _png(fig)
