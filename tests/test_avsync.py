"""The av-cca lip-sync model: fitting recovers a planted relation, leave-one-speaker-out never sees the speaker,
the shipped model loads and checks out, and the reliability decision says why a result cannot be trusted."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from fakebench import avsync
from fakebench.avsync import ClipFeatures, SyncModel, estimate_offset, fit_sync_model, leave_one_group_out
from fakebench.errors import WeightsError
from fakebench.metrics import sync

FPS = 25.0
README = Path(__file__).resolve().parents[1] / "README.md"


def _latent(n: int, seed: int) -> np.ndarray:
    """A smooth random 'syllable' signal, band-limited like speech rhythm."""
    rng = np.random.default_rng(seed)
    return avsync.band_pass(rng.standard_normal((n, 1)), FPS)[:, 0]


def _planted(n: int, seed: int, audio_lag: int = 0) -> ClipFeatures:
    """Mouth and speech features that both carry one latent signal (the speech `audio_lag` frames late)."""
    mixing = np.random.default_rng(7)  # how the latent shows in each feature: the same for every clip
    to_video, to_audio = mixing.standard_normal(80), mixing.standard_normal(216)
    rng = np.random.default_rng(seed + 1000)
    s = _latent(n + 40, seed)
    mouth = s[20:20 + n]
    speech = s[20 - audio_lag:20 - audio_lag + n]
    video = np.outer(mouth, to_video) + 0.5 * rng.standard_normal((n, 80))
    audio = np.outer(speech, to_audio) + 0.5 * rng.standard_normal((n, 216))
    return ClipFeatures(video=avsync.standardise(video), audio=avsync.standardise(audio), valid=np.ones(n, bool),
                        fps=FPS, mouth_motion=0.01, speech_modulation_db=8.0, name=f"clip{seed}")


def test_fitting_finds_the_planted_relation_and_the_offset_of_a_delayed_copy():
    model = fit_sync_model([_planted(300, seed) for seed in range(4)], components=2)
    assert model.correlations[0] > 0.8  # the latent signal is shared
    for lag in (-7, -2, 0, 3, 9):
        found = estimate_offset(model, _planted(250, 50, audio_lag=lag), max_offset=12)
        assert found.offset == lag
        assert found.evidence_z > 5
    unrelated = _planted(250, 60)
    unrelated.audio = _planted(250, 61).audio
    assert estimate_offset(model, unrelated, max_offset=12).evidence_z < 3


def test_leave_one_group_out_never_fits_on_the_speaker_it_scores():
    clips = [_planted(120, seed) for seed in range(6)]
    groups = ["a", "a", "b", "b", "c", "c"]
    seen = []

    def evaluate(model: SyncModel, clip: ClipFeatures):
        seen.append((clip.name, model.info["clips"]))

    leave_one_group_out(clips, groups, evaluate, components=1)
    assert seen == [(f"clip{i}", 4) for i in range(6)]  # always the 4 clips of the two other speakers
    with pytest.raises(ValueError, match="two speaker groups"):
        leave_one_group_out(clips, ["a"] * 6, evaluate)


def test_speaker_groups_come_from_file_names():
    assert avsync.speaker_group("/data/grid_bbaf2n.mpg") == "grid"
    assert avsync.speaker_group("interview_3.mp4") == "interview"
    assert avsync.speaker_group("single.mp4") == "single"


def test_shift_audio_delays_by_whole_frames():
    audio = np.arange(16000, dtype=np.float32)
    late = avsync.shift_audio(audio, 16000, 25.0, 3)
    assert late.size == audio.size and np.all(late[:1920] == 0) and late[1920] == 0.0 and late[1921] == 1.0
    early = avsync.shift_audio(audio, 16000, 25.0, -3)
    assert early[0] == 1920.0 and np.all(early[-1920:] == 0)


def test_a_model_round_trips_and_a_foreign_file_is_refused(tmp_path):
    model = fit_sync_model([_planted(200, seed) for seed in range(3)], components=2, info={"note": "test"})
    folder = model.save(tmp_path / "m")
    back = SyncModel.load(folder)
    np.testing.assert_array_equal(back.video_weights, model.video_weights)
    np.testing.assert_array_equal(back.correlations, model.correlations)
    assert back.info["note"] == "test" and back.info["components"] == 2
    description = json.loads((folder / avsync.CONFIG_FILE).read_text())
    (folder / avsync.CONFIG_FILE).write_text(json.dumps({**description, "features": "other-features-9"}))
    with pytest.raises(WeightsError, match="retrain"):
        SyncModel.load(folder)
    with pytest.raises(WeightsError, match="train-sync"):
        SyncModel.load(tmp_path / "missing")


def test_the_shipped_model_passes_its_checksums_and_says_how_it_was_evaluated():
    from fakebench.weights import find_weight

    model = SyncModel.load(find_weight("sync_cca"))
    assert model.video_weights.shape == (80, 3) and model.audio_weights.shape == (216, 3)
    evaluation = model.info["evaluation"]
    assert evaluation["protocol"] == "leave-one-speaker-group-out"
    assert len(model.info["groups"]) >= 5


def test_the_reliability_decision_gives_one_reason_each():
    ok = dict(mouth_motion=2 * sync.MIN_MOUTH_MOTION, speech_modulation_db=2 * sync.MIN_SPEECH_MODULATION_DB)
    assert sync.sync_reliability(**ok, evidence_z=sync.SYNC_RELIABLE_MIN_Z + 0.1) == (True, "")
    assert sync.sync_reliability(**ok, evidence_z=sync.SYNC_RELIABLE_MIN_Z - 0.1) == (False, sync.NO_CLEAR_OFFSET)
    still = {**ok, "mouth_motion": 0.5 * sync.MIN_MOUTH_MOTION}
    assert sync.sync_reliability(**still, evidence_z=50.0) == (False, sync.NO_LIP_MOTION)
    noise = {**ok, "speech_modulation_db": 0.5 * sync.MIN_SPEECH_MODULATION_DB}
    assert sync.sync_reliability(**noise, evidence_z=50.0) == (False, sync.NO_SPEECH)
    assert sync.sync_reliability(**ok, evidence_z=None, syncnet_confidence=sync.SYNCNET_MIN_CONFIDENCE) == (True, "")


def test_the_readme_quotes_the_thresholds_the_code_uses():
    """The thresholds live in fakebench.metrics.sync; the README's lip-sync section states the same numbers."""
    text = README.read_text()
    section = text[text.index("### Lip sync"):]
    section = section[:section.index("\n### ", 5)]
    for name in ("SYNC_RELIABLE_MIN_Z", "MIN_MOUTH_MOTION", "MIN_SPEECH_MODULATION_DB", "SYNCNET_MIN_CONFIDENCE"):
        value = getattr(sync, name)
        assert re.search(rf"`{name}`[^\n]*?\b{re.escape(str(value))}\b", section), (name, value)


