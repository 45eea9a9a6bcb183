"""`fakebench report`: the numbers it shows are the run's tables, missing tables say "not run", several runs go
side by side, a folder that is not a run is a one-line error, and the HTML loads nothing from outside itself."""

from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser

import pytest
from helpers import assert_user_error, run
from report_fixture import make_run

from fakebench.report.numbers import fmt, fmt_ci, mean_ci
from fakebench.tables import read_table

SECTIONS = ["run", "shortcut", "generators", "detectors", "cross", "robustness", "calibration", "distributions",
            "frames", "worst"]


class _Tables(HTMLParser):
    """Every <table data-table=...>: {(run, key): {"columns": [...], "rows": [[...], ...]}}, plus each section's
    text per run and every src/href."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[tuple[str, str], dict] = {}
        self.sections: dict[str, dict[str, str]] = {}
        self.links: list[tuple[str, str, str]] = []
        self._table = None
        self._row = None
        self._cell = None
        self._section = None
        self._run = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for name in ("src", "href"):
            if name in a:
                self.links.append((tag, name, a[name] or ""))
        if tag == "section" and "data-section" in a:
            self._section = a["data-section"]
            self.sections[self._section] = {}
        elif tag == "div" and a.get("class") == "run-block":
            self._run = a["data-run"]
            self.sections[self._section][self._run] = ""
        elif tag == "table" and "data-table" in a:
            self._table = {"columns": [], "rows": []}
            self.tables[(a["data-run"], a["data-table"])] = self._table
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._table["columns"]:
                self._table["rows"].append(self._row)
            else:
                self._table["columns"] = self._row
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag == "section":
            self._section = self._run = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self._section and self._run:
            self.sections[self._section][self._run] += data


def _parse(html: str) -> _Tables:
    parser = _Tables()
    parser.feed(html)
    return parser


def _md_table(md: str, header_start: str) -> list[list[str]]:
    """The rows of the first Markdown table whose header line starts with ``header_start``."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return rows


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """A run with every table, and its report."""
    root = tmp_path_factory.mktemp("report")
    folder = make_run(root / "run-a")
    code = _main("report", folder, "-o", root / "out")
    assert code == 0
    return folder, root / "out"


def _main(*args) -> int:
    from fakebench.cli import main

    return main([str(a) for a in args])


def test_report_of_a_run_exits_0_and_writes_html_md_and_figures(tmp_path, capsys):
    folder = make_run(tmp_path / "run-x", tables={"evaluation", "scores", "metrics"})
    code, out, err = run(capsys, "report", folder, "-o", tmp_path / "rep")
    assert code == 0, err
    assert "index.html" in out
    assert (tmp_path / "rep" / "index.html").is_file() and (tmp_path / "rep" / "report.md").is_file()
    pngs = sorted((tmp_path / "rep" / "figures").glob("*.png"))
    assert {p.name for p in pngs} >= {"run-x-roc.png", "run-x-robustness.png", "run-x-calibration.png",
                                      "run-x-distributions.png"}
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_detector_auc_cells_are_the_evaluation_table_rounded_as_shown(full):
    folder, out = full
    rows, provenance = read_table(folder / "evaluation" / "evaluation.parquet")
    assert provenance.config["shortcut"]["found"] is True
    clean = {(r["detector"], r["generator"]): r for r in rows
             if r["perturbation"] == "none" and r["detector"] != "shortcut"}
    html = _parse((out / "index.html").read_text())
    table = html.tables[("run-a", "detectors")]
    assert table["columns"][:4] == ["detector", "generator", "AUC", "EER"]
    shown = {(r[0], r[1]): r for r in table["rows"]}
    assert set(shown) == set(clean)
    md = {(r[0], r[1]): r for r in _md_table((out / "report.md").read_text(), "| detector | generator | AUC")}
    assert set(md) == set(clean)
    for key, r in clean.items():
        want = f"{r['auc']:.2f} [{r['auc_ci_low']:.2f}, {r['auc_ci_high']:.2f}]"
        assert shown[key][2] == want == md[key][2]
        assert shown[key][3].startswith(f"{r['eer']:.2f} [")
        assert shown[key][4].startswith(f"{r['ap']:.2f} [")
        assert shown[key][5].startswith(f"{r['tpr_at_1fpr']:.2f} [")
        assert shown[key][7] == f"{r['n_real']} / {r['n_fake']}"
    robustness = {(r[0], r[1]): r[2] for r in html.tables[("run-a", "robustness")]["rows"]}
    for r in rows:
        if r["generator"] == "all" and r["detector"] != "shortcut":
            assert robustness[(r["detector"], r["perturbation"])] == fmt_ci(r["auc"], r["auc_ci_low"],
                                                                             r["auc_ci_high"], 2)
    calibration = {r[0]: r for r in html.tables[("run-a", "calibration")]["rows"]}
    for (det, gen), r in clean.items():
        if gen == "all":
            assert calibration[det][1] == f"{r['ece']:.3f}" and calibration[det][2] == f"{r['brier']:.3f}"


