"""SDA generator: checkpoint compatibility with the original release format, the fast engine against the
reference port, audio windowing, and end-to-end generation on a real photo with synthesized speech.

No original weights are available offline, so checkpoints are made from randomly initialised networks
(with randomised BatchNorm statistics) and written exactly as the 2019 release was: a legacy-format
torch.save of a dict with three state dicts and NumPy/tuple metadata.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fakebench.errors import AudioError, ConfigError, NoFaceError, WeightsError
from fakebench.faces import default_template
from fakebench.generators.base import available, create, n_output_frames
from fakebench.generators.sda import SDAGenerator, winograd
from fakebench.generators.sda.checkpoint import (
    SDACheckpoint,
    convert,
    expected_shapes,
    find_checkpoint,
    init_checkpoint,
    load_any,
    load_fakebench,
    load_original,
    validate_parts,
)
from fakebench.generators.sda.compositing import PasteBack
from fakebench.generators.sda.config import SDAConfig
from fakebench.generators.sda.generator import Networks, SDAEngine
from fakebench.generators.sda.noise_generator import draw_noise
from fakebench.generators.sda.preprocessing import align_photo, crop_to_tensor, plan_windows, prepare_audio
from fakebench.generators.sda.reference import reference_forward

BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def crema_config() -> SDAConfig:
    return SDAConfig(mean_face=default_template((128, 96)), img_size=(128, 96), audio_rate=16000, video_rate=30,
                     audio_feat_len=0.2, audio_feat_samples=3200)


def small_config() -> SDAConfig:
    """A small model (32x24 frames, 8 kHz audio, 25 fps) for fast tests of everything size-generic."""
    return SDAConfig(mean_face=default_template((32, 24)), img_size=(32, 24), audio_rate=8000, video_rate=25,
                     audio_feat_len=0.2, audio_feat_samples=1600)


def random_checkpoint(cfg: SDAConfig, seed: int) -> SDACheckpoint:
    """Random weights with random BatchNorm statistics, scaled so that signals keep their size through the
    layers (PyTorch's default init shrinks them layer by layer, which would leave the frames nearly
    independent of the audio and the noise, and those paths untested)."""
    ckpt = init_checkpoint(cfg, seed=seed, random_statistics=True)
    for state in ckpt.parts().values():
        for key, value in state.items():
            if key.endswith("weight") and value.ndim >= 3:  # convolutions: variance-preserving for ReLU
                value *= math.sqrt(6)
            elif value.ndim == 2:  # GRU matrices
                value *= 4
    return ckpt


def original_dict(ckpt: SDACheckpoint) -> dict:
    """The object the 2019 release pickled: three state dicts plus metadata (spec §2.2)."""
    cfg = ckpt.config
    return {
        "encoder": OrderedDict(ckpt.encoder), "encoder_id": OrderedDict(ckpt.encoder_id),
        "generator": OrderedDict(ckpt.generator),
        "mean_face": np.asarray(cfg.mean_face, np.float64), "img_size": tuple(cfg.img_size),
        "audio_rate": cfg.audio_rate, "video_rate": cfg.video_rate, "audio_feat_len": cfg.audio_feat_len,
        "audio_feat_samples": cfg.audio_feat_samples, "id_enc_dim": cfg.id_enc_dim,
        "rnn_gen_dim": cfg.rnn_gen_dim, "aud_enc_dim": cfg.aud_enc_dim, "aux_latent": cfg.aux_latent,
        "sequential_noise": cfg.sequential_noise,
    }


def save_legacy(obj: object, path: Path) -> Path:
    torch.save(obj, path, _use_new_zipfile_serialization=False)
    return path


@pytest.fixture(scope="session")
def crema_dat(tmp_path_factory) -> Path:
    """A full-size (55 M parameter) 16 kHz / 30 fps checkpoint in the original file format."""
    ckpt = random_checkpoint(crema_config(), seed=7)
    return save_legacy(original_dict(ckpt), tmp_path_factory.mktemp("sda-crema") / "crema.dat")


@pytest.fixture(scope="session")
def crema(crema_dat) -> SDACheckpoint:
    return load_original(crema_dat)


@pytest.fixture(scope="session")
def crema_generator(crema) -> SDAGenerator:
    return SDAGenerator(crema, device="cpu")


@pytest.fixture(scope="session")
def small() -> SDACheckpoint:
    return random_checkpoint(small_config(), seed=3)


@pytest.fixture(scope="session")
def small_dat(small, tmp_path_factory) -> Path:
    return save_legacy(original_dict(small), tmp_path_factory.mktemp("sda-small") / "small.dat")


@pytest.fixture(scope="session")
def small_generator(small) -> SDAGenerator:
    return SDAGenerator(small, device="cpu")


@pytest.fixture(scope="session")
def speech(speech_16k) -> tuple[np.ndarray, int]:
    """0.8 s of synthesized speech at 16 kHz."""
    audio, sr = speech_16k
    return audio[: int(0.8 * sr)].copy(), sr


@pytest.fixture
def weights_env(tmp_path, monkeypatch) -> Path:
    """Empty $FAKEBENCH_WEIGHTS and torch hub cache, and no package data (the bundled checkpoint hidden)."""
    from fakebench import weights

    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv("FAKEBENCH_WEIGHTS", str(folder))
    monkeypatch.setattr(weights, "BUNDLED_DIR", tmp_path / "no-package-data")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return folder


# ---------------------------------------------------------------------------------------------- checkpoints


def test_original_format_loads_with_the_specs_shapes_and_counts(crema_dat, crema):
    assert crema.n_parameters() == {"encoder": 1_490_896, "encoder_id": 12_721_024, "generator": 41_061_652}
    assert sum(crema.n_parameters().values()) == 55_273_572
    entries = [k for part in crema.parts().values() for k in part]
    assert len(entries) == 135
    assert len([k for k in entries if not k.endswith("num_batches_tracked")]) == 116
    running = sum(v.numel() for p in crema.parts().values() for k, v in p.items() if k.endswith(BUFFERS[:2]))
    assert running == 12_768
    shapes = {(part, k): tuple(v.shape) for part, state in crema.parts().items() for k, v in state.items()}
    assert shapes[("encoder", "encoder.cl.0.weight")] == (16, 1, 80)
    assert shapes[("encoder", "encoder.cl.4.weight")] == (256, 128, 10)
    assert shapes[("encoder", "encoder.cl.5.weight")] == (256, 256, 5)
    assert shapes[("encoder", "rnn.weight_hh_l1")] == (768, 256)
    assert shapes[("encoder_id", "cl.4.0.weight")] == (1024, 512, 4, 4)
    assert shapes[("encoder_id", "cl.5.0.weight")] == (128, 1024, 4, 3)
    assert shapes[("generator", "rnn_noise.weight_ih_l0")] == (30, 10)
    assert shapes[("generator", "dcl.0.0.weight")] == (394, 1024, 4, 3)
    assert shapes[("generator", "dcl.1.dcl1.weight")] == (2048, 1024, 3, 3)
    assert shapes[("generator", "dcl.4.dcl2.weight")] == (128, 64, 4, 4)
    assert shapes[("generator", "dcl.5.weight")] == (64, 3, 4, 4)
    # registration order, as the original's state dicts list them
    enc = list(crema.encoder)
    assert enc[0] == "encoder.cl.0.weight" and enc[12].startswith("encoder.activations.0.0")
    assert enc[-8:] == [f"rnn.{w}_l{i}" for i in (0, 1) for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    assert list(crema.generator)[:4] == [f"rnn_noise.{w}_l0" for w in ("weight_ih", "weight_hh", "bias_ih",
                                                                       "bias_hh")]
    cfg = crema.config
    assert (cfg.audio_rate, cfg.video_rate, cfg.img_size, cfg.audio_feat_samples) == (16000, 30, (128, 96), 3200)
    np.testing.assert_array_equal(cfg.mean_face, default_template((128, 96)))
    assert crema.source == "crema.dat"
    assert crema.sha256 == hashlib.sha256(crema_dat.read_bytes()).hexdigest()
    # the legacy (non-zip) format, as written in 2019
    assert not crema_dat.read_bytes()[:2] == b"PK"


@pytest.mark.parametrize(("rate", "kernel", "count"), [(50000, 250, 1_493_616), (48000, 240, 1_493_456),
                                                       (16000, 80, 1_490_896)])
def test_first_audio_conv_and_encoder_size_follow_the_rate(rate, kernel, count):
    cfg = SDAConfig(mean_face=default_template((128, 96)), audio_rate=rate, video_rate=25,
                    audio_feat_samples=rate // 5)
    shapes = expected_shapes(cfg)["encoder"]
    assert shapes["encoder.cl.0.weight"] == (16, 1, kernel)
    assert sum(math.prod(s) for k, s in shapes.items() if not k.endswith(BUFFERS)) == count


def test_missing_batch_counters_are_tolerated(small):
    parts = {p: {k: v for k, v in s.items() if not k.endswith("num_batches_tracked")} for p, s in small.parts().items()}
    checked = validate_parts(parts, small.config, "test")
    assert sum(len(s) for s in checked.values()) == sum(len(s) for s in parts.values())
    SDAEngine(SDACheckpoint(small.config, **checked, source="test"))  # builds with the counters filled in


@pytest.mark.parametrize(("part", "key", "change"), [
    ("generator", "dcl.2.dcl1.weight", "drop"),
    ("encoder_id", "cl.2.1.running_var", "drop"),
    ("encoder", "rnn.weight_hh_l1", "reshape"),
    ("generator", "dcl.0.0.weight", "reshape"),
    ("generator", "dcl.9.weight", "extra"),
])
def test_damaged_state_dicts_are_refused_naming_the_key(small, tmp_path, part, key, change):
    obj = original_dict(small)
    state = obj[part]
    if change == "drop":
        del state[key]
    elif change == "reshape":
        state[key] = torch.zeros(*state[key].shape[:-1], state[key].shape[-1] + 1)
    else:
        state[key] = torch.zeros(3)
    path = save_legacy(obj, tmp_path / "bad.dat")
    with pytest.raises(WeightsError, match=key.replace(".", r"\.")) as err:
        load_original(path)
    message = str(err.value)
    assert "\n" not in message
    if change == "reshape":
        assert "expected" in message and "has shape" in message


def test_audio_rate_is_cross_checked_with_the_first_conv(small, tmp_path):
    obj = original_dict(small)
    obj["audio_rate"] = 16000  # the first conv says 8 kHz (kernel 40 = 5 ms)
    with pytest.raises(WeightsError, match=r"encoder\.cl\.0\.weight.*8000 Hz"):
        load_original(save_legacy(obj, tmp_path / "x.dat"))
    del obj["audio_rate"]  # absent: read from the conv
    assert load_original(save_legacy(obj, tmp_path / "y.dat")).config.audio_rate == 8000


def test_other_architectures_and_non_checkpoints_are_refused(small, tmp_path):
    resnet_like = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8)).state_dict()
    with pytest.raises(WeightsError, match="not an SDA checkpoint.*'encoder'"):
        load_original(save_legacy(resnet_like, tmp_path / "resnet.pth"))
    obj = original_dict(small)
    obj["generator"] = OrderedDict(torch.nn.GRU(10, 10).state_dict())
    with pytest.raises(WeightsError, match=r"generator lacks rnn_noise\.weight_ih_l0"):
        load_original(save_legacy(obj, tmp_path / "gru.dat"))
    obj = original_dict(small)
    obj["encoder"] = OrderedDict((f"net.{k}", v) for k, v in small.encoder.items())
    with pytest.raises(WeightsError, match=r"encoder\.cl\.0\.weight"):
        load_original(save_legacy(obj, tmp_path / "renamed.dat"))


def test_lfs_pointer_truncated_file_and_code_are_refused(small_dat, tmp_path):
    pointer = tmp_path / "grid.dat"
    pointer.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:cfd703ec\nsize 221179358\n")
    with pytest.raises(WeightsError, match="Git LFS pointer"):
        load_original(pointer)
    with pytest.raises(WeightsError, match="Git LFS pointer"):
        SDAGenerator(pointer)
    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes(small_dat.read_bytes()[: small_dat.stat().st_size // 2])
    with pytest.raises(WeightsError, match="truncated or corrupt"):
        load_original(truncated)

    class Exploit:
        def __reduce__(self):
            return (print, ("owned",))

    evil = tmp_path / "evil.dat"
    evil.write_bytes(pickle.dumps({"encoder": Exploit()}))
    with pytest.raises(WeightsError, match="refused to load"):
        load_original(evil)


def test_convert_round_trip_is_exact(small, small_dat, tmp_path):
    out = convert(small_dat, tmp_path / "sda-default")
    assert out == tmp_path / "sda-default" and sorted(p.name for p in out.iterdir()) == ["config.json",
                                                                                          "weights.pt"]
    raw = torch.load(out / "weights.pt", weights_only=True)
    assert set(raw) == {"encoder", "encoder_id", "generator"}
    meta = json.loads((out / "config.json").read_text())
    assert meta["source"] == "small.dat" and meta["sha256"] == hashlib.sha256(small_dat.read_bytes()).hexdigest()
    assert meta["converted_by"].startswith("fakebench") and meta["img_size"] == [32, 24]
    back = load_fakebench(out)
    assert back.config.same_as(small.config) and back.sha256 == meta["sha256"]
    for part, state in small.parts().items():
        loaded = back.parts()[part]
        assert list(loaded) == list(state)
        for key, value in state.items():
            assert torch.equal(loaded[key], value), key
    assert isinstance(load_any(out), SDACheckpoint) and load_any(small_dat).source == "small.dat"
    # converting again replaces the folder atomically; float16 halves the file and is upcast on load
    convert(small_dat, out, half=True)
    half = load_fakebench(out)
    assert half.generator["dcl.0.0.weight"].dtype == torch.float32
    torch.testing.assert_close(half.generator["dcl.0.0.weight"], small.generator["dcl.0.0.weight"],
                               rtol=1e-3, atol=1e-4)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_checkpoint_search_order_and_missing_message(small_dat, weights_env):
    with pytest.raises(WeightsError) as err:
        find_checkpoint()
    message = str(err.value)
    assert str(weights_env / "crema.dat") in message and str(weights_env / "sda-default") in message
    assert "fakebench weights convert" in message and "grid.dat" in message
    assert "fakebench train-generator" in message
    with pytest.raises(WeightsError, match="train-generator"):
        SDAGenerator()
    (weights_env / "crema.dat").write_bytes(small_dat.read_bytes())
    with pytest.warns(UserWarning, match="bytes"):  # not the released file's size: used, with a warning
        assert find_checkpoint() == weights_env / "crema.dat"
    convert(small_dat, weights_env / "sda-default")
    assert find_checkpoint() == weights_env / "sda-default"
    explicit = weights_env / "crema.dat"
    assert find_checkpoint(explicit) == explicit
    with pytest.raises(WeightsError, match="does not exist"):
        find_checkpoint(weights_env / "nowhere.dat")


# ---------------------------------------------------------------------------------------------- engine


def run_engine(engine: SDAEngine, image: torch.Tensor, signal: torch.Tensor, starts: np.ndarray,
               noise: torch.Tensor, chunk_frames: int) -> torch.Tensor:
    frames = engine.run(image, signal, torch.from_numpy(starts), noise, chunk_frames=chunk_frames)
    return torch.cat(list(frames)).permute(0, 3, 1, 2)  # NHWC -> the reference's NCHW


def clip_inputs(cfg: SDAConfig, seconds: float, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    audio = (torch.randn(int(seconds * cfg.audio_rate), generator=gen) * 0.2).numpy()
    plan = plan_windows(audio.size, cfg.audio_rate, cfg.video_rate, cfg.audio_feat_samples)
    signal = torch.from_numpy(plan.pad(audio))
    image = torch.rand(1, 3, *cfg.img_size, generator=gen) * 2 - 1
    return image, signal, plan, draw_noise(plan.n_frames, cfg.aux_latent, seed)


@pytest.mark.parametrize("algorithm", ["winograd", "direct"])
def test_engine_equals_reference_full_size(crema, crema_generator, algorithm):
    nets = Networks.from_checkpoint(crema)
    image, signal, plan, noise = clip_inputs(crema.config, 0.3)
    assert plan.n_frames == 9
    ref = reference_forward(nets, image, plan.windows(signal), noise)
    engine = crema_generator.engine if algorithm == "winograd" else SDAEngine(crema, algorithm="direct")
    assert engine.algorithm == algorithm
    out = run_engine(engine, image, signal, plan.starts, noise, 256)
    assert ref.shape == out.shape == (9, 3, 128, 96)
    assert ref.std() > 0.3 and (ref[1:] - ref[:-1]).abs().max() > 0.02  # frames differ: the latent matters
    assert (out - ref).abs().max() < 1e-5


def test_engine_equals_reference_in_chunks(small):
    nets = Networks.from_checkpoint(small)
    image, signal, plan, noise = clip_inputs(small.config, 1.6, seed=1)
    assert plan.n_frames == 40
    ref = reference_forward(nets, image, plan.windows(signal), noise)
    engine = SDAEngine(small, batch_frames=4)
    whole = run_engine(engine, image, signal, plan.starts, noise, 256)
    chunked = run_engine(engine, image, signal, plan.starts, noise, 7)
    assert ref.std() > 0.3 and (ref[1:] - ref[:-1]).abs().max() > 0.1
    assert (whole - ref).abs().max() < 1e-5
    assert (chunked - ref).abs().max() < 1e-5
    assert (chunked - whole).abs().max() < 1e-5
    # the GRU states really are carried: restarting them at each chunk changes the frames after the first
    windows = plan.windows(signal)
    restarted = torch.cat([engine.encode_audio(windows[i:i + 7])[0] for i in range(0, 40, 7)])
    carried = engine.encode_audio(windows)[0]
    assert (restarted[7:] - carried[7:]).abs().max() > 1e-2


@pytest.mark.parametrize(("channels", "size"), [(8, (5, 3)), (16, (4, 6)), (4, (7, 9))])
def test_winograd_convolutions_match_torch(channels, size):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, channels, *size, generator=gen)
    conv = torch.randn(channels + 2, channels, 3, 3, generator=gen) / channels
    deconv = torch.randn(channels, channels + 3, 4, 4, generator=gen) / channels
    nhwc = x.permute(0, 2, 3, 1).contiguous()
    y = winograd.conv3x3(nhwc, winograd.conv3x3_filters(conv)).permute(0, 3, 1, 2)
    torch.testing.assert_close(y, F.conv2d(x, conv, padding=1), rtol=0, atol=2e-5)
    z = winograd.deconv4x4s2(nhwc, winograd.deconv4x4s2_filters(deconv)).permute(0, 3, 1, 2)
    expected = F.conv_transpose2d(x, deconv, stride=2, padding=1)
    torch.testing.assert_close(z, expected, rtol=0, atol=2e-5)
    direct = winograd.deconv4x4s2_direct(nhwc, winograd.deconv4x4s2_phases(deconv)).permute(0, 3, 1, 2)
    torch.testing.assert_close(direct, expected, rtol=0, atol=2e-5)


def test_winograd_matrices_are_the_known_ones():
    f23 = winograd.toom_cook(2, 3, (0, 1, -1))
    assert [[float(v) for v in row] for row in f23.at] == [[1, 1, 1, 0], [0, 1, -1, 1]]
    assert [[float(v) for v in row] for row in f23.g] == [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
    f43 = winograd.toom_cook(4, 3, (0, 1, -1, 2, -2))  # Lavin & Gray's F(4x4, 3x3), rows up to sign
    assert [abs(float(v)) for v in f43.bt[0]] == [4, 0, 5, 0, 1, 0]


# ---------------------------------------------------------------------------------------------- audio


def test_windows_at_50khz_25fps_match_the_original():
    plan = plan_windows(150_000, 50_000, 25, 10_000)  # GRID's 3 s example
    assert (plan.hop, plan.pad_left, plan.pad_right, plan.n_frames) == (2000, 4000, 4000, 75)
    np.testing.assert_array_equal(plan.starts, np.arange(75) * 2000)  # the original's i * hop
    np.testing.assert_allclose(plan.centres_s(), (np.arange(75) + 0.5) / 25, atol=1e-12)
    assert plan.starts[-1] + plan.window == 150_000 + 8000  # the last window ends where the padding does


def test_windows_at_16khz_30fps_keep_exact_timing():
    plan = plan_windows(48_000, 16_000, 30, 3200)
    assert (plan.hop, plan.pad_left, plan.pad_right, plan.n_frames) == (533, 1333, 1334, 90)
    assert list(plan.starts[:4]) == [0, 533, 1067, 1600]  # round(i * 533.33)
    np.testing.assert_allclose(plan.centres_s(), (np.arange(90) + 0.5) / 30, atol=1 / 16000)
    ten_minutes = plan_windows(600 * 16_000, 16_000, 30, 3200)
    assert ten_minutes.n_frames == 18_000
    drift = ten_minutes.centres_s()[-1] - (18_000 - 0.5) / 30
    assert abs(drift) < 1 / 16000  # the original's 533-sample hop would put it 0.375 s (11 frames) early


@pytest.mark.parametrize("n_samples", [47_999, 48_000, 48_300, 48_532, 48_533, 16_000 // 30 + 1])
def test_frame_count_is_duration_times_fps(n_samples):
    plan = plan_windows(n_samples, 16_000, 30, 3200)
    assert abs(plan.n_frames - n_output_frames(n_samples, 16_000, 30)) <= 1
    assert plan.starts[-1] + plan.window <= n_samples + plan.pad_left + plan.pad_right


def test_audio_preparation(small):
    cfg = small.config
    t = np.arange(16_000) / 16_000
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    stereo = np.stack([tone, 0.5 * tone], axis=1)
    prepared = prepare_audio(stereo, 16_000, cfg)
    np.testing.assert_allclose(prepared.driving, 0.75 * tone, atol=1e-7)
    assert prepared.resampled.size == 8000 and prepared.plan.n_frames == 25
    pcm = (tone * 32767).astype(np.int16)
    np.testing.assert_allclose(prepare_audio(pcm, 16_000, cfg).driving, tone, atol=1e-4)
    with pytest.raises(AudioError, match="silent"):
        prepare_audio(np.zeros(16_000, np.float32), 16_000, cfg)
    with pytest.raises(AudioError, match="shorter than one video frame"):
        prepare_audio(tone[:300], 16_000, cfg)


# ---------------------------------------------------------------------------------------------- generate


def test_generate_end_to_end_on_a_real_photo(crema_generator, astronaut, speech):
    audio, sr = speech
    result = crema_generator.generate(astronaut, audio, sr, seed=5)
    clip, truth = result.clip, result.ground_truth
    expected = round(audio.size / sr * 30)
    assert abs(clip.n_frames - expected) <= 1 and clip.fps == 30.0
    assert clip.frames.shape[1:] == astronaut.shape
    np.testing.assert_array_equal(clip.audio, audio)  # the driving audio, unmodified, at its own rate
    assert clip.sample_rate == sr
    # paste-back changes the face region only: the rest of the photo is untouched, pixel for pixel
    changed = (clip.frames != astronaut[None]).any(axis=(0, 3))
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 2000
    assert xs.min() > 120 and xs.max() < 330 and ys.min() > 20 and ys.max() < 260
    mouth = truth["photo_landmarks"][48:68]
    assert changed[np.round(mouth[:, 1]).astype(int), np.round(mouth[:, 0]).astype(int)].all()
    untouched = np.broadcast_to(astronaut[300:], clip.frames[:, 300:].shape)
    np.testing.assert_array_equal(clip.frames[:, 300:], untouched)
    # the frames move: noise and audio drive every frame differently
    assert np.abs(np.diff(clip.frames.astype(np.int16), axis=0)).max() > 0
    assert truth["generator"] == "sda" and truth["seed"] == 5 and truth["n_frames"] == clip.n_frames
    assert truth["paste_back"] is True and truth["noise_std"] == 0.33 and truth["img_size"] == [128, 96]
    assert truth["windows"]["pad_left"] == 1333 and np.asarray(truth["crop_to_photo"]).shape == (2, 3)
    assert crema_generator.description.startswith("speech-driven animation GAN")


def test_raw_crops_without_paste_back_and_determinism(crema, astronaut, speech):
    audio, sr = speech
    audio = audio[: int(0.3 * sr)]
    raw = SDAGenerator(crema, device="cpu", paste_back=False, chunk_frames=4)
    first = raw.generate(astronaut, audio, sr, seed=1)
    a = first.clip.frames
    assert a.shape == (9, 128, 96, 3) and a.dtype == np.uint8 and first.ground_truth["paste_back"] is False
    np.testing.assert_array_equal(a, raw.generate(astronaut, audio, sr, seed=1).clip.frames)
    b = raw.generate(astronaut, audio, sr, seed=2).clip.frames
    assert (a != b).any()
    assert not torch.equal(draw_noise(9, 10, 1), draw_noise(9, 10, 2))
    # the input crop is the photo aligned to the checkpoint's mean face
    crop = align_photo(astronaut, crema.config).crop
    assert crop.shape == (128, 96, 3) and crop[60:70, 40:56].mean() > 60  # the face, not black borders


def test_paste_back_blends_the_crop_into_the_photo_only_inside_the_mask(astronaut):
    cfg = crema_config()
    face = align_photo(astronaut, cfg)
    composer = PasteBack.build(astronaut, face.crop_to_photo, cfg.img_size)
    out = np.broadcast_to(astronaut, (2, *astronaut.shape)).copy()
    composer.apply(torch.full((2, 128, 96, 3), 200.0), out)
    centre = face.crop_to_photo @ np.array([47.5, 63.5, 1.0])  # the crop's centre, in the photo
    x, y = np.round(centre).astype(int)
    assert (out[:, y - 10:y + 10, x - 10:x + 10] == 200).all()
    changed = (out != astronaut[None]).any(axis=(0, 3))
    corners = np.array([[0, 0, 1], [95, 0, 1], [0, 127, 1], [95, 127, 1]]) @ face.crop_to_photo.T
    ys, xs = np.nonzero(changed)
    assert xs.min() > corners[:, 0].min() and xs.max() < corners[:, 0].max()
    assert ys.min() > corners[:, 1].min() and ys.max() < corners[:, 1].max()
    mask = composer.mask[..., 0]
    assert mask.max() == 1.0 and ((mask > 0) & (mask < 1)).sum() > 500  # a feathered edge


def test_output_equals_reference_through_the_whole_pipeline(small, small_generator):
    """The generator's uint8 frames are the reference pass's 125 y + 125, truncated (aligned input)."""
    cfg = small.config
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, (*cfg.img_size, 3), dtype=np.uint8)
    audio = (rng.standard_normal(12_000) * 0.1).astype(np.float32)
    gen = SDAGenerator(small, device="cpu", aligned=True)
    frames = gen.generate(crop, audio, 16_000, seed=4).clip.frames
    prepared = prepare_audio(audio, 16_000, cfg)
    signal = torch.from_numpy(prepared.plan.pad(prepared.resampled))
    ref = reference_forward(Networks.from_checkpoint(small), crop_to_tensor(crop), prepared.plan.windows(signal),
                            draw_noise(prepared.plan.n_frames, cfg.aux_latent, 4))
    expected = (ref * 125 + 125).clamp(0, 255).permute(0, 2, 3, 1).numpy()
    assert frames.shape == expected.shape and frames.shape[1:] == (32, 24, 3) and len(frames) >= 18
    # equal after truncation except where float rounding straddles an integer
    assert np.abs(frames.astype(float) - expected).max() < 1.0 + 1e-3
    assert (frames == expected.astype(np.uint8)).mean() > 0.999


def test_stream_yields_the_frames_of_generate_in_chunks(small, astronaut, speech):
    audio, sr = speech
    gen = SDAGenerator(small, device="cpu", chunk_frames=6)
    stream = gen.generate_stream(astronaut, audio, sr, seed=3)
    chunks = list(stream.chunks())
    assert [len(c) for c in chunks] == [6, 6, 6, 2] and stream.n_frames == 20 == stream.ground_truth["n_frames"]
    assert (stream.height, stream.width) == astronaut.shape[:2] and stream.fps == 25.0
    np.testing.assert_array_equal(np.concatenate(chunks), gen.generate(astronaut, audio, sr, seed=3).clip.frames)


def test_photo_variants_and_bad_inputs(small_generator, astronaut, speech):
    audio, sr = speech
    audio = audio[: sr // 4]
    grey = astronaut.mean(axis=2).astype(np.uint8)
    out = small_generator.generate(grey, audio, sr)
    assert out.clip.frames.shape[1:] == (*grey.shape, 3)
    rgba = np.concatenate([astronaut, np.full((*astronaut.shape[:2], 1), 255, np.uint8)], axis=2)
    assert small_generator.generate(rgba, np.stack([audio, audio], 1), sr).clip.frames.shape[1:] == astronaut.shape
    with pytest.raises(NoFaceError):
        small_generator.generate(np.full((256, 256, 3), 128, np.uint8), audio, sr)
    with pytest.raises(AudioError, match="silent"):
        small_generator.generate(astronaut, np.zeros(sr, np.float32), sr)
    with pytest.raises(AudioError, match="shorter"):
        small_generator.generate(astronaut, audio[:100], sr)


def test_registry_and_devices(small):
    assert "sda" in available()
    assert isinstance(create("sda", checkpoint=small, device="cpu"), SDAGenerator)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            SDAGenerator(small, device="cuda")
    with pytest.raises(ConfigError, match="--device must be auto, cpu, cuda"):
        SDAGenerator(small, device="tpu")
