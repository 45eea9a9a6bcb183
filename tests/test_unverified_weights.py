"""Own weights files: refused by default (exit 2), used with the explicit opt-in, and every result labelled."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import assert_user_error, run

from fakebench import weights
from fakebench.errors import UnverifiedWeightsError


@pytest.fixture(autouse=True)
def _no_opt_in(monkeypatch):
    monkeypatch.setenv(weights.ALLOW_UNVERIFIED_ENV, "0")  # recorded, so the flag's setting is undone after
    monkeypatch.delenv(weights.ALLOW_UNVERIFIED_ENV)
    monkeypatch.setattr(weights, "_UNVERIFIED_IN_USE", {})


@pytest.fixture(scope="module")
def own_syncnet(tmp_path_factory) -> str:
    """A syncnet_v2-format file that is not the published one (random weights, so another SHA-256)."""
    from fakebench.metrics.sync import SyncNet

    torch.manual_seed(0)
    state = {k: v for k, v in SyncNet().state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path_factory.mktemp("own") / "syncnet_v2.model"
    torch.save(state, path)
    return str(path)


@pytest.fixture(scope="module")
def speaking_clip(tmp_path_factory, astronaut, speech_16k) -> str:
    from fakebench.generators.base import create

    audio, sr = speech_16k
    photo = np.ascontiguousarray(astronaut[20:276, 100:356])
    path = tmp_path_factory.mktemp("clip") / "talk.mp4"
    create("warp", head_motion=False).generate(photo, audio, sr, seed=0).save(path)
    return str(path)


def test_find_weight_refuses_an_unpublished_file_and_says_how_to_opt_in(own_syncnet):
    with pytest.raises(UnverifiedWeightsError, match="--allow-unverified-weights.*FAKEBENCH_ALLOW_UNVERIFIED"):
        weights.find_weight("syncnet_v2", own_syncnet)
    assert weights.unverified_in_use() == {}


def test_the_environment_variable_opts_in_and_records_the_file(monkeypatch, own_syncnet):
    monkeypatch.setenv(weights.ALLOW_UNVERIFIED_ENV, "1")
    with pytest.warns(UserWarning, match="weights_verified: false"):
        assert str(weights.find_weight("syncnet_v2", own_syncnet)) == own_syncnet
    assert weights.unverified_in_use() == {"syncnet_v2": own_syncnet}
    assert not weights.weights_verified(["syncnet_v2"]) and weights.weights_verified(["inception_fid"])


def test_a_placeholder_is_refused_even_with_the_opt_in(monkeypatch, tmp_path):
    monkeypatch.setenv(weights.ALLOW_UNVERIFIED_ENV, "1")
    empty = tmp_path / "syncnet_v2.model"
    empty.write_bytes(b"")
    with pytest.raises(weights.WeightsError, match="empty"):
        weights.find_weight("syncnet_v2", empty)


@pytest.mark.slow
def test_measure_refuses_before_reading_clips_then_labels_every_row(capsys, own_syncnet, speaking_clip):
    code, out, err = run(capsys, "measure", "missing.mp4", "--metrics", "sync", "--syncnet-weights", own_syncnet)
    assert_user_error(code, out, err, "961e8696", "--allow-unverified-weights")

    with pytest.warns(UserWarning, match="not the published file"):
        code, out, err = run(capsys, "measure", speaking_clip, "--metrics", "sync", "--json",
                             "--syncnet-weights", own_syncnet, "--allow-unverified-weights")
    assert code == 0, err
    row = json.loads(out.splitlines()[-1])
    assert row["sync_method"].startswith("syncnet") and "lse_c" in row
    assert row["weights_verified"] is False


@pytest.mark.slow
def test_rows_without_unverified_weights_say_verified(capsys, speaking_clip):
    code, out, err = run(capsys, "measure", speaking_clip, "--metrics", "blink", "--json")
    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["weights_verified"] is True