def test_generator_table_holds_the_metric_means_and_the_fid_substitute(full):
    folder, out = full
    metrics, _ = read_table(folder / "metrics.parquet")
    html = _parse((out / "index.html").read_text())
    table = html.tables[("run-a", "generators")]
    assert table["columns"] == ["measure", "real", "desync", "static"]
    by_measure = {r[0]: r[1:] for r in table["rows"]}
    assert by_measure["clips"] == ["12", "12", "12"]
    for column, group in enumerate(["real", "desync", "static"]):
        part = [m for m in metrics if (m["generator"] or "real") == group]
        mean, low, high, _ = mean_ci([m["sync_confidence"] for m in part], [m["identity"] for m in part])
        assert by_measure["sync confidence"][column] == fmt_ci(mean, low, high)
        assert by_measure["sync confidence"][column].startswith(fmt(sum(m["sync_confidence"] for m in part)
                                                                    / len(part)))
    compare, _ = read_table(folder / "compare.parquet")
    fd = {r["generator"]: r for r in compare if r["metric"] == "fd_dlib"}
    fid_row = by_measure["FID (substitute: fd_dlib)"]
    assert fid_row[0] == "(reference)"
    assert fid_row[1] == fmt_ci(fd["desync"]["value"], fd["desync"]["ci_low"], fd["desync"]["ci_high"])
    assert by_measure["PSNR (dB)"][0] == "–"  # no PSNR for real clips: nothing is made up
    text = html.sections["run"]["run-a"]
    assert "FID uses fd_dlib: Inception weights not found" in text
    assert "cd" * 32 in text  # the weights' SHA-256
    assert "SYNTHETIC REFERENCE" in text


def test_shortcut_verdict_comes_first_among_results_and_names_its_carrier(full):
    _, out = full
    html_text = (out / "index.html").read_text()
    html = _parse(html_text)
    assert list(html.sections) == SECTIONS
    verdict = html.sections["shortcut"]["run-a"]
    assert "SHORTCUT FOUND" in verdict and "0.91 [0.84, 0.97]" in verdict and "duration_s" in verdict
    assert 'data-verdict="alarm"' in html_text
    md = (out / "report.md").read_text()
    assert md.index("## 2. Shortcut check") < md.index("## 3. Generators") < md.index("## 4. Detectors")
    assert "SHORTCUT FOUND" in md
    assert md.index("SYNTHETIC REFERENCE") < md.index("## 1. What was run")  # the banner tops the report


def test_html_is_self_contained(full):
    _, out = full
    text = (out / "index.html").read_text()
    html = _parse(text)
    assert html.links, "no images or links at all"
    for tag, attribute, value in html.links:
        assert value.startswith(("data:image/png;base64,", "#")), (tag, attribute, value[:60])
    assert not re.search(r"<script[^>]*\bsrc=", text, re.I)
    assert not re.search(r"<link\b", text, re.I)
    assert not re.search(r"@import|url\(|https?://", text, re.I)
    assert text.count("<img ") == 7  # roc, cross, robustness, calibration, distributions, frames, worst
    # the Markdown links the PNG files, relative to report.md
    md = (out / "report.md").read_text()
    linked = re.findall(r"!\[[^\]]*\]\((figures/[^)]+\.png)\)", md)
    assert len(linked) == text.count("<img ")
    for link in linked:
        assert (out / link).is_file()


def test_missing_tables_say_not_run_and_nothing_is_invented(tmp_path, capsys):
    only_json = tmp_path / "bare"
    only_json.mkdir()
    (only_json / "run.json").write_text(json.dumps({"name": "bare", "seed": 3}))
    no_tables = make_run(tmp_path / "no-tables", tables=set(), synthetic=False)
    code, _, err = run(capsys, "report", only_json, no_tables, "-o", tmp_path / "rep")
    assert code == 0, err
    html = _parse((tmp_path / "rep" / "index.html").read_text())
    for section in SECTIONS[1:]:
        for name in ("bare", "no-tables"):
            text = html.sections[section][name]
            if section == "frames" and name == "no-tables":  # a manifest, but no clips on disk
                assert "could be read" in text and "not run" in text
            else:
                assert "not run" in text, (section, name, text)
    assert "SYNTHETIC REFERENCE" not in (tmp_path / "rep" / "report.md").read_text()
    assert not re.search(r"\d\.\d\d \[", (tmp_path / "rep" / "report.md").read_text())  # no interval anywhere
    assert not list((tmp_path / "rep").glob("figures/*.png"))  # no figure drawn from nothing