@pytest.mark.slow
def test_a_still_face_with_speech_is_no_lip_motion_and_noise_is_no_speech(astronaut, speech_16k):
    from fakebench.faces import analyze
    from fakebench.generators.base import create

    audio, sr = speech_16k
    photo = np.ascontiguousarray(astronaut[20:276, 100:356])
    still = create("static").generate(photo, audio, sr).clip
    result = sync.sync_metrics(still, analyze(still), method="avsync")
    assert result["sync_reliable"] is False and result["sync_unreliable_reason"] == sync.NO_LIP_MOTION
    assert result["sync_mouth_motion"] < sync.MIN_MOUTH_MOTION

    talking = create("warp", head_motion=False).generate(photo, audio, sr, seed=0).clip
    track = analyze(talking)
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal(talking.audio.size)).astype(np.float32)
    result = sync.sync_metrics(talking.with_audio(noise, talking.sample_rate), track, method="avsync")
    assert result["sync_reliable"] is False and result["sync_unreliable_reason"] == sync.NO_SPEECH


@pytest.fixture(scope="module")
def two_speakers(tmp_path_factory, astronaut, grace_hopper) -> Path:
    """Two short in-sync talking clips of two people (warp), named as two speaker groups."""
    from fakebench.generators.base import create
    from fakebench.media import resample_audio
    from fakebench.speech import synthesize

    folder = tmp_path_factory.mktemp("sync-train")
    faces = {"astronaut_1": np.ascontiguousarray(astronaut[20:276, 100:356]),
             "hopper_1": np.ascontiguousarray(grace_hopper[100:420, 100:420][::2, ::2])}
    texts = {"astronaut_1": "Place blue at F two now. Bin green by S nine again, please.",
             "hopper_1": "Set white with P four please. Lay red in D seven soon, again."}
    for name, face in faces.items():
        audio, sr, _ = synthesize(texts[name], voice="en-us")
        create("warp", head_motion=False).generate(face, resample_audio(audio, sr, 16000), 16000,
                                                  seed=3).save(folder / f"{name}.mp4")
    return folder


@pytest.mark.slow
def test_train_sync_fits_evaluates_leave_one_speaker_out_and_writes_a_loadable_model(two_speakers, tmp_path,
                                                                                      capsys):
    from helpers import run

    code, out, err = run(capsys, "train-sync", two_speakers, "-o", tmp_path / "model", "--components", "2")
    assert code == 0, err
    model = SyncModel.load(tmp_path / "model")
    evaluation = model.info["evaluation"]
    assert sorted(model.info["groups"]) == ["astronaut", "hopper"]
    assert {row["clip"] for row in evaluation["clips"]} == {"astronaut_1.mp4", "hopper_1.mp4"}
    # each clip scored by a model fitted on the other person only: warp mouths follow the speech closely,
    # so every shifted copy is found
    assert evaluation["within_1_frame_all"] >= 0.9, evaluation
    assert "within 1 frame" in out

    code, out, err = run(capsys, "measure", two_speakers / "hopper_1.mp4", "--metrics", "sync", "--json",
                         "--sync-model", tmp_path / "model")
    assert code == 0, err
    row = json.loads(out.splitlines()[-1])
    assert row["sync_weights"] == str(tmp_path / "model") and abs(row["sync_offset_frames"]) <= 1


@pytest.mark.slow
def test_train_sync_skips_unusable_clips_and_exits_1(two_speakers, tmp_path, capsys):
    import shutil

    from helpers import run

    folder = tmp_path / "data"
    shutil.copytree(two_speakers, folder)
    (folder / "broken_1.mp4").write_text("not a video")
    code, _, err = run(capsys, "train-sync", folder, "-o", tmp_path / "model", "--components", "2")
    assert code == 1
    assert "skipped" in err and "broken_1.mp4" in err
    assert SyncModel.load(tmp_path / "model").info["skipped"][0]["clip"] == "broken_1.mp4"
