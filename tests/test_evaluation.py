"""fakebench.evaluation: metrics against hand-computed answers, bootstrap behaviour, breakdowns, score files."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from fakebench import evaluation as ev
from fakebench.errors import InputFileError
from fakebench.tables import Provenance, read_table

# Table A: 2 real clips (0.3, 0.6), 3 fake clips (0.4, 0.7, 0.9).
# Descending: 0.9 F, 0.7 F, 0.6 R, 0.4 F, 0.3 R. ROC points (FPR, TPR): (0,0) (0,1/3) (0,2/3) (1/2,2/3) (1/2,1)
# (1,1). AUC: fake-real pairs won: 0.4>0.3, 0.7>both, 0.9>both = 5 of 6 -> 5/6.
# EER: d = FNR - FPR = 1, 2/3, 1/3, -1/6, ...: crossing between (0,2/3) and (1/2,2/3) at t = (1/3)/(1/3+1/6) = 2/3,
# FPR = 2/3 * 1/2 = 1/3 = FNR -> EER 1/3; the nearer bracketing point is the second (t >= 1/2): threshold 0.6.
# AP: recall steps 1/3 at precision 1 (0.9), 1 (0.7), 3/4 (0.4) -> 1/3 + 1/3 + 1/4 = 11/12.
# TPR at 1 % and 5 % FPR: last point with FPR <= target is (0, 2/3), the next (1/2, 2/3): 2/3.
A_LABELS = [0, 0, 1, 1, 1]
A_SCORES = [0.3, 0.6, 0.4, 0.7, 0.9]

# Table B (a tie across classes): real 0.5, 0.2; fake 0.5, 0.9. ROC points: (0,0) (0,1/2) (1/2,1) (1,1): the tie
# makes the diagonal step (0,1/2) -> (1/2,1). AUC: 0.9 beats both (2), 0.5 ties 0.5 (1/2), 0.5 beats 0.2 (1):
# 3.5/4 = 0.875. TPR at FPR 0.25: 1/2 + (0.25/0.5)(1 - 1/2) = 0.75; at 0.01: 1/2 + 0.02 * 1/2 = 0.51.
# EER: d = 1, 1/2, -1/2: t = 1/2, FPR = 1/4 = FNR; t >= 1/2 -> threshold of the second point, 0.5.
B_LABELS = [0, 0, 1, 1]
B_SCORES = [0.5, 0.2, 0.5, 0.9]


def test_table_a_against_hand_computation():
    row = ev.evaluate_scores(A_LABELS, A_SCORES, None, threshold=0.5, n_boot=0)
    assert set(row) == set(ev.RESULT_KEYS)
    assert row["auc"] == pytest.approx(5 / 6)
    assert row["eer"] == pytest.approx(1 / 3)
    assert row["eer_threshold"] == pytest.approx(0.6)
    assert row["ap"] == pytest.approx(11 / 12)
    assert row["tpr_at_1fpr"] == pytest.approx(2 / 3)
    assert row["tpr_at_5fpr"] == pytest.approx(2 / 3)
    assert row["fake_ratio"] == pytest.approx(3 / 5)
    # threshold 0.5 (score >= 0.5 is fake): predictions 0,1,0,1,1 -> 3 of 5 right; recall real 1/2, fake 2/3.
    assert row["accuracy"] == pytest.approx(3 / 5)
    assert row["balanced_accuracy"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert (row["n_real"], row["n_fake"], row["n_identities"]) == (2, 3, None)
    assert row["auc_ci_low"] is None and ev.NOTE_NO_BOOTSTRAP in row["notes"]
    json.dumps(row, allow_nan=False)


def test_table_b_tie_interpolation():
    assert ev.tpr_at_fpr(B_LABELS, B_SCORES, 0.25) == pytest.approx(0.75)
    assert ev.tpr_at_fpr(B_LABELS, B_SCORES, 0.01) == pytest.approx(0.51)
    row = ev.evaluate_scores(B_LABELS, B_SCORES, None, n_boot=0)
    assert row["auc"] == pytest.approx(0.875)
    assert row["tpr_at_1fpr"] == pytest.approx(0.51)
    assert row["tpr_at_5fpr"] == pytest.approx(0.55)  # 1/2 + 0.1 * 1/2
    assert ev.equal_error_rate(B_LABELS, B_SCORES) == pytest.approx((0.25, 0.5))
    assert ev.NOTE_DEFAULT_THRESHOLD in row["notes"]


def test_eer_of_separated_and_identical_scores():
    # Separated: reals 0.2, fakes 0.8. ROC (0,0) (0,1) (1,1); d = 1, 0 -> EER 0 exactly at threshold 0.8.
    eer, thr = ev.equal_error_rate([0, 0, 0, 1, 1, 1], [0.2, 0.2, 0.2, 0.8, 0.8, 0.8])
    assert (eer, thr) == (0.0, 0.8)
    # Identical: ROC (0,0) (1,1); d = 1, -1 -> crossing halfway, EER 1/2; the infinite threshold is never chosen.
    eer, thr = ev.equal_error_rate([0, 0, 1, 1], [0.5] * 4)
    assert (eer, thr) == (0.5, 0.5)
    row = ev.evaluate_scores([0, 0, 1, 1], [0.5] * 4, None, n_boot=0)
    assert row["auc"] == 0.5 and row["tpr_at_1fpr"] == pytest.approx(0.01)


def test_eer_within_bracketing_points_on_random_scores():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    s = rng.normal(y * 0.8, 1.0)
    eer, thr = ev.equal_error_rate(y, s)
    pred = s >= thr
    fpr_at, fnr_at = pred[y == 0].mean(), (~pred[y == 1]).mean()
    # the EER lies between FPR and FNR at the chosen threshold's operating point (a bracketing point)
    assert min(fpr_at, fnr_at) - 1e-12 <= eer <= max(fpr_at, fnr_at) + 1e-12
    assert abs(fpr_at - fnr_at) <= 2 / min((y == 0).sum(), (y == 1).sum())


def test_calibration_by_hand():
    # Bins of width 0.1: bin 2 holds 0.25, 0.25 (labels 0, 1): |1/2 - 0.25| * 2/4 = 0.125; bin 6 holds 0.65
    # (label 1): 0.35 * 1/4 = 0.0875; bin 9 holds 0.95 (label 1): 0.05 * 1/4 = 0.0125. ECE = 0.225.
    # Brier: (0.25^2 + 0.75^2 + 0.35^2 + 0.05^2) / 4 = 0.75 / 4 = 0.1875.
    y, s = [0, 1, 1, 1], [0.25, 0.25, 0.65, 0.95]
    assert ev.expected_calibration_error(y, s) == pytest.approx(0.225)
    row = ev.evaluate_scores(y, s, None, n_boot=0)
    assert row["ece"] == pytest.approx(0.225)
    assert row["brier"] == pytest.approx(0.1875)
    expected_ll = -(math.log(0.75) + math.log(0.25) + math.log(0.65) + math.log(0.95)) / 4
    assert row["log_loss"] == pytest.approx(expected_ll)
    curve = ev.reliability_curve(y, s)
    assert curve["prob_true"] == pytest.approx([0.5, 1.0, 1.0])
    assert curve["prob_pred"] == pytest.approx([0.25, 0.65, 0.95])
    assert curve["count"] == [2, 1, 1]
    # ECE is the count-weighted gap of the reliability curve
    gaps = np.abs(np.subtract(curve["prob_true"], curve["prob_pred"]))
    assert np.dot(gaps, curve["count"]) / 4 == pytest.approx(row["ece"])
    # log loss clips 0 and 1
    assert math.isfinite(ev.evaluate_scores([0, 1], [1.0, 0.0], None, n_boot=0)["log_loss"])


def test_scores_outside_unit_interval_have_no_calibration():
    row = ev.evaluate_scores([0, 1, 0, 1], [-2.0, 3.0, -1.0, 0.5], None, n_boot=0)
    assert row["auc"] == 1.0 and row["ece"] is None and row["brier"] is None and row["log_loss"] is None
    assert ev.NOTE_NOT_PROBABILITIES in row["notes"]


def test_one_label_split():
    row = ev.evaluate_scores([0, 0, 0], [0.1, 0.2, 0.7], ["a", "b", "c"], threshold=0.5)
    for key in ("auc", "auc_ci_low", "auc_ci_high", "eer", "eer_threshold", "ap", "tpr_at_1fpr", "tpr_at_5fpr",
                "balanced_accuracy"):
        assert row[key] is None, key
    assert ev.NOTE_ONE_LABEL in row["notes"]
    assert row["accuracy"] == pytest.approx(2 / 3)
    assert row["ece"] is not None and row["n_fake"] == 0 and row["fake_ratio"] == 0.0
    with pytest.raises(ValueError, match="one label only"):
        ev.choose_threshold([1, 1], [0.3, 0.4], "eer")


def test_bad_inputs():
    with pytest.raises(ValueError, match="finite"):
        ev.evaluate_scores([0, 1], [0.1, float("nan")], None)
    with pytest.raises(ValueError, match="0 \\(real\\) or 1"):
        ev.evaluate_scores([0, 2], [0.1, 0.2], None)
    assert ev.evaluate_scores(["real", "fake"], [0.1, 0.9], None, n_boot=0)["auc"] == 1.0


def test_choose_threshold_rules():
    # Table A: Youden's J = TPR - FPR at thresholds 0.9: 1/3, 0.7: 2/3, 0.6: 1/6, 0.4: 1/2, 0.3: 0 -> 0.7.
    assert ev.choose_threshold(A_LABELS, A_SCORES, "youden") == pytest.approx(0.7)
    assert ev.choose_threshold(A_LABELS, A_SCORES, "eer") == pytest.approx(0.6)
    assert ev.choose_threshold(A_LABELS, A_SCORES, 0.5) == 0.5
    with pytest.raises(ValueError, match="rule"):
        ev.choose_threshold(A_LABELS, A_SCORES, "best")
    # a validation threshold applied to test scores
    row = ev.evaluate_scores(B_LABELS, B_SCORES, None, threshold=ev.choose_threshold(A_LABELS, A_SCORES, "youden"),
                             n_boot=0)
    assert row["threshold"] == pytest.approx(0.7) and row["accuracy"] == pytest.approx(3 / 4)
    assert ev.NOTE_DEFAULT_THRESHOLD not in row["notes"]


def test_weighted_bootstrap_curves_match_sklearn_sample_weight():
    rng = np.random.default_rng(1)
    n = 400
    y = rng.integers(0, 2, n)
    s = np.round(rng.normal(y * 0.7, 1.0), 1)  # rounded: many ties
    order = np.argsort(-s, kind="stable")
    ss = s[order]
    last = np.flatnonzero(np.r_[ss[1:] != ss[:-1], True])
    w = rng.integers(0, 3, (4, n)).astype(float)
    w[0] = 1.0
    out = ev._weighted_curves(y[order].astype(float), last, w[:, order])
    for k in range(4):
        assert out["auc"][k] == pytest.approx(roc_auc_score(y, s, sample_weight=w[k]), abs=1e-12)
        assert out["ap"][k] == pytest.approx(average_precision_score(y, s, sample_weight=w[k]), abs=1e-12)
        # integer weights = repeated clips
        yr, sr = np.repeat(y, w[k].astype(int)), np.repeat(s, w[k].astype(int))
        assert out["eer"][k] == pytest.approx(ev.equal_error_rate(yr, sr)[0], abs=1e-12)
        assert out["tpr_at_1fpr"][k] == pytest.approx(ev.tpr_at_fpr(yr, sr, 0.01), abs=1e-12)
        assert out["tpr_at_5fpr"][k] == pytest.approx(ev.tpr_at_fpr(yr, sr, 0.05), abs=1e-12)


def _binormal(rng, d, n_ids, clips, sigma_id=0.0):
    """n_ids real and n_ids fake identities with `clips` clips each; score = label*d + identity effect + noise,
    with total variance 1 per clip when sigma_id = 0."""
    y = np.repeat([0, 1], n_ids * clips)
    ident = np.repeat(np.arange(2 * n_ids), clips)
    effect = rng.normal(0, sigma_id, 2 * n_ids)[ident]
    return y, y * d + effect + rng.normal(0, 1, len(y)), ident


def test_bootstrap_interval_covers_known_auc():
    # binormal scores N(0,1) vs N(d,1): AUC = Phi(d / sqrt 2)
    d = 1.0
    truth = 0.5 * (1 + math.erf(d / math.sqrt(2) / math.sqrt(2)))
    rng = np.random.default_rng(2024)
    repeats, covered = 120, 0
    for r in range(repeats):
        y, s, ident = _binormal(rng, d, n_ids=40, clips=3)
        ci, notes = ev.bootstrap_intervals(y, s, ident, n_boot=300, seed=r)
        assert notes == []
        low, high = ci["auc"]
        covered += low <= truth <= high
    assert 0.88 <= covered / repeats <= 0.99


def test_identity_resampling_widens_interval_for_clustered_clips():
    rng = np.random.default_rng(7)
    y, s, ident = _binormal(rng, 1.0, n_ids=30, clips=10, sigma_id=1.0)
    by_identity, _ = ev.bootstrap_intervals(y, s, ident, n_boot=500, seed=0)
    by_clip, notes = ev.bootstrap_intervals(y, s, None, n_boot=500, seed=0)
    assert ev.NOTE_NO_IDENTITIES in notes
    width_id = by_identity["auc"][1] - by_identity["auc"][0]
    width_clip = by_clip["auc"][1] - by_clip["auc"][0]
    assert width_id > 1.8 * width_clip
    for key in ("eer", "ap", "tpr_at_1fpr", "tpr_at_5fpr"):
        assert by_identity[key][0] <= by_identity[key][1]


def test_bootstrap_with_mixed_identities_is_seeded_and_keeps_both_classes():
    rng = np.random.default_rng(5)
    ident = np.repeat(np.arange(12), 6)
    y = np.tile([0, 0, 0, 1, 1, 1], 12)  # every identity has real and fake clips
    s = rng.normal(y, 1.0)
    a = ev.evaluate_scores(y, s, ident, n_boot=200, seed=1, extra_intervals=True)
    b = ev.evaluate_scores(y, s, ident, n_boot=200, seed=1, extra_intervals=True)
    c = ev.evaluate_scores(y, s, ident, n_boot=200, seed=2)
    assert a == b and a["auc_ci_low"] != c["auc_ci_low"]
    assert a["auc_ci_low"] <= a["auc"] <= a["auc_ci_high"]
    assert a["eer_ci_low"] <= a["eer"] <= a["eer_ci_high"]
    assert not any("skipped" in n for n in a["notes"])
    assert a["n_identities"] == 12


def test_too_few_identities_for_an_interval():
    y = [0] * 6 + [1] * 6
    s = np.linspace(0, 1, 12)
    ident = ["a", "b", "c"] * 2 + ["d", "e", "f", "g", "h", "i"]
    row = ev.evaluate_scores(y, s, ident, n_boot=100)
    assert row["auc"] == 1.0 and row["auc_ci_low"] is None and row["auc_ci_high"] is None
    assert ev.NOTE_FEW_IDENTITIES in row["notes"]


def test_video_aggregation():
    labels = [0, 0, 1, 1, 1, 0]
    scores = [0.2, 0.4, 0.9, 0.5, 0.8, 0.1]
    videos = ["r1", "r1", "f1", "f1", "f2", "r2"]
    y, s, ids, vid = ev.aggregate_videos(labels, scores, videos, ["p", "p", "p", "p", "q", "q"])
    assert vid.tolist() == ["f1", "f2", "r1", "r2"]
    assert y.tolist() == [1, 1, 0, 0] and s == pytest.approx([0.7, 0.8, 0.3, 0.1])
    assert ids.tolist() == ["p", "q", "p", "q"]
    row = ev.evaluate_videos(labels, scores, videos, n_boot=0)
    assert (row["n_real"], row["n_fake"], row["auc"]) == (2, 2, 1.0)
    with pytest.raises(ValueError, match="mixes clips"):
        ev.aggregate_videos([0, 1], [0.1, 0.2], ["v", "v"])


def _score_frame():
    rng = np.random.default_rng(11)
    rows = []
    for i in range(60):
        ident = f"id{i % 12}"
        rows.append({"clip_id": f"r{i}", "label": 0, "score": rng.normal(0, 1), "identity": ident,
                     "generator": "real" if i % 2 else ""})
        rows.append({"clip_id": f"a{i}", "label": 1, "score": rng.normal(2, 1), "identity": ident,
                     "generator": "sda"})
        rows.append({"clip_id": f"b{i}", "label": 1, "score": rng.normal(0.5, 1), "identity": ident,
                     "generator": "warp"})
    return pd.DataFrame(rows)


def test_per_generator_against_all_reals():
    df = _score_frame()
    table = ev.per_generator(df, n_boot=50)
    assert table["generator"].tolist() == ["all", "sda", "warp"]
    assert table["n_real"].tolist() == [60, 60, 60]
    assert table["n_fake"].tolist() == [120, 60, 60]
    sub = df[(df.label == 0) | (df.generator == "warp")]
    expected = ev.evaluate_scores(sub.label, sub.score, sub.identity, n_boot=50)
    got = table.set_index("generator").loc["warp"].to_dict()
    assert got["auc"] == pytest.approx(expected["auc"]) and got["auc_ci_low"] == pytest.approx(expected["auc_ci_low"])
    assert table.set_index("generator").loc["sda", "auc"] > table.set_index("generator").loc["warp", "auc"]


def test_cross_generator_matrix():
    a = _score_frame().assign(trained_on="sda")
    b = _score_frame().assign(trained_on="warp", score=lambda f: f.score * -1 + 2 * f.label)
    matrix = ev.cross_generator_matrix(pd.concat([a, b]))
    assert matrix.index.tolist() == ["sda", "warp"] and matrix.columns.tolist() == ["sda", "warp", "all"]
    for trained, frame in (("sda", a), ("warp", b)):
        expected = ev.per_generator(frame, n_boot=0).set_index("generator")["auc"]
        for tested in ("sda", "warp", "all"):
            assert matrix.loc[trained, tested] == pytest.approx(expected[tested])


def _rows(start, stop, detector="meso4"):
    return [{"clip_id": f"c{i:03d}", "detector": detector, "label": i % 2, "score": i / 100, "identity": f"p{i % 5}",
             "generator": "sda" if i % 2 else "real", "split": "test"} for i in range(start, stop)]


def test_score_writer_batches_merge_and_provenance(tmp_path):
    path = tmp_path / "scores.parquet"
    prov = Provenance.make("scores", config={"detector": "meso4"})
    with ev.ScoreWriter(path, prov, batch_size=4) as writer:
        writer.write_many(_rows(0, 10))
        parts = sorted(p.name for p in (tmp_path / "scores.parquet.partial").iterdir())
        assert parts == ["part-000000.parquet", "part-000001.parquet"]  # two batches of 4 flushed, 2 buffered
        assert writer.rows_written == 8
    assert not (tmp_path / "scores.parquet.partial").exists()
    rows, stored = read_table(path)
    assert [r["clip_id"] for r in rows] == [f"c{i:03d}" for i in range(10)]
    assert rows[3] == {"clip_id": "c003", "detector": "meso4", "label": 1, "score": 0.03, "identity": "p3",
                       "generator": "sda", "perturbation": "none", "split": "test"}
    assert stored == prov
    assert pq.ParquetFile(path).metadata.num_row_groups == 3


def test_score_writer_survives_kill_and_resumes(tmp_path):
    path = tmp_path / "scores.parquet"
    prov = Provenance.make("scores", config={"detector": "meso4"})
    killed = ev.ScoreWriter(path, prov, batch_size=4)
    killed.write_many(_rows(0, 10))  # the "kill": never closed; rows 8 and 9 were only buffered
    partial = tmp_path / "scores.parquet.partial"
    (partial / ".part-000002.parquet.deadbeef.tmp").write_bytes(b"half a file")  # an interrupted part write
    del killed
    assert not path.exists()
    assert ev.completed_keys(path) == {(f"c{i:03d}", "meso4", "none") for i in range(8)}

    resumed = ev.ScoreWriter(path, prov, batch_size=4)
    todo = [r for r in _rows(0, 14) if not resumed.is_done(r["clip_id"], r["detector"])]
    assert [r["clip_id"] for r in todo] == [f"c{i:03d}" for i in range(8, 14)]
    with pytest.raises(ValueError, match="already scored"):
        resumed.write(_rows(0, 1)[0])
    resumed.write_many(todo)
    resumed.close()
    table = pq.read_table(path).to_pandas()
    assert table["clip_id"].tolist() == [f"c{i:03d}" for i in range(14)]

    # a third run resumes from the finished file alone and appends
    again = ev.ScoreWriter(path, prov, batch_size=4)
    assert len(again.done) == 14
    again.write_many(_rows(0, 3, detector="spectrum"))
    again.close()
    table = pq.read_table(path).to_pandas()
    assert len(table) == 17 and table.duplicated(["clip_id", "detector", "perturbation"]).sum() == 0


def test_score_writer_kill_after_rename_does_not_duplicate(tmp_path):
    path = tmp_path / "scores.parquet"
    writer = ev.ScoreWriter(path, batch_size=3)
    writer.write_many(_rows(0, 6))
    writer.flush()
    saved = tmp_path / "saved"
    shutil.copytree(tmp_path / "scores.parquet.partial", saved)
    writer.close()
    shutil.copytree(saved, tmp_path / "scores.parquet.partial")  # as if killed before the partial folder went
    again = ev.ScoreWriter(path, batch_size=3)
    assert len(again.done) == 6
    again.close()
    assert pq.read_table(path).num_rows == 6


def test_score_writer_refuses_other_configuration_and_restarts(tmp_path):
    path = tmp_path / "scores.parquet"
    with ev.ScoreWriter(path, Provenance.make("scores", config={"a": 1})) as writer:
        writer.write_many(_rows(0, 2))
    with pytest.raises(InputFileError, match="another configuration"):
        ev.ScoreWriter(path, Provenance.make("scores", config={"a": 2}))
    with ev.ScoreWriter(path, Provenance.make("scores", config={"a": 2}), resume=False) as writer:
        assert writer.done == set()
        writer.write_many(_rows(5, 6))
    assert pq.read_table(path).column("clip_id").to_pylist() == ["c005"]
    with pytest.raises(ValueError, match="finite"):
        ev.ScoreWriter(tmp_path / "x.parquet").write({**_rows(0, 1)[0], "score": float("nan")})


def test_per_emotion_is_each_emotions_fakes_against_all_real_clips():
    """One row per emotion of the fakes (the expression metric's order, "not set" for fakes made without one), each
    exactly `evaluate_scores` on that emotion's fakes and every real clip, with the same identity bootstrap; a
    real clip's own emotion (an imported corpus may record one) does not matter."""
    import pandas as pd

    from fakebench.evaluation import NO_EMOTION, evaluate_scores, per_emotion

    rng = np.random.default_rng(4)
    rows = []
    for i in range(8):
        rows += [{"label": "real", "score": rng.uniform(0, 0.6), "identity": f"p{i}", "emotion": "ANG" if i else None,
                  "emotion_intensity": None} for _ in range(2)]
        for emotion, shift in (("sad", 0.5), ("happy", 0.1), (None, 0.3)):
            rows.append({"label": "fake", "score": rng.uniform(0, 0.6) + shift, "identity": f"p{i}",
                         "emotion": emotion, "emotion_intensity": 0.5 + i / 20 if emotion else None})
    df = pd.DataFrame(rows)
    table = per_emotion(df, threshold=0.5, n_boot=200, seed=3)
    assert table["emotion"].tolist() == ["happy", "sad", NO_EMOTION]
    assert table["n_fake"].tolist() == [8, 8, 8] and (table["n_real"] == 16).all()
    real = df["label"] == "real"
    for r in table.to_dict("records"):
        fakes = (df["label"] == "fake") & (df["emotion"].fillna(NO_EMOTION) == r["emotion"])
        part = df[real | fakes]
        want = evaluate_scores(part["label"], part["score"], part["identity"], threshold=0.5, n_boot=200, seed=3)
        assert {k: r[k] for k in ("auc", "auc_ci_low", "auc_ci_high", "eer", "n_identities")} == {
            k: want[k] for k in ("auc", "auc_ci_low", "auc_ci_high", "eer", "n_identities")}
        if r["emotion"] == NO_EMOTION:
            assert math.isnan(r["mean_intensity"])  # none recorded
        else:
            assert r["mean_intensity"] == pytest.approx(0.5 + 3.5 / 20)
    by = table.set_index("emotion")
    assert by.loc["sad", "auc"] > by.loc["happy", "auc"]  # the sad fakes scored higher: easier to tell