def test_empty_tables_are_reported_as_empty_not_as_numbers(tmp_path):
    from fakebench.report import write_report
    from fakebench.tables import Provenance, write_table

    folder = make_run(tmp_path / "empty", tables={"metrics"})
    for name in ("metrics.parquet", "compare.parquet", "evaluation/evaluation.parquet", "evaluation/scores.parquet",
                 "evaluation/cross_generator.parquet", "evaluation/evidence.parquet"):
        write_table(folder / name, [], Provenance.make("x"))
    index = write_report([folder], tmp_path / "rep")
    html = _parse(index.read_text())
    assert "holds no rows" in html.sections["detectors"]["empty"]
    assert "holds no rows" in html.sections["generators"]["empty"]
    assert "no misclassified clips were recorded" in html.sections["worst"]["empty"]


def test_two_runs_go_side_by_side_each_labelled(tmp_path):
    from fakebench.report import write_report

    a = make_run(tmp_path / "first" / "run", tables={"evaluation", "metrics"})
    b = make_run(tmp_path / "second" / "run", tables={"evaluation"}, synthetic=False, seed=5)
    index = write_report([a, b], tmp_path / "rep")
    html = _parse(index.read_text())
    for section in SECTIONS:
        assert list(html.sections[section]) == ["run", "run-2"], section  # folder names, made unique
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "### 4.1 run" in md and "### 4.2 run-2" in md
    first = {(r[0], r[1]): r[2] for r in html.tables[("run", "detectors")]["rows"]}
    second = {(r[0], r[1]): r[2] for r in html.tables[("run-2", "detectors")]["rows"]}
    rows_b, _ = read_table(b / "evaluation" / "evaluation.parquet")
    for r in rows_b:
        if r["perturbation"] == "none" and r["detector"] != "shortcut":
            assert second[(r["detector"], r["generator"])].startswith(f"{r['auc']:.2f}")
    assert first != second
    assert "not run" in html.sections["generators"]["run-2"]
    assert {p.name for p in (tmp_path / "rep" / "figures").glob("*.png")} >= {"run-robustness.png",
                                                                                "run-2-robustness.png"}


@pytest.mark.parametrize("case", ["no-run-json", "missing", "bad-json"])
def test_a_folder_that_is_not_a_run_exits_2_with_one_line(tmp_path, capsys, case):
    folder = tmp_path / "thing"
    if case != "missing":
        folder.mkdir()
    if case == "bad-json":
        (folder / "run.json").write_text("{not json")
    good = make_run(tmp_path / "good", tables=set())
    code, out, err = run(capsys, "report", good, folder, "-o", tmp_path / "rep")
    assert_user_error(code, out, err, str(folder))
    assert not (tmp_path / "rep" / "index.html").exists()


def test_an_output_that_is_a_file_exits_2(tmp_path, capsys):
    good = make_run(tmp_path / "good", tables=set())
    (tmp_path / "taken").write_text("x")
    code, out, err = run(capsys, "report", good, "-o", tmp_path / "taken")
    assert_user_error(code, out, err, "taken")


def test_a_table_without_its_columns_exits_2(tmp_path, capsys):
    from fakebench.tables import Provenance, write_table

    good = make_run(tmp_path / "good", tables=set())
    write_table(good / "evaluation" / "evaluation.parquet", [{"what": 1}], Provenance.make("evaluation"))
    code, out, err = run(capsys, "report", good, "-o", tmp_path / "rep")
    assert_user_error(code, out, err, "evaluation.parquet", "auc")


def test_numbers_are_rounded_sensibly_and_intervals_need_five_identities():
    assert fmt(None) == fmt(float("nan")) == fmt(math.inf) == "–"
    assert [fmt(v) for v in (0.93456, 12.345, 123.45, 0.001234, 0.0001234, -3e-8, 31.7, 0, 123456.7)] == [
        "0.935", "12.3", "123", "0.00123", "1.23e-04", "-3.00e-08", "31.7", "0", "123,457"]
    assert fmt_ci(0.934, 0.881, 0.968, 2) == "0.93 [0.88, 0.97]"
    assert fmt_ci(0.934, None, 0.968, 2) == "0.93"
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, None]
    mean, low, high, n = mean_ci(values, ["a", "a", "b", "c", "d", "e", "f"])
    assert n == 6 and mean == pytest.approx(3.5) and low < mean < high
    assert mean_ci(values, ["a", "a", "b", "c", "d", "e", "f"]) == (mean, low, high, n)  # seeded
    assert mean_ci([1.0, 2.0, 3.0], ["a", "b", "c"])[1:3] == (None, None)
    assert mean_ci([None, float("nan")]) == (None, None, None, 0)


