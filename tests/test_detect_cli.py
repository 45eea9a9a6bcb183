"""`train-detector`, `evaluate` and `detect` end to end on a corpus the test writes (warp reals, desync fakes)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
from helpers import assert_user_error, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus(talking_set, tmp_path_factory) -> Path:
    """The talking set as files and a CSV (people 0-3 train, 4-5 val, 6-7 test), imported as a corpus."""
    from fakebench.cli import main

    root = tmp_path_factory.mktemp("detect-corpus")
    rows = []
    for kind in ("real", "desync"):
        for item in talking_set[kind]:
            person = int(item.identity.removeprefix("person"))
            split = "train" if person < 4 else "val" if person < 6 else "test"
            path = root / "media" / f"{item.clip_id}.mp4"
            path.parent.mkdir(exist_ok=True)
            from fakebench.media import write_clip

            write_clip(path, item.clip)
            rows.append({"path": f"media/{path.name}", "label": "real" if kind == "real" else "fake",
                         "identity": item.identity, "generator": "" if kind == "real" else "desync", "split": split})
    with open(root / "clips.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert main(["corpus", "import", "folder", str(root / "clips.csv"), "-o", str(root / "corpus")]) == 0
    return root / "corpus"


def test_train_evaluate_and_detect(corpus, tmp_path, capsys):
    code, out, err = run(capsys, "train-detector", corpus, "-d", "sync", "-o", tmp_path / "sync")
    assert code == 0, err
    saved = json.loads((tmp_path / "sync" / "detector.json").read_text())
    assert saved["info"]["n_train"] == {"real": 8, "fake": 8} and saved["info"]["n_val"] == {"real": 4, "fake": 4}

    code, out, err = run(capsys, "evaluate", tmp_path / "sync", corpus, "-o", tmp_path / "run", "--n-boot", "200",
                         "--perturb", "audio_offset:2")
    assert code == 0, err
    table = pd.read_parquet(tmp_path / "run" / "evaluation.parquet")
    clean = table[(table.detector == "sync") & (table.perturbation == "none") & (table.generator == "all")].iloc[0]
    assert clean.auc >= 0.85 and clean.n_real == 4 and clean.n_fake == 4 and clean.n_identities == 2
    assert {"auc_ci_low", "auc_ci_high", "eer", "ap", "tpr_at_1fpr", "tpr_at_5fpr", "ece"} <= set(table.columns)
    assert "shortcut" in set(table.detector)  # the probe always runs
    assert "audio_offset:2" in set(table.perturbation)
    scores = pd.read_parquet(tmp_path / "run" / "scores.parquet")
    assert len(scores[scores.detector == "sync"]) == 16  # 8 clips, clean and perturbed
    run_info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run_info["shortcut"]["ran"] and run_info["failures"] == []

    # the same command again resumes: nothing new to score, same table
    code, _, err = run(capsys, "evaluate", tmp_path / "sync", corpus, "-o", tmp_path / "run", "--n-boot", "200",
                       "--perturb", "audio_offset:2")
    assert code == 0, err

    fake = corpus.parent / "media" / "desync6_0.mp4"
    code, out, err = run(capsys, "detect", fake, "-d", tmp_path / "sync", "--json")
    assert code == 0, err
    verdict = json.loads(out.splitlines()[-1])
    assert set(verdict) == {"clip", "p_fake", "decision", "evidence", "detectors"}
    assert verdict["detectors"][0]["name"] == "sync" and verdict["detectors"][0]["status"] == "ok"
    assert verdict["evidence"] and ("lags" in verdict["evidence"][0] or "leads" in verdict["evidence"][0]
                                    or "unknown" in verdict["evidence"][0])


def test_bad_inputs_are_one_line_errors(corpus, tmp_path, capsys):
    assert_user_error(*run(capsys, "train-detector", corpus, "-d", "nonsense", "-o", tmp_path / "x"), "nonsense")
    assert_user_error(*run(capsys, "evaluate", tmp_path / "missing", corpus, "-o", tmp_path / "r"),
                      "saved detector")
    assert_user_error(*run(capsys, "detect", tmp_path / "x.mp4"), "no such file")
    code, out, err = run(capsys, "train-detector", corpus, "-d", "sync", "-o", tmp_path / "d")
    assert code == 0, err
    assert_user_error(*run(capsys, "evaluate", tmp_path / "d", corpus, "-o", tmp_path / "r", "--perturb",
                           "blur:9"), "blur")


def test_clips_that_cannot_be_scored_are_listed_and_exit_1(corpus, tmp_path, capsys):
    import shutil

    from fakebench.media import Clip, write_clip

    code, _, err = run(capsys, "train-detector", corpus, "-d", "sync", "-o", tmp_path / "sync")
    assert code == 0, err
    copy = tmp_path / "corpus"
    shutil.copytree(corpus, copy, symlinks=False)
    manifest = pd.read_parquet(copy / "manifest.parquet")
    broken = copy / manifest[manifest.split == "test"].iloc[0]["path"]
    broken.unlink()
    broken.write_bytes(b"not a video any more")
    code, _, err = run(capsys, "evaluate", tmp_path / "sync", copy, "-o", tmp_path / "run", "--n-boot", "50")
    assert code == 1 and "could not be made" in err, err
    failures = json.loads((tmp_path / "run" / "run.json").read_text())["failures"]
    assert any(f["detector"] == "sync" for f in failures)

    mute = tmp_path / "mute.mp4"
    source = pd.read_parquet(corpus / "manifest.parquet").iloc[0]["path"]
    from fakebench.media import read_clip

    frames = read_clip(corpus / source).frames
    write_clip(mute, Clip(frames=frames, fps=25.0))
    code, out, err = run(capsys, "detect", mute, "-d", tmp_path / "sync", "--json")
    assert code == 1
    assert json.loads(out.splitlines()[-1])["detectors"][0]["status"] == "no audio"


def test_detect_uses_the_shipped_defaults_and_says_so(talking_set, tmp_path, capsys):
    from fakebench.detection import default_detector_folders
    from fakebench.media import write_clip

    names = [p.name for p in default_detector_folders()]
    assert {"sync", "blink"} <= set(names)
    still = tmp_path / "still.mp4"
    write_clip(still, talking_set["static"][0].clip)
    code, out, err = run(capsys, "detect", still, "--json")
    assert code == 0, err
    assert "using the default detectors" in err and "MODEL_CARD.md" in err
    verdict = json.loads(out.splitlines()[-1])
    assert [d["name"] for d in verdict["detectors"]] == names
    blink = next(d for d in verdict["detectors"] if d["name"] == "blink")
    assert blink["status"] == "ok" and blink["evidence"][0].startswith("no blink in")
