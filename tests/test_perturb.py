"""Robustness perturbations: the spec's grid, a change that grows with every level, determinism, inputs untouched."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fakebench import perturb
from fakebench.errors import AudioError, ConfigError
from fakebench.media import Clip
from fakebench.perturb import LEVELS, PERTURBATIONS, apply, apply_to_clip, parse_perturbations
from fakebench.samples import Sample

VIDEO = [n for n, p in PERTURBATIONS.items() if p.modality == "video"]
AUDIO = [n for n, p in PERTURBATIONS.items() if p.modality == "audio"]
N_FRAMES = 25


@pytest.fixture(scope="module")
def clip(astronaut, speech_16k) -> Clip:
    """25 frames of the astronaut photo at 96x96, sliding (every frame differs), with 16 kHz speech."""
    photo = np.asarray(Image.fromarray(astronaut).resize((96, 96), Image.Resampling.BILINEAR))
    frames = np.stack([np.roll(photo, 2 * t, axis=1) for t in range(N_FRAMES)])
    audio, sr = speech_16k
    return Clip(frames=frames, fps=25.0, audio=audio.astype(np.float32), sample_rate=sr)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / mse))


def snr_db(ref: np.ndarray, x: np.ndarray) -> float:
    ref64 = ref.astype(np.float64)
    return float(10 * np.log10(np.sum(ref64 ** 2) / np.sum((x - ref64) ** 2)))


def chroma_std(frames: np.ndarray) -> float:
    rgb = frames.astype(np.float64)
    y = rgb @ [0.299, 0.587, 0.114]
    return float(np.std(np.stack([rgb[..., 2] - y, rgb[..., 0] - y])))


def laplacian_var(frames: np.ndarray) -> float:
    g = frames.astype(np.float64).mean(-1)
    lap = g[:, 1:-1, :-2] + g[:, 1:-1, 2:] + g[:, :-2, 1:-1] + g[:, 2:, 1:-1] - 4 * g[:, 1:-1, 1:-1]
    return float(lap.var())


def repeated_frames(frames: np.ndarray) -> int:
    return int(sum(np.array_equal(frames[t], frames[t - 1]) for t in range(1, len(frames))))


def band_energy(audio: np.ndarray, sr: int, above_hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(audio.astype(np.float64))) ** 2
    return float(spectrum[np.fft.rfftfreq(audio.size, 1 / sr) > above_hz].sum())


def lag_of(ref: np.ndarray, x: np.ndarray) -> int:
    """The delay of `x` behind `ref` in samples, by FFT cross-correlation."""
    n = 1 << int(np.ceil(np.log2(2 * ref.size)))
    corr = np.fft.irfft(np.fft.rfft(x, n) * np.conj(np.fft.rfft(ref, n)), n)
    lag = int(np.argmax(corr))
    return lag - n if lag > n // 2 else lag


# What each perturbation changes, measured so that it must rise strictly with the level.
VIDEO_CHANGE = {
    "saturation": lambda o, p: -chroma_std(p),
    "contrast": lambda o, p: float(np.abs(p.astype(float) - o).mean()),
    "blockwise": lambda o, p: float(np.mean(np.any(p != o, axis=-1))),
    "noise": lambda o, p: float(np.abs(p.astype(float) - o).mean()),
    "blur": lambda o, p: -laplacian_var(p),
    "resize": lambda o, p: -psnr(o, p),
    "jpeg": lambda o, p: -psnr(o, p),
    "h264": lambda o, p: -psnr(o, p),
    "framedrop": lambda o, p: repeated_frames(p),
}


def test_the_grid_is_the_specs_deeperforensics_grid():
    assert list(PERTURBATIONS) == ["saturation", "contrast", "blockwise", "noise", "blur", "resize", "jpeg",
                                   "h264", "framedrop", "audio_noise", "mp3", "aac", "resample", "audio_offset"]
    spec = {"saturation": (0.4, 0.3, 0.2, 0.1, 0.0), "contrast": (0.85, 0.725, 0.6, 0.475, 0.35),
            "blockwise": (16, 32, 48, 64, 80), "noise": (0.001, 0.002, 0.005, 0.01, 0.05),
            "blur": (7, 9, 13, 17, 21), "resize": (2, 3, 4, 5, 6), "h264": (30, 32, 35, 38, 40),
            "audio_noise": (30, 20, 10, 5, 0)}
    for name, values in spec.items():
        assert tuple(perturb.perturbation_value(name, level) for level in LEVELS) == values
    assert all(len(p.values) == len(LEVELS) for p in PERTURBATIONS.values())


def test_parse_perturbations():
    assert parse_perturbations("blur:3,h264:5") == [("blur", 3), ("h264", 5)]
    assert parse_perturbations([" Blur : 1 ", "audio_offset:5,mp3:2"]) == [("blur", 1), ("audio_offset", 5),
                                                                             ("mp3", 2)]
    for bad in ("bogus:1", "blur:0", "blur:6", "blur", "blur:", "blur:x", "blur:2.5", "", "blur:1,,h264:2"):
        with pytest.raises(ConfigError) as err:
            parse_perturbations(bad)
        message = err.value.one_line()
        assert message == str(err.value) and "saturation" in message and "audio_offset" in message
        assert "1-5" in message


def test_apply_checks_name_level_and_seed(clip):
    with pytest.raises(ConfigError, match="unknown perturbation 'sharpen'"):
        apply(clip, "sharpen", 1)
    with pytest.raises(ConfigError, match="1-5"):
        apply(clip, "blur", 6)
    with pytest.raises(ConfigError, match="seed"):
        apply(clip, "blur", 1, seed=-1)
    for level in (0, 6, 2.0, True, "3"):
        with pytest.raises(ConfigError, match="1-5"):
            perturb.perturbation_value("blur", level)


@pytest.mark.parametrize("name", VIDEO)
def test_video_perturbation_grows_with_level_and_keeps_timing_and_audio(clip, name):
    changes = []
    for level in LEVELS:
        out, facts = apply_to_clip(clip, name, level, seed=0)
        assert out.frames.shape == clip.frames.shape and out.frames.dtype == np.uint8
        assert out.fps == clip.fps and out.sample_rate == clip.sample_rate
        assert np.array_equal(out.audio, clip.audio)
        assert facts["perturbation"] == name and facts["level"] == level
        assert facts["value"] == PERTURBATIONS[name].values[level - 1]
        changes.append(VIDEO_CHANGE[name](clip.frames, out.frames))
    assert all(a < b for a, b in zip(changes, changes[1:], strict=False)), (name, changes)


def test_video_perturbations_do_what_they_say(clip):
    original = clip.frames.astype(np.float64)
    grey = apply(clip, "saturation", 5).frames.astype(int)
    assert np.abs(grey - grey[..., :1]).max() <= 1  # chroma 0: R = G = B
    for level in LEVELS:
        scale = PERTURBATIONS["contrast"].values[level - 1]
        assert np.abs(apply(clip, "contrast", level).frames - original * scale).max() <= 0.501

    for level in LEVELS:  # 8x8 grey blocks, round(n * 96 / 256) of them in every frame
        out, facts = apply_to_clip(clip, "blockwise", level)
        changed = np.any(out.frames != clip.frames, axis=-1)
        assert np.all(out.frames[changed] == 128)
        assert facts["blocks_per_frame"] == max(1, round(facts["value"] * 96 / 256))
        assert changed.sum(axis=(1, 2)).max() <= facts["blocks_per_frame"] * 64

    ycc = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
    for level in (1, 2):  # the noise's variance on YCbCr in [0, 1] is the level's value (before clipping bites)
        noisy = apply(clip, "noise", level).frames.astype(np.float64)
        diff = (noisy - original) / 255 @ ycc.T
        assert diff.var(axis=(0, 1, 2)) == pytest.approx([PERTURBATIONS["noise"].values[level - 1]] * 3,
                                                         rel=0.15)

    for level in LEVELS:  # frame dropping: exactly round(rate * 24) frames repeat the previous one
        out, facts = apply_to_clip(clip, "framedrop", level)
        assert repeated_frames(out.frames) == facts["dropped_frames"] == [1, 2, 5, 7, 12][level - 1]
        assert np.array_equal(out.frames[0], clip.frames[0])
        assert all(any(np.array_equal(f, g) for g in clip.frames) for f in out.frames)


def test_odd_sizes_survive_resize_and_h264(clip):
    odd = Clip(frames=np.ascontiguousarray(clip.frames[:6, :47, :63]), fps=30000 / 1001, audio=clip.audio,
               sample_rate=clip.sample_rate)
    for name in ("resize", "h264", "blur", "jpeg"):
        out = apply(odd, name, 5)
        assert out.frames.shape == odd.frames.shape and out.fps == odd.fps
        assert 15 < psnr(odd.frames, out.frames) < 40


def test_audio_noise_hits_the_snr(clip):
    for level in LEVELS:
        out, facts = apply_to_clip(clip, "audio_noise", level, seed=3)
        assert abs(snr_db(clip.audio, out.audio) - facts["value"]) < 1.0
        assert np.array_equal(out.frames, clip.frames)


@pytest.mark.parametrize("name", ["mp3", "aac"])
def test_codecs_degrade_with_bit_rate_without_shifting_the_audio(clip, name):
    snrs = []
    for level in LEVELS:
        out, facts = apply_to_clip(clip, name, level)
        assert out.audio.shape == clip.audio.shape and out.sample_rate == clip.sample_rate
        assert np.array_equal(out.frames, clip.frames)
        assert lag_of(clip.audio, out.audio) == 0
        assert facts["encode_sample_rate"] == 16000
        snrs.append(snr_db(clip.audio, out.audio))
    assert all(a > b for a, b in zip(snrs, snrs[1:], strict=False)), snrs
    assert snrs[0] > 20 and snrs[-1] < 12


def test_mp3_encodes_at_a_rate_that_allows_the_bit_rate():
    assert perturb._mp3_rate(48000, 128000) == 48000
    assert perturb._mp3_rate(48000, 16000) == 24000
    assert perturb._mp3_rate(44100, 8000) == 24000
    assert perturb._mp3_rate(16000, 8000) == 16000
    assert perturb._mp3_rate(22050, 320000) == 32000  # none at or below: the lowest that allows it


def test_resampling_removes_more_of_the_high_band_with_each_level(clip):
    sr = clip.sample_rate
    high = []
    for level in LEVELS:
        out, facts = apply_to_clip(clip, "resample", level)
        assert facts["resampled"] and out.audio.shape == clip.audio.shape
        nyquist = facts["value"] / 2
        assert band_energy(out.audio, sr, nyquist * 1.05) < 1e-3 * band_energy(clip.audio, sr, nyquist * 1.05)
        assert band_energy(out.audio, sr, 500) > 0.9 * band_energy(clip.audio, sr, 500) - \
            band_energy(clip.audio, sr, nyquist)  # what is below the new Nyquist rate stays
        high.append(band_energy(out.audio, sr, 1500))
    assert all(a > b for a, b in zip(high, high[1:], strict=False)), high
    low = Clip(frames=clip.frames, fps=clip.fps, audio=perturb.resample_audio(clip.audio, sr, 4000),
               sample_rate=4000)
    same, facts = apply_to_clip(low, "resample", 1)
    assert not facts["resampled"] and np.array_equal(same.audio, low.audio)


def test_audio_offset_is_recovered_exactly_by_cross_correlation(clip):
    for level in LEVELS:
        out, facts = apply_to_clip(clip, "audio_offset", level)
        frames = PERTURBATIONS["audio_offset"].values[level - 1]
        assert facts["offset_frames"] == frames and facts["offset_samples"] == frames * 640
        assert facts["offset_s"] == pytest.approx(frames / 25)
        assert out.audio.shape == clip.audio.shape and np.array_equal(out.frames, clip.frames)
        assert lag_of(clip.audio, out.audio) == facts["offset_samples"]


@pytest.mark.parametrize("name", ["blockwise", "noise", "framedrop", "audio_noise"])
def test_same_seed_same_output_other_seed_other_output(clip, name):
    a, b, c = (apply(clip, name, 3, seed=s) for s in (7, 7, 8))
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio)
    assert not (np.array_equal(a.frames, c.frames) and np.array_equal(a.audio, c.audio))


def test_samples_in_samples_out_inputs_untouched(clip):
    frames, audio = clip.frames.copy(), clip.audio.copy()
    track = object()  # stands for a FaceTrack already computed
    sample = Sample.from_clip(clip, clip_id="c1", track=track, label="fake", identity="id7", split="test",
                              meta={"generator": "warp"})
    outs = {name: apply(sample, name, 3, seed=1) for name in PERTURBATIONS}
    assert np.array_equal(clip.frames, frames) and np.array_equal(clip.audio, audio)
    assert dict(sample.meta) == {"generator": "warp"} and sample.track is track
    for name, out in outs.items():
        assert isinstance(out, Sample) and out is not sample and out.path is None
        assert (out.clip_id, out.label, out.identity, out.split) == ("c1", "fake", "id7", "test")
        assert out.meta["generator"] == "warp" and out.meta["perturbed_from"] == "c1"
        assert (out.meta["perturbation"], out.meta["level"]) == (name, 3)
        assert out.meta["value"] == PERTURBATIONS[name].values[2] and out.meta["perturbation_seed"] == 1
        # audio perturbations keep the frames, so the known track travels; video ones are analysed afresh
        assert out.has_track == (PERTURBATIONS[name].modality == "audio")
        if out.has_track:
            assert out.track is track
    mixed = apply(outs["blur"], "h264", 2)
    assert [(p["perturbation"], p["level"]) for p in mixed.meta["perturbations"]] == [("blur", 3), ("h264", 2)]
    assert outs["blur"].meta["perturbations"] == [{"perturbation": "blur", "level": 3, "value": 13}]


def test_audio_perturbations_need_audio(clip):
    mute = Clip(frames=clip.frames[:4], fps=25.0, has_audio_track=False)
    silent = Clip(frames=clip.frames[:4], fps=25.0, audio=np.zeros(16000, np.float32), sample_rate=16000)
    for name in AUDIO:
        with pytest.raises(AudioError, match="no audio"):
            apply(mute, name, 1)
    with pytest.raises(AudioError, match="silent"):
        apply(silent, "audio_noise", 1)
    assert apply(mute, "blur", 1).n_frames == 4  # video perturbations do not need any
