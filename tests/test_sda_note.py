"""A checkpoint fakebench trained itself says, once, what it was trained on; a converted original says nothing."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from helpers import run

from fakebench.faces import default_template
from fakebench.generators.sda import CheckpointNote, SDAGenerator
from fakebench.generators.sda.checkpoint import init_checkpoint, load_fakebench, save_fakebench
from fakebench.generators.sda.config import SDAConfig


@pytest.fixture(autouse=True)
def _not_yet_noted(monkeypatch):
    import fakebench.generators.sda as sda

    monkeypatch.setattr(sda, "_NOTED", set())


def _tiny(source: str, folder) -> str:
    cfg = SDAConfig(mean_face=default_template((32, 24)), img_size=(32, 24), audio_rate=8000, video_rate=25,
                    audio_feat_len=0.2, audio_feat_samples=1600)
    return str(save_fakebench(init_checkpoint(cfg, source=source), folder))


def test_the_shipped_checkpoint_says_what_it_was_trained_on_once(capsys, tmp_path, astronaut, speech_16k):
    from fakebench.media import write_audio, write_image

    photo = np.ascontiguousarray(astronaut[20:276, 100:356])
    write_image(tmp_path / "face.png", photo)
    write_audio(tmp_path / "s.wav", *speech_16k)
    with pytest.warns(CheckpointNote, match="MODEL_CARD.md.*2 photos|2 photos.*MODEL_CARD.md"):
        code, _, err = run(capsys, "generate", "-g", "sda", "--image", tmp_path / "face.png", "--audio",
                           tmp_path / "s.wav", "-o", tmp_path / "a.mp4")
    assert code == 0, err
    truth = json.loads((tmp_path / "a.json").read_text())
    assert "not a model of real talking faces" in truth["checkpoint_note"]
    assert "weights convert" in truth["checkpoint_note"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointNote)  # a second generator in the same process: said already
        SDAGenerator(device="cpu")


def test_a_checkpoint_the_user_trained_points_to_its_run(tmp_path):
    path = _tiny("fakebench train-generator (sda-small, step 40)", tmp_path / "step-40")
    with pytest.warns(CheckpointNote, match="step 40.*run.json"):
        gen = SDAGenerator(path, device="cpu")
    assert "held-out" in gen.checkpoint_note


def test_a_converted_original_release_says_nothing(tmp_path):
    path = _tiny("grid.dat", tmp_path / "converted")
    assert load_fakebench(path).source == "grid.dat"
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointNote)
        gen = SDAGenerator(path, device="cpu")
    assert gen.checkpoint_note is None