def test_expression_rows_and_the_per_emotion_table_are_the_runs_numbers(full, tmp_path):
    """A run whose fakes were made with emotions and that measured expression: the generators table summarises
    the measured emotions and a few AUs per group, and section 4 has one row per detector and emotion of the fakes,
    evaluation/per_emotion.parquet's numbers with n_fake matching the manifest. Without either, neither shows."""
    import pandas as pd

    folder = make_run(tmp_path / "run-e", emotions=True)
    assert _main("report", folder, "-o", tmp_path / "out") == 0
    html = _parse((tmp_path / "out" / "index.html").read_text())
    table = html.tables[("run-e", "generators")]
    assert table["columns"] == ["measure", "real", "desync", "static"]
    by_measure = {r[0]: r[1:] for r in table["rows"]}
    metrics, _ = read_table(folder / "metrics.parquet")
    manifest = pd.read_parquet(folder / "corpus" / "manifest.parquet").set_index("clip_id")
    for column, group in enumerate(["real", "desync", "static"]):
        part = [m for m in metrics if (m["generator"] or "real") == group]
        ids = [m["identity"] for m in part]
        mean, low, high, _ = mean_ci([float(m["expression_emotion"] != "neutral") for m in part], ids)
        assert by_measure["expression not neutral (share)"][column] == fmt_ci(mean, low, high, 2)
        mean, low, high, _ = mean_ci([m["au12"] for m in part], ids)
        assert by_measure["AU12 lip corner puller (mean)"][column] == fmt_ci(mean, low, high, 2)
    # known per-clip values (report_fixture.expression_of): one real clip of 12 reads happy; the static fakes
    # were asked happy, sad and neutral in turn and read happy, neutral, neutral; desync's all neutral
    assert by_measure["expression not neutral (share)"][:2] == ["0.08 [0.00, 0.25]", "0.00 [0.00, 0.00]"]
    assert by_measure["most frequent expressions"] == ["neutral 92 %, happy 8 %", "neutral 100 %",
                                                       "neutral 67 %, happy 33 %"]
    assert by_measure["expression measured as asked (share)"][:2] == ["–", "–"]  # nothing was asked of them
    assert by_measure["expression measured as asked (share)"][2].startswith("0.67 [")
    shown_aus = [m for m in by_measure if m.startswith("AU")]
    assert shown_aus == ["AU12 lip corner puller (mean)", "AU04 brow lowerer (mean)",
                         "AU15 lip corner depressor (mean)", "AU26 jaw drop (mean)"]  # the rest are all 0

    rows, _ = read_table(folder / "evaluation" / "per_emotion.parquet")
    clean = [r for r in rows if r["perturbation"] == "none" and r["detector"] != "shortcut"]
    emotion_table = html.tables[("run-e", "per_emotion")]
    assert emotion_table["columns"][:3] == ["detector", "emotion of the fakes", "AUC"]
    shown = {(r[0], r[1]): r for r in emotion_table["rows"]}
    assert set(shown) == {(r["detector"], r["emotion"]) for r in clean}
    assert [k[1] for k in shown if k[0] == "blink"] == ["neutral", "happy", "sad", "not set"]  # EMOTIONS order
    fakes = manifest[manifest["label"] == "fake"]
    for r in clean:
        cells = shown[(r["detector"], r["emotion"])]
        assert cells[2] == fmt_ci(r["auc"], r["auc_ci_low"], r["auc_ci_high"], 2)
        n_fake = int((fakes["emotion"].fillna("not set") == r["emotion"]).sum())
        assert cells[5] == f"{int((manifest['label'] == 'real').sum())} / {n_fake}" == f"{r['n_real']} / {r['n_fake']}"
    assert {r["emotion"]: r["n_fake"] for r in clean if r["detector"] == "sync"} == {
        "neutral": 4, "happy": 4, "sad": 4, "not set": 12}

    _, out = full  # the run without emotions or expression: nothing of either
    plain = _parse((out / "index.html").read_text())
    assert ("run-a", "per_emotion") not in plain.tables
    assert not any(r[0].startswith(("expression", "AU")) for r in plain.tables[("run-a", "generators")]["rows"])
