"""What a report holds, independent of its format: sections, each with one block per run, each block a list of
items (text, tables, figures, code). `fakebench.report.render` writes the same model as HTML and as Markdown."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class Text:
    """A paragraph. ``style``: "p" (plain), "note" (small print), "missing" (a part that did not run),
    "banner" (the synthetic-reference warning), "alarm" / "clear" / "neutral" (a verdict, shown big)."""

    text: str
    style: str = "p"
    kind: str = "text"


@dataclass
class Bullets:
    items: list[str]
    kind: str = "bullets"


@dataclass
class Code:
    text: str
    language: str = ""
    kind: str = "code"


@dataclass
class Table:
    """A table of ready-formatted cells. ``key`` names it in the HTML (``data-table``) so tests can find it;
    ``numeric`` marks the columns aligned right; ``notes`` are printed under it."""

    key: str
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""
    numeric: list[bool] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    kind: str = "table"

    def __post_init__(self) -> None:
        if not self.numeric:
            self.numeric = [i > 0 for i in range(len(self.columns))]


@dataclass
class Figure:
    """A PNG figure: written to figures/``file`` and embedded in the HTML as a data URI."""

    file: str
    png: bytes
    caption: str
    alt: str = ""
    kind: str = "figure"


Item = Text | Bullets | Code | Table | Figure


@dataclass
class Block:
    """One run's part of a section."""

    run: str
    items: list[Item] = field(default_factory=list)


@dataclass
class Section:
    key: str
    number: int
    title: str
    blocks: list[Block]
    intro: str = ""
    layout: str = "side"  # "side": runs in columns; "stack": each run full width (wide tables)


@dataclass
class Report:
    title: str
    runs: list[str]
    banners: list[str]
    sections: list[Section]
    generated: str = ""


def slug(text: str) -> str:
    """A file-name-safe form of a run or detector name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "x"
