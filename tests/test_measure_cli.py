"""`fakebench measure` and `fakebench compare` end to end on clips the test makes itself."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fakebench.cli import main
from fakebench.generators.base import create
from fakebench.media import write_image

pytestmark = pytest.mark.slow  # end to end: drives the CLI


@pytest.fixture(scope="module")
def clips(tmp_path_factory, astronaut, grace_hopper):
    """Two warp (talking) clips in real/, their static versions in fake/, and a +4-frame desync."""
    from fakebench.media import resample_audio
    from fakebench.speech import synthesize

    root = tmp_path_factory.mktemp("measure")
    (root / "real").mkdir()
    (root / "fake").mkdir()
    photos = {"astronaut": np.ascontiguousarray(astronaut[20:276, 100:356]),
              "grace": np.ascontiguousarray(grace_hopper[100:420, 100:420][::2, ::2])}
    texts = {"astronaut": "Place blue at F two now. Bin green by S nine again.",
             "grace": "Set white with P four please. Lay red in D seven soon."}
    for name, photo in photos.items():
        audio, sr, _ = synthesize(texts[name], voice="en-us")
        audio = resample_audio(audio, sr, 16000)
        write_image(root / f"{name}.png", photo)
        warp = create("warp", head_motion=False).generate(photo, audio, 16000, seed=1)
        warp.save(root / "real" / f"{name}.mp4")
        create("static").generate(photo, audio, 16000).save(root / "fake" / f"{name}.mp4")
        if name == "astronaut":
            create("desync", shift_frames=4).from_clip(warp.clip).save(root / "desync.mp4")
    return root


def run_json(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]


def test_measure_sync_and_blink_on_generated_clips(capsys, clips):
    rows = run_json(capsys, "measure", str(clips / "real" / "astronaut.mp4"), str(clips / "desync.mp4"),
                    "--metrics", "sync,blink", "--json")
    in_sync, shifted = rows
    truth = json.loads((clips / "real" / "astronaut.json").read_text())
    assert abs(in_sync["sync_offset_frames"]) <= 1
    assert abs(shifted["sync_offset_frames"] - 4) <= 1  # audio 4 frames late measures +4
    assert "lse_d" not in in_sync and in_sync["sync_method"]  # no syncnet weights here: own method, own name
    assert in_sync["blink_count"] == pytest.approx(len(truth["blinks"]), abs=1)
    assert in_sync["analysis_models"] and in_sync["blink_model"]


def test_measure_identity_and_quality_with_reference_and_parquet(capsys, clips, tmp_path):
    table = tmp_path / "rows.parquet"
    rows = run_json(capsys, "measure", str(clips / "real" / "astronaut.mp4"), "--metrics", "identity,quality",
                    "--reference", str(clips / "astronaut.png"), "--json", "-o", str(table))
    (row,) = rows
    assert row["identity_distance"] < 0.6 and row["identity_same_person"] is True
    assert 0 < row["cpbd"] < 1 and "psnr" not in row  # a photo reference gives identity, not PSNR
    other = run_json(capsys, "measure", str(clips / "real" / "astronaut.mp4"), "--metrics", "identity",
                     "--reference", str(clips / "grace.png"), "--json")[0]
    assert other["identity_distance"] > 0.6
    frame = pd.read_parquet(table)
    assert list(frame["clip"]) == [str(clips / "real" / "astronaut.mp4")]
    assert frame["identity_distance"].iloc[0] == pytest.approx(row["identity_distance"])


def test_measure_against_reference_clip_gives_psnr_ssim(capsys, clips):
    same = run_json(capsys, "measure", str(clips / "real" / "astronaut.mp4"), "--metrics", "quality",
                    "--reference", str(clips / "real" / "astronaut.mp4"), "--json")[0]
    other = run_json(capsys, "measure", str(clips / "fake" / "astronaut.mp4"), "--metrics", "quality",
                     "--reference", str(clips / "real" / "astronaut.mp4"), "--json")[0]
    assert same["ssim"] == pytest.approx(1.0) and same["lmd_mouth"] == pytest.approx(0.0, abs=1e-6)
    assert other["ssim"] < 1.0 and other["lmd_mouth"] > 0.1  # a still mouth against a talking one


def test_measure_records_metric_errors_per_clip(capsys, clips, tmp_path):
    from fakebench.media import read_clip, write_clip

    mute = read_clip(clips / "real" / "astronaut.mp4")
    from dataclasses import replace

    # a silent audio track (a clip with no track at all is visual-only: sync is skipped, see test_visual_only)
    write_clip(tmp_path / "mute.mp4", replace(mute, audio=np.zeros_like(mute.audio)))
    code = main(["measure", str(tmp_path / "mute.mp4"), "--metrics", "sync,blink", "--json"])
    captured = capsys.readouterr()
    assert code == 1, captured.err  # done, with a metric failed on the clip
    rows = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
    assert "sync_error" in rows[0] and "audio" in rows[0]["sync_error"]
    assert rows[0]["blink_count"] >= 0  # blink needs no audio


def test_measure_bad_metric_and_missing_reference_exit_2(capsys, clips):
    assert main(["measure", str(clips / "desync.mp4"), "--metrics", "nope"]) == 2
    assert "unknown metric" in capsys.readouterr().err
    assert main(["measure", str(clips / "desync.mp4"), "--metrics", "identity", "--json"]) == 2
    err = capsys.readouterr().err
    assert "--reference" in err and len(err.strip().splitlines()) == 1


def test_measure_exit_codes_for_unreadable_clips_and_a_faceless_reference(capsys, clips, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    for bad in (tmp_path / "missing.mp4", tmp_path, text):
        assert main(["measure", str(bad), "--metrics", "blink"]) == 2, bad  # nothing could be read
        assert "none of the 1 clip(s) could be read" in capsys.readouterr().err
    assert main(["measure", str(clips / "desync.mp4"), str(text), "--metrics", "blink", "--json"]) == 1
    captured = capsys.readouterr()
    assert "blink_count" in captured.out and "notes.mp4" in captured.err.replace("\n", "")  # good kept, bad listed
    from PIL import Image

    Image.fromarray(np.full((128, 128, 3), 200, np.uint8)).save(tmp_path / "wall.png")
    assert main(["measure", str(clips / "desync.mp4"), "--metrics", "identity", "--reference",
                 str(tmp_path / "wall.png")]) == 2
    assert "reference photo" in capsys.readouterr().err


def test_compare_without_inception_weights_reports_fd_dlib_not_fid(capsys, clips):
    (result,) = run_json(capsys, "compare", str(clips / "real"), str(clips / "fake"), "--frames-per-clip", "4",
                         "--json")
    assert "fid" not in result and "kid" not in result
    assert "not found" in result["fid_skipped"] and result["fd_dlib"] >= 0
    assert result["samples_real"] == 8 and result["samples_fake"] == 8
    (self_cmp,) = run_json(capsys, "compare", str(clips / "real"), str(clips / "real"), "--metrics", "fd_dlib",
                           "--frames-per-clip", "4", "--json")
    assert abs(self_cmp["fd_dlib"]) < 1e-6 < result["fd_dlib"]


def test_compare_identity_pairs_clips(capsys, clips):
    (result,) = run_json(capsys, "compare", str(clips / "real"), str(clips / "fake"), "--metrics", "identity",
                         "--json")
    assert result["identity_pairs"] == 2 and result["identity_same_person_rate"] == 1.0


def test_compare_bad_folder_exit_2(capsys, clips, tmp_path):
    assert main(["compare", str(tmp_path / "missing"), str(clips / "fake")]) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(tmp_path / "empty"), str(clips / "fake")]) == 2
