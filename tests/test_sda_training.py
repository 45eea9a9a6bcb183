"""Training the SDA generator: overfitting one clip, discriminator losses and gradients, exact resume, a
checkpoint that `fakebench generate` uses, the CLI's bad-input errors, and the configs' sizes.

The data are clips made here by the warp generator from the bundled photos and espeak-ng speech (small:
max side 256, about 2 s each); the model is a tiny config at 64x48 so that each test runs in seconds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fakebench.cli import main
from fakebench.errors import ConfigError, InputFileError
from fakebench.generators.sda.checkpoint import expected_shapes, load_fakebench
from fakebench.generators.sda.config import SDAConfig
from fakebench.generators.sda.training.config import from_dict, load_config
from fakebench.generators.sda.training.data import SequenceSampler, prepare_data
from fakebench.generators.sda.training.run import Callbacks, latest_checkpoint, train
from fakebench.generators.sda.training.trainer import Trainer
from fakebench.generators.sda.training.warp_data import make_warp_clips
from fakebench.media import Clip, read_clip, write_audio, write_clip, write_image

TINY = {
    "name": "tiny",
    "model": {"img_size": [64, 48], "audio_rate": 8000, "video_rate": 25, "base_channels": 8, "id_enc_dim": 16,
              "aud_enc_dim": 32, "rnn_gen_dim": 32, "aux_latent": 4},
    "data": {"sequence_frames": 8, "batch_size": 2, "val_clips": 1, "val_frames": 25, "sync_frames": 5,
             "min_offsync_frames": 5},
    "discriminators": {"base_channels": 8, "audio_dim": 32, "sync_dim": 32, "sequence_downsample": 1},
    "optim": {"generator_lr": 0.002, "frame_lr": 0.0002, "sequence_lr": 0.0002, "sync_lr": 0.0002,
              "lr_decay_every": 1000},
    "schedule": {"steps": 4, "checkpoint_every": 2, "log_every": 1},
}


def tiny(**sections) -> dict:
    cfg = json.loads(json.dumps(TINY))
    for name, values in sections.items():
        cfg.setdefault(name, {}).update(values)
    return cfg


def write_yaml(path: Path, data: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data))
    return path


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_user_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: on a loaded 2-core machine, small training steps run several times faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory) -> Path:
    """Two warp-made talking clips: one for training, one held out."""
    out = tmp_path_factory.mktemp("warp-clips")
    make_warp_clips(out, clips=2, val_clips=1, seed=3, max_side=256, looks=2)
    return out


@pytest.fixture(scope="module")
def one_clip(clips_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one-clip")
    first = sorted(clips_dir.glob("train-*.mp4"))[0]
    (out / first.name).symlink_to(first)
    return out


@pytest.fixture(scope="module")
def prepared(clips_dir, tmp_path_factory):
    cfg = from_dict(TINY, "tiny")
    return cfg, prepare_data(clips_dir, tmp_path_factory.mktemp("cache"), cfg.model.sda_config(), cfg.data)


# ------------------------------------------------------------------------------------------- data


def test_preparation_aligns_faces_and_cuts_one_window_per_frame(prepared, clips_dir):
    cfg, data = prepared
    assert [c.name for c in data.clips] == sorted(p.name for p in clips_dir.glob("*.mp4"))
    assert data.train == [0] and data.val == [1] and data.skipped == {}
    clip = data.clips[0]
    source = read_clip(clips_dir / clip.name)
    assert clip.frames.shape[1:] == (64, 48, 3) and clip.frames.dtype == np.uint8
    assert abs(clip.n_frames - source.n_frames) <= 1  # both at 25 fps
    assert clip.valid.mean() > 0.95
    # windows are 0.2 s at the model's rate, centred on their frames
    assert clip.windows(0, 3, 1600).shape == (3, 1600)
    assert np.all(np.diff(clip.starts) == 320)
    # the mean face's eyes and mouth land where the template puts them: the aligned crops of one clip agree
    spread = np.asarray(clip.frames, np.float32).std(axis=0).mean()
    assert spread < 40


def test_sampler_batches_and_its_state_replays(prepared):
    cfg, data = prepared
    sampler = SequenceSampler(data, cfg.data, 1600, seed=5)
    state = sampler.state()
    a = sampler.sample()
    assert a.frames.shape == (2, 8, 3, 64, 48) and a.windows.shape == (2, 8, 1600)
    assert a.still.shape == (2, 3, 64, 48) and a.off_window.shape == (2, 1600)
    assert float(a.frames.min()) >= -1 and float(a.frames.max()) <= 1
    assert bool(((a.sync_start >= 0) & (a.sync_start <= 3)).all())
    sampler.set_state(state)
    b = sampler.sample()
    assert torch.equal(a.frames, b.frames) and torch.equal(a.windows, b.windows)


# ------------------------------------------------------------------------------------------- training


def test_overfitting_one_clip_halves_the_reconstruction_loss(one_clip, tmp_path):
    cfg = from_dict(tiny(data={"val_clips": 0}), "tiny")
    data = prepare_data(one_clip, tmp_path, cfg.model.sda_config(), cfg.data)
    trainer = Trainer(cfg, seed=0)
    sampler = SequenceSampler(data, cfg.data, 1600, seed=0)
    l1 = [trainer.train_step(sampler.sample())["l1"] for _ in range(20)]
    assert np.mean(l1[-3:]) <= 0.5 * np.mean(l1[:3]), l1


def test_discriminator_losses_are_finite_and_gradients_reach_every_parameter(prepared):
    cfg, data = prepared
    trainer = Trainer(cfg, seed=1)
    sampler = SequenceSampler(data, cfg.data, 1600, seed=1)
    for _ in range(2):
        losses = trainer.train_step(sampler.sample())
        assert all(math.isfinite(v) for v in losses.values()), losses
        assert losses["d_frame"] > 0 and losses["d_sequence"] > 0 and losses["d_sync"] > 0
        for name, module in trainer.modules().items():
            for pname, p in module.named_parameters():
                assert p.grad is not None and bool(torch.isfinite(p.grad).all()), f"{name}.{pname}"
                assert float(p.grad.abs().sum()) > 0, f"no gradient reaches {name}.{pname}"


def test_losses_follow_the_configured_weights(prepared):
    cfg, data = prepared
    sampler = SequenceSampler(data, cfg.data, 1600, seed=2)
    batch = sampler.sample()
    losses = Trainer(cfg, seed=2).train_step(batch)
    lw = cfg.loss
    total = lw.l1 * losses["l1"] + lw.frame * losses["g_frame"] + lw.sequence * losses["g_sequence"] \
        + lw.sync * losses["g_sync"]
    assert losses["g_total"] == pytest.approx(total, rel=1e-5)
    # the L1 mask: lower half 1, upper half l1_upper_face
    trainer = Trainer(from_dict(tiny(loss={"l1_upper_face": 0.0}), "tiny"), seed=2)
    real = torch.zeros(1, 1, 3, 64, 48)
    upper = real.clone()
    upper[..., :32, :] = 1.0
    lower = real.clone()
    lower[..., 32:, :] = 1.0
    assert float(trainer.weighted_l1(upper, real)) == 0.0
    assert float(trainer.weighted_l1(lower, real)) == pytest.approx(1.0)


def test_the_inference_engine_reproduces_the_trained_networks(prepared):
    """A checkpoint written by training, run by `SDAEngine` (the `generate` path), gives the frames the
    training forward pass gives in eval mode: training and inference agree on wiring and preprocessing."""
    from fakebench.generators.sda.generator import SDAEngine
    from fakebench.generators.sda.noise_generator import draw_noise
    from fakebench.generators.sda.training.data import to_model_range
    from fakebench.generators.sda.training.trainer import generate_sequences

    cfg, data = prepared
    trainer = Trainer(cfg, seed=3)
    sampler = SequenceSampler(data, cfg.data, 1600, seed=3)
    for _ in range(2):  # BatchNorm statistics away from their initial values
        trainer.train_step(sampler.sample())
    clip, n = data.clips[0], 30
    still = to_model_range(clip.frames[0][None])
    noise = draw_noise(n, cfg.model.aux_latent, seed=7)
    for module in trainer.nets.modules().values():
        module.eval()
    with torch.no_grad():
        expected = generate_sequences(trainer.nets, still, torch.from_numpy(clip.windows(0, n, 1600))[None],
                                      noise[None])[0].permute(0, 2, 3, 1)
    engine = SDAEngine(trainer.checkpoint("test"), "cpu")
    got = torch.cat(list(engine.run(still, torch.from_numpy(clip.signal), torch.from_numpy(clip.starts[:n]), noise,
                                    chunk_frames=16)))
    torch.testing.assert_close(got, expected, atol=2e-4, rtol=0)


@pytest.mark.slow
def test_resume_after_an_interruption_repeats_training_straight_through(clips_dir, tmp_path):
    cfg = from_dict(tiny(schedule={"steps": 3, "checkpoint_every": 2, "log_every": 1}), "tiny")
    straight = train(clips_dir, tmp_path / "straight", config=cfg, device="cpu", seed=4)
    assert straight.step == 3 and straight.stopped == "finished"

    def stop_after_two(step: int, losses: dict) -> None:
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(clips_dir, tmp_path / "resumed", config=cfg, device="cpu", seed=4,
              callbacks=Callbacks(on_step=stop_after_two))
    assert latest_checkpoint(tmp_path / "resumed").name == "step-000002"
    resumed = train(clips_dir, tmp_path / "resumed", resume=True, device="cpu")
    assert resumed.step == 3
    a = pd.read_parquet(tmp_path / "straight" / "train_log.parquet")
    b = pd.read_parquet(tmp_path / "resumed" / "train_log.parquet")
    losses = [c for c in a.columns if c.startswith(("g_", "d_")) or c == "l1"]
    for frame in (a, b):
        assert list(frame[frame.kind == "train"].step) == [1, 2, 3]
    pd.testing.assert_frame_equal(a[a.kind == "train"][losses].reset_index(drop=True),
                                  b[b.kind == "train"][losses].reset_index(drop=True), check_exact=True)
    # the resumed weights equal the straight run's at step 3
    wa, wb = (load_fakebench(r.checkpoint) for r in (straight, resumed))
    for part in ("encoder", "encoder_id", "generator"):
        for key, value in getattr(wa, part).items():
            assert torch.equal(value, getattr(wb, part)[key]), f"{part}.{key}"


# ------------------------------------------------------------------------------------------- CLI


@pytest.mark.slow
def test_cli_trains_logs_and_its_checkpoint_generates(clips_dir, astronaut, speech_16k, tmp_path, capsys):
    config = write_yaml(tmp_path / "tiny.yaml", tiny())
    code, out, err = run(capsys, "train-generator", clips_dir, "-o", tmp_path / "run", "--config", config,
                         "--device", "cpu", "--seed", "1")
    assert code == 0, err
    assert "finished at step 4/4" in out
    run_dir = tmp_path / "run"
    log = pd.read_parquet(run_dir / "train_log.parquet")
    assert list(log[log.kind == "train"].step) == [1, 2, 3, 4]
    val = log[log.kind == "val"]
    assert list(val.step) == [2, 4]
    assert val.val_psnr.between(3, 40).all() and val.val_ssim.between(-1, 1).all()
    assert (run_dir / "samples" / "step-000004.png").is_file()
    summary = json.loads((run_dir / "run.json").read_text())["data"]
    assert summary["clips_used"] == 2 and summary["clips_skipped"] == 0
    ckpt = latest_checkpoint(run_dir)
    state = torch.load(ckpt / "weights.pt", weights_only=True)
    assert set(state) == {"encoder", "encoder_id", "generator"}
    torch.load(run_dir / "state.pt", weights_only=True)

    photo = write_image(tmp_path / "photo.png", astronaut)
    audio = write_audio(tmp_path / "speech.wav", *speech_16k)
    code, out, err = run(capsys, "generate", "--generator", "sda", "--image", photo, "--audio", audio,
                         "--checkpoint", ckpt, "-o", tmp_path / "fake.mp4", "--device", "cpu")
    assert code == 0, err
    fake = read_clip(tmp_path / "fake.mp4")
    assert fake.frames.shape[1:3] == astronaut.shape[:2]
    truth = json.loads((tmp_path / "fake.json").read_text())
    assert fake.n_frames == truth["n_frames"] and abs(fake.n_frames - len(speech_16k[0]) / 16000 * 25) <= 1
    assert truth["img_size"] == [64, 48] and truth["checkpoint"] == str(ckpt)


@pytest.mark.slow
def test_cli_bad_inputs_are_one_line_errors(tmp_path, capsys, speech_16k):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, "train-generator", empty, "-o", tmp_path / "r1")
    assert_user_error(code, err, "no video clips")

    faceless = tmp_path / "faceless"
    faceless.mkdir()
    audio, sr = speech_16k
    n = int(len(audio) / sr * 25)
    frames = np.broadcast_to(np.linspace(0, 255, 96, dtype=np.uint8)[None, None, :, None], (n, 64, 96, 3))
    write_clip(faceless / "wall.mp4", Clip(frames=np.ascontiguousarray(frames), fps=25.0, audio=audio,
                                           sample_rate=sr))
    code, _, err = run(capsys, "train-generator", faceless, "-o", tmp_path / "r2")
    assert_user_error(code, err, "none of the 1 clip(s)", "usable")

    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("model: [unclosed\n")
    code, _, err = run(capsys, "train-generator", faceless, "-o", tmp_path / "r3", "--config", bad_yaml)
    assert_user_error(code, err, "not valid YAML")
    unknown = write_yaml(tmp_path / "unknown.yaml", {"loss": {"l2": 1.0}})
    code, _, err = run(capsys, "train-generator", faceless, "-o", tmp_path / "r4", "--config", unknown)
    assert_user_error(code, err, "unknown field(s) l2")
    code, _, err = run(capsys, "train-generator", faceless, "-o", tmp_path / "r5", "--config", "sda-huge")
    assert_user_error(code, err, "sda-small", "sda-paper")

    code, _, err = run(capsys, "train-generator", faceless, "-o", tmp_path / "nothing", "--resume")
    assert_user_error(code, err, "no training run to resume")


# ------------------------------------------------------------------------------------------- configs


def test_configs_paper_sizes_load_original_checkpoints_and_small_is_narrower():
    paper, small = load_config("sda-paper"), load_config("sda-small")
    counts = {}
    for cfg in (paper, small):
        shapes = expected_shapes(cfg.model.sda_config())
        counts[cfg.name] = sum(math.prod(s) for part in shapes.values() for k, s in part.items()
                               if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert counts["sda-paper"] == 55_273_572  # spec §4.4, the released 16 kHz model
    assert counts["sda-small"] < counts["sda-paper"] / 8
    assert small.model.base_channels < paper.model.base_channels
    # the same code: only sizes (and the short-run choices the small config notes) differ
    assert paper.loss.l1 == small.loss.l1 and paper.loss.sync == small.loss.sync
    assert "loss_weights" in paper.notes and "sync_discriminator" in small.notes


def test_older_config_json_without_the_width_loads_at_the_published_width(tmp_path):
    from fakebench.faces import default_template

    cfg = SDAConfig(mean_face=default_template((128, 96)))
    data = cfg.to_json()
    del data["base_channels"]
    assert SDAConfig.from_json(data).base_channels == 64


def test_user_config_files_override_the_small_config(tmp_path):
    path = write_yaml(tmp_path / "mine.yaml", {"schedule": {"steps": 7}, "loss": {"sync": 0.5}})
    cfg = load_config(path)
    assert cfg.name == "mine" and cfg.schedule.steps == 7 and cfg.loss.sync == 0.5
    assert cfg.model == load_config("sda-small").model
    with pytest.raises(ConfigError, match="must be a whole number"):
        from_dict(tiny(schedule={"steps": 2.5}), "tiny")
    with pytest.raises(ConfigError, match="sync_frames"):
        from_dict(tiny(data={"sync_frames": 9}), "tiny")
    with pytest.raises(ConfigError, match="not buildable|img_size"):
        from_dict(tiny(model={"img_size": [100, 50]}), "tiny")


def test_no_run_and_existing_run_are_refused(clips_dir, tmp_path):
    with pytest.raises(InputFileError, match="no training run to resume"):
        train(clips_dir, tmp_path / "none", resume=True)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "state.pt").write_bytes(b"x")
    with pytest.raises(ConfigError, match="already holds a training run"):
        train(clips_dir, tmp_path / "taken", config=from_dict(TINY, "tiny"))


def test_the_shipped_checkpoint_is_the_default_and_passes_its_checksum(monkeypatch, tmp_path):
    from fakebench import weights
    from fakebench.generators.sda.checkpoint import find_checkpoint, load_any

    monkeypatch.delenv("FAKEBENCH_WEIGHTS", raising=False)
    path = find_checkpoint()
    assert path == weights.BUNDLED_DIR / "sda-default"
    assert weights.locate("sda_default", verify=True).checksum == "ok"
    ckpt = load_any(path)
    assert ckpt.config.img_size == (128, 96) and ckpt.config.base_channels == 16
    assert sum(ckpt.n_parameters().values()) == 4_566_724  # sda-small plus emotion codes and the mask channel
    assert "train-generator" in ckpt.source
    monkeypatch.setenv("FAKEBENCH_WEIGHTS", str(tmp_path))  # package data stays a candidate after these folders
    assert find_checkpoint() == weights.BUNDLED_DIR / "sda-default"
    assert weights.locate("sda_default").where == "fakebench package data"
