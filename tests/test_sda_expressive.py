"""fakebench's additions to SDA: emotion codes and the masked output. Original checkpoints are untouched by
them (tests/test_sda.py); here: both implementations agree with them, they save and load, they train, and the
emotion option is refused for a checkpoint that has no emotions."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

from fakebench.errors import ConfigError, WeightsError
from fakebench.faces import default_template
from fakebench.generators.sda import SDAGenerator
from fakebench.generators.sda.checkpoint import init_checkpoint, load_fakebench, save_fakebench
from fakebench.generators.sda.config import SDAConfig
from fakebench.generators.sda.generator import Networks, SDAEngine
from fakebench.generators.sda.noise_generator import draw_noise
from fakebench.generators.sda.preprocessing import plan_windows
from fakebench.generators.sda.reference import reference_forward

EMOTIONS = ("happy", "sad")


def expressive_config(**changes) -> SDAConfig:
    values = dict(mean_face=default_template((32, 24)), img_size=(32, 24), audio_rate=8000, video_rate=25,
                  audio_feat_len=0.2, audio_feat_samples=1600, output="masked", emotions=EMOTIONS, emotion_dim=4)
    return SDAConfig(**(values | changes))


def scaled_checkpoint(cfg: SDAConfig, seed: int = 0):
    """Random weights scaled so that every path (audio, noise, emotion) changes the frames (see test_sda)."""
    ckpt = init_checkpoint(cfg, seed=seed, random_statistics=True)
    for state in ckpt.parts().values():
        for key, value in state.items():
            if key.endswith("weight") and value.ndim >= 3:
                value *= math.sqrt(6)
            elif value.ndim == 2:  # GRU matrices and the emotion codes
                value *= 4
    return ckpt


def inputs(cfg: SDAConfig, seconds: float = 0.8, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    audio = (torch.randn(int(seconds * cfg.audio_rate), generator=gen) * 0.2).numpy()
    plan = plan_windows(audio.size, cfg.audio_rate, cfg.video_rate, cfg.audio_feat_samples)
    image = torch.rand(1, 3, *cfg.img_size, generator=gen) * 2 - 1
    return image, torch.from_numpy(plan.pad(audio)), plan, draw_noise(plan.n_frames, cfg.aux_latent, seed)


def engine_frames(engine, image, signal, plan, noise, **kw) -> torch.Tensor:
    return torch.cat(list(engine.run(image, signal, torch.from_numpy(plan.starts), noise, chunk_frames=7,
                                     **kw))).permute(0, 3, 1, 2)


@pytest.mark.parametrize("algorithm", ["winograd", "direct"])
def test_engine_equals_reference_with_emotion_and_mask(algorithm):
    ckpt = scaled_checkpoint(expressive_config())
    nets = Networks.from_checkpoint(ckpt)
    image, signal, plan, noise = inputs(ckpt.config)
    engine = SDAEngine(ckpt, algorithm=algorithm, batch_frames=4)
    for emotion, intensity in (("neutral", 0.0), ("happy", 0.8), ("sad", 1.0)):
        ref = reference_forward(nets, image, plan.windows(signal), noise, emotion, intensity)
        out = engine_frames(engine, image, signal, plan, noise, emotion=emotion, intensity=intensity)
        assert ref.shape == out.shape == (plan.n_frames, 3, 32, 24)
        assert (out - ref).abs().max() < 1e-5
    happy = engine_frames(engine, image, signal, plan, noise, emotion="happy", intensity=1.0)
    sad = engine_frames(engine, image, signal, plan, noise, emotion="sad", intensity=1.0)
    neutral = engine_frames(engine, image, signal, plan, noise)
    assert (happy - sad).abs().mean() > 5e-3 and (happy - neutral).abs().mean() > 5e-3
    zero = engine_frames(engine, image, signal, plan, noise, emotion="happy", intensity=0.0)
    assert (zero - neutral).abs().max() < 1e-6  # intensity 0 is neutral


def test_masked_output_is_the_still_where_the_mask_is_one():
    cfg = expressive_config()
    ckpt = init_checkpoint(cfg, seed=1)
    last = max(int(k.split(".")[1]) for k in ckpt.generator if re.fullmatch(r"dcl\.\d+\.weight", k))
    weight = ckpt.generator[f"dcl.{last}.weight"]
    assert weight.shape[1] == 4  # colour + mask
    weight.zero_()  # colour tanh(0) = 0 and mask sigmoid(0) = 0.5: frame = still / 2
    image, signal, plan, noise = inputs(cfg)
    out = engine_frames(SDAEngine(ckpt), image, signal, plan, noise)
    assert torch.allclose(out, (image / 2).expand_as(out), atol=1e-6)


def test_config_and_checkpoint_round_trip(tmp_path):
    ckpt = scaled_checkpoint(expressive_config())
    folder = save_fakebench(ckpt, tmp_path / "expressive")
    meta = json.loads((folder / "config.json").read_text())
    assert meta["output"] == "masked" and meta["emotions"] == list(EMOTIONS) and meta["emotion_dim"] == 4
    back = load_fakebench(folder)
    assert back.config.same_as(ckpt.config) and back.config.emotions == EMOTIONS
    assert torch.equal(back.generator["emotion.weight"], ckpt.generator["emotion.weight"])
    plain = save_fakebench(init_checkpoint(expressive_config(output="rgb", emotions=(), emotion_dim=0)),
                           tmp_path / "plain")
    assert not {"output", "emotions", "emotion_dim"} & set(json.loads((plain / "config.json").read_text()))
    with pytest.raises(WeightsError):
        expressive_config(emotions=("neutral", "happy"))
    with pytest.raises(WeightsError):
        expressive_config(emotion_dim=0)
    with pytest.raises(WeightsError):
        expressive_config(output="alpha")


def test_generator_emotion_option(astronaut, speech_16k):
    audio, sr = speech_16k
    audio = audio[: sr]
    ckpt = scaled_checkpoint(expressive_config())
    frames = {}
    for emotion in ("neutral", "happy", "sad"):
        gen = SDAGenerator(ckpt, device="cpu", emotion=emotion, intensity=0.9, paste_back=False)
        made = gen.generate(astronaut, audio, sr, seed=2)
        assert made.ground_truth["emotion"] == emotion and made.ground_truth["output"] == "masked"
        frames[emotion] = made.clip.frames.astype(np.int16)
    assert np.abs(frames["happy"] - frames["sad"]).mean() > 0.3  # grey levels of the 32x24 crop
    with pytest.raises(ConfigError, match="not trained with emotion angry"):
        SDAGenerator(ckpt, device="cpu", emotion="angry")
    plain = scaled_checkpoint(expressive_config(output="rgb", emotions=(), emotion_dim=0))
    with pytest.raises(ConfigError, match="its emotions: none"):
        SDAGenerator(plain, device="cpu", emotion="happy")
    assert SDAGenerator(plain, device="cpu").generate(astronaut, audio, sr).ground_truth["emotion"] == "neutral"


# ------------------------------------------------------------------------------------------- training

TINY_EXPRESSIVE = {
    "name": "tiny-expressive",
    "model": {"img_size": [64, 48], "audio_rate": 8000, "video_rate": 25, "base_channels": 8, "id_enc_dim": 16,
              "aud_enc_dim": 32, "rnn_gen_dim": 32, "aux_latent": 4, "output": "masked",
              "emotions": ["happy", "sad", "angry", "surprised", "fearful", "disgusted"], "emotion_dim": 4},
    "data": {"sequence_frames": 8, "batch_size": 2, "val_clips": 1, "val_frames": 25, "sync_frames": 5,
             "min_offsync_frames": 5},
    "discriminators": {"base_channels": 8, "audio_dim": 32, "sync_dim": 32, "sequence_downsample": 1},
    "schedule": {"steps": 4, "checkpoint_every": 2, "log_every": 1},
}


@pytest.fixture(scope="module")
def emotional(tmp_path_factory):
    from fakebench.generators.sda.training.config import from_dict
    from fakebench.generators.sda.training.data import prepare_data
    from fakebench.generators.sda.training.warp_data import make_warp_clips

    clips = tmp_path_factory.mktemp("emotional-clips")
    make_warp_clips(clips, clips=2, val_clips=1, seed=5, max_side=320, photos=("astronaut",), looks=3,
                    emotion_share=1.0)
    cfg = from_dict(TINY_EXPRESSIVE, "tiny-expressive")
    return cfg, prepare_data(clips, tmp_path_factory.mktemp("cache"), cfg.model.sda_config(), cfg.data)


def test_emotion_labels_and_neutral_stills_come_from_the_ground_truth(emotional):
    cfg, data = emotional
    for clip in data.clips:
        assert clip.emotion in cfg.model.emotions and 0.4 <= clip.intensity <= 1.0
        stills = clip.still_frames()
        # warp's expression rises from the first frame and falls to the last: only the ends are neutral
        assert 0 in stills and len(stills) < 0.3 * clip.n_frames
        assert clip.neutral[stills].all()


def test_emotion_codes_train_and_the_engine_reproduces_them(emotional):
    from fakebench.generators.sda.training.data import SequenceSampler, to_model_range
    from fakebench.generators.sda.training.trainer import Trainer, generate_sequences

    cfg, data = emotional
    torch.set_num_threads(1)
    trainer = Trainer(cfg, seed=0)
    sampler = SequenceSampler(data, cfg.data, 1600, seed=0, emotions=cfg.model.emotions)
    batch = sampler.sample()
    assert batch.emotion.tolist() == [cfg.model.emotions.index(data.clips[0].emotion)] * 2
    for _ in range(2):
        losses = trainer.train_step(sampler.sample())
        assert all(math.isfinite(v) for v in losses.values())
        grad = trainer.nets.generator.emotion.weight.grad
        assert grad is not None and float(grad.abs().sum()) > 0  # the code of the clip's emotion learns
    clip, n = data.clips[0], 20
    still = to_model_range(clip.frames[int(clip.still_frames()[0])][None])
    noise = draw_noise(n, cfg.model.aux_latent, seed=7)
    for module in trainer.nets.modules().values():
        module.eval()
    with torch.no_grad():
        code = trainer.nets.generator.emotion_code(clip.emotion, clip.intensity)
        expected = generate_sequences(trainer.nets, still, torch.from_numpy(clip.windows(0, n, 1600))[None],
                                      noise[None], code)[0].permute(0, 2, 3, 1)
    engine = SDAEngine(trainer.checkpoint("test"), "cpu")
    got = torch.cat(list(engine.run(still, torch.from_numpy(clip.signal), torch.from_numpy(clip.starts[:n]), noise,
                                    chunk_frames=8, emotion=clip.emotion, intensity=clip.intensity)))
    torch.testing.assert_close(got, expected, atol=2e-4, rtol=0)


def test_paste_back_keeps_the_full_resolution_photo_where_the_network_kept_the_still(astronaut):
    from fakebench.generators.sda.compositing import PasteBack

    h, w = 128, 96
    # a crop of the photo's middle at half size: crop pixel (x, y) -> photo (2x + 160, 2y + 128)
    crop_to_photo = np.array([[2.0, 0.0, 160.0], [0.0, 2.0, 128.0]])
    paste = PasteBack.build(astronaut, crop_to_photo, (h, w))
    crops = torch.full((2, h, w, 3), 200.0)
    kept, drawn = astronaut.copy()[None].repeat(2, 0), astronaut.copy()[None].repeat(2, 0)
    paste.apply(crops, kept, drawn=torch.zeros(2, h, w, 1))
    paste.apply(crops, drawn, drawn=torch.ones(2, h, w, 1))
    np.testing.assert_array_equal(kept, astronaut[None].repeat(2, 0))  # nothing drawn: the photo, every pixel
    plain = astronaut.copy()[None].repeat(2, 0)
    paste.apply(crops, plain)
    np.testing.assert_array_equal(drawn, plain)  # all drawn: the ordinary paste-back
    assert (drawn[:, 200:300, 200:300] == 200).all()  # the crop's middle is the drawing


def test_cli_emotion_for_a_checkpoint_without_emotions_is_a_one_line_error(tmp_path, capsys, astronaut,
                                                                            speech_16k):
    from fakebench.cli import main
    from fakebench.media import write_audio, write_image

    plain = save_fakebench(init_checkpoint(expressive_config(output="rgb", emotions=(), emotion_dim=0)),
                           tmp_path / "plain")
    expressive = save_fakebench(scaled_checkpoint(expressive_config()), tmp_path / "expressive")
    photo = write_image(tmp_path / "face.png", astronaut)
    audio = write_audio(tmp_path / "speech.wav", speech_16k[0][: speech_16k[1]], speech_16k[1])
    args = ["generate", "-g", "sda", "--image", str(photo), "--audio", str(audio), "--emotion", "happy"]
    code = main([*args, "--checkpoint", str(plain), "-o", str(tmp_path / "x.mp4")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not trained with emotion happy" in err[0]
    assert not (tmp_path / "x.mp4").exists()
    code = main([*args, "--checkpoint", str(expressive), "--intensity", "0.7", "-o", str(tmp_path / "y.mp4")])
    truth = json.loads((tmp_path / "y.json").read_text())
    assert code == 0 and truth["emotion"] == "happy" and truth["intensity"] == 0.7
