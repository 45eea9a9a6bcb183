"""Write a `Report` as index.html (self-contained: CSS inline, figures as base64 PNG data URIs, nothing fetched)
and report.md (the same content; figures linked as figures/NAME.png), from the Jinja2 templates shipped in
fakebench/report/templates/."""

from __future__ import annotations

import base64
from pathlib import Path

from fakebench.io import write_bytes_atomic, write_text_atomic
from fakebench.report.model import Report

FIGURES = "figures"
HTML = "index.html"
MARKDOWN = "report.md"
FIGURE_NAMES = tuple(f"-{name}.png" for name in ("roc", "cross", "robustness", "calibration", "distributions",
                                                  "frames", "worst"))


def _environment(autoescape: bool):
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("fakebench.report", "templates"), autoescape=autoescape,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["data_uri"] = lambda png: "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    env.filters["md_cell"] = _md_cell
    env.filters["md_text"] = _md_text
    return env


def _md_cell(text: object) -> str:
    return _md_text(text).replace("|", "\\|").replace("\n", "<br>") or " "


def _md_text(text: object) -> str:
    """Markdown-safe text: the characters that would start markup are escaped."""
    out = str(text)
    for ch in ("\\", "`", "*", "<", ">"):
        out = out.replace(ch, "\\" + ch)
    return out


def render_html(report: Report) -> str:
    return _environment(True).get_template("index.html.j2").render(report=report, figures_dir=FIGURES)


def render_markdown(report: Report) -> str:
    return _environment(False).get_template("report.md.j2").render(report=report, figures_dir=FIGURES)


def write(report: Report, output: Path) -> Path:
    """Write figures/*.png, report.md and index.html into ``output``; returns index.html's path. Figures an
    earlier report left in figures/ (names ending as this module's do) are removed, so the folder matches."""
    written = set()
    for section in report.sections:
        for block in section.blocks:
            for item in block.items:
                if item.kind == "figure":
                    written.add(write_bytes_atomic(output / FIGURES / item.file, item.png).name)
    for old in (output / FIGURES).glob("*.png") if (output / FIGURES).is_dir() else ():
        if old.name not in written and old.name.endswith(FIGURE_NAMES):
            old.unlink(missing_ok=True)
    write_text_atomic(output / MARKDOWN, render_markdown(report))
    return write_text_atomic(output / HTML, render_html(report))
