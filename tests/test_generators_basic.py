"""The registry, the static and desync generators, and the generated-clip files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import signal

from fakebench.errors import AudioError, ConfigError, NoFaceError
from fakebench.faces import analyze, mouth_opening
from fakebench.generators.base import available, create
from fakebench.generators.desync import shift_audio
from fakebench.media import read_clip
from fakebench.synthetic import moving_photo


@pytest.fixture(scope="module")
def small_photo(astronaut):
    return np.ascontiguousarray(astronaut[20:276, 100:356])  # 256x256 around the face


def test_registry_lists_all_four_generators():
    names = available()
    assert {"sda", "warp", "static", "desync"} <= set(names)
    assert all(names[n].description for n in ("sda", "warp", "static", "desync"))
    assert all(names[n].is_available for n in ("warp", "static", "desync"))  # nothing to download
    assert names["warp"].plugin.takes == "photo" and names["desync"].plugin.takes == "clip"
    with pytest.raises(ConfigError, match="unknown generator"):
        create("nope")


@pytest.mark.parametrize("motion", [False, True])
def test_static_holds_the_photo_with_audio_attached(small_photo, speech_16k, motion):
    audio, sr = speech_16k
    out = create("static", head_motion=motion).generate(small_photo, audio, sr, seed=3)
    clip = out.clip
    assert abs(clip.n_frames - round(audio.size / sr * 25)) <= 1
    assert clip.frames.shape[1:3] == small_photo.shape[:2]
    np.testing.assert_array_equal(clip.audio, audio)
    if not motion:
        assert np.abs(clip.frames.astype(int) - small_photo).max() <= 1  # the photo itself, held still
    else:
        change = np.abs(clip.frames.astype(int) - clip.frames[0]).mean(axis=(1, 2, 3))
        assert 0 < change.max() < 15
    track = analyze(clip)
    opening = mouth_opening(track.landmarks[track.valid])
    assert np.std(opening) < 0.01  # no lip movement at all
    assert out.ground_truth["blinks"] == [] and len(out.ground_truth["mouth_opening"]) == clip.n_frames


def test_static_bad_inputs(small_photo, speech_16k):
    audio, sr = speech_16k
    gen = create("static")
    with pytest.raises(NoFaceError):
        gen.generate(np.full((200, 200, 3), 127, np.uint8), audio, sr)
    with pytest.raises(AudioError, match="silent"):
        gen.generate(small_photo, np.zeros(sr, np.float32), sr)
    with pytest.raises(AudioError, match="shorter than one video frame"):
        gen.generate(small_photo, audio[:100], sr)
    stereo = np.stack([audio, audio], axis=1)
    assert gen.generate(small_photo[..., 0], stereo, sr).clip.frames.shape[-1] == 3  # grey photo, stereo audio


def test_shift_audio_moves_samples_both_ways():
    a = np.arange(1, 11, dtype=np.float32)
    np.testing.assert_array_equal(shift_audio(a, 3), [0, 0, 0, 1, 2, 3, 4, 5, 6, 7])
    np.testing.assert_array_equal(shift_audio(a, -3), [4, 5, 6, 7, 8, 9, 10, 0, 0, 0])


@pytest.mark.parametrize("k", [3, -4])
def test_desync_muxed_audio_is_shifted_by_exactly_k_frames(tmp_path, astronaut, speech_16k, k):
    audio, sr = speech_16k
    n = int(audio.size / sr * 25)
    real = moving_photo(astronaut, n_frames=n, size=(128, 128), centre=(225, 130), zoom=0.5, audio=audio[: n * 640],
                        sample_rate=sr).clip
    out = create("desync", shift_frames=k).from_clip(real)
    video, truth = out.save(tmp_path / "desync.mp4")
    back = read_clip(video)
    assert json.loads(truth.read_text())["audio_offset_frames"] == k
    m = min(back.audio.size, real.audio.size)
    corr = signal.correlate(back.audio[:m], real.audio[:m], mode="full", method="fft")
    lag = int(np.argmax(corr)) - (m - 1)
    assert lag == k * sr // 25  # exactly K frames of 640 samples, through AAC encode and decode
    assert back.n_frames == real.n_frames


def test_desync_swaps_in_other_audio_and_refuses_photos(astronaut, speech_16k):
    audio, sr = speech_16k
    real = moving_photo(astronaut, n_frames=20, size=(96, 96), centre=(225, 130), zoom=0.4,
                        audio=np.zeros(12800, np.float32) + 0.1, sample_rate=sr).clip
    out = create("desync", shift_frames=0).from_clip(real, other_audio=audio, other_sample_rate=sr,
                                                     audio_source="speech")
    assert out.clip.audio.size == 12800 and np.allclose(out.clip.audio, audio[:12800])
    assert out.ground_truth["audio_source"] == "speech"
    with pytest.raises(ConfigError, match="--video"):
        create("desync").generate(astronaut, audio, sr)
    with pytest.raises(ConfigError, match="longer than the clip"):
        create("desync", shift_frames=100).from_clip(real)
    with pytest.raises(ConfigError, match="non-zero --shift-frames"):  # that would be the real clip itself
        create("desync").from_clip(real)
    with pytest.raises(AudioError, match="silent"):
        create("desync", shift_frames=2).from_clip(real, other_audio=np.zeros(sr, np.float32), other_sample_rate=sr)


def test_desync_corpus_fake_draws_its_shift_from_the_seed(astronaut, speech_16k):
    audio, sr = speech_16k
    real = moving_photo(astronaut, n_frames=30, size=(96, 96), centre=(225, 130), zoom=0.4,
                        audio=audio[: 30 * 640], sample_rate=sr).clip
    gen = create("desync")
    shifts = {s: gen.fake_from_source(real, real.audio, sr, seed=s).ground_truth["audio_offset_frames"]
              for s in range(12)}
    assert all(3 <= abs(k) <= 12 for k in shifts.values()) and {k > 0 for k in shifts.values()} == {True, False}
    assert gen.fake_from_source(real, real.audio, sr, seed=5).ground_truth["audio_offset_frames"] == shifts[5]
    other = gen.fake_from_source(real, audio[: 30 * 640], sr, seed=1, audio_source="c2")
    assert other.ground_truth["audio_offset_frames"] == 0 and other.ground_truth["audio_source"] == "c2"
