"""The warp generator: its ground truth must be what fakebench's own face analysis sees in the video."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from fakebench.errors import AudioError, ConfigError, NoFaceError
from fakebench.faces import analyze, eye_aspect_ratio, mouth_opening, photo_face, similarity_transform
from fakebench.generators.warp import (
    BLINK_RATE_RANGE,
    OPENING_MAX,
    FaceRig,
    Warper,
    WarpGenerator,
    apply_transforms,
    articulation,
    draw_blinks,
    pose_transforms,
)
from fakebench.media import resample_audio

SR = 16000
SILENCE_S = 0.8


@pytest.fixture(scope="module")
def face_photo(astronaut) -> np.ndarray:
    """256 x 256 around the astronaut's face (centre about (225, 130) in the 512 x 512 photo)."""
    return np.ascontiguousarray(astronaut[2:258, 97:353])



@pytest.fixture(scope="module")
def talking(face_photo, speech_16k):
    """~2.3 s of speech, 0.8 s of silence, a high blink rate and head motion; and the speech length (s)."""
    speech, sr = speech_16k
    audio = np.concatenate([speech, np.zeros(round(SILENCE_S * sr), np.float32)])
    out = WarpGenerator(blink_rate_per_min=70).generate(face_photo, audio, sr, seed=5)
    return out, speech.size / sr


@pytest.fixture(scope="module")
def measured(talking):
    """fakebench's own FaceTrack of the talking clip: what a benchmark user's metrics will see."""
    track = analyze(talking[0].clip)
    assert track.valid.all()
    return track


def test_blinks_are_visible_to_the_face_analysis(talking, measured):
    truth = talking[0].ground_truth
    ear = eye_aspect_ratio(measured.landmarks)
    assert len(truth["blinks"]) >= 3
    open_eye = np.median(ear)
    assert 0.2 < open_eye < 0.45
    near_blink = np.zeros(len(ear), bool)
    for blink in truth["blinks"]:
        assert ear[blink["peak_frame"]] < 0.75 * open_eye, f"blink not visible: {blink}"
        near_blink[max(blink["start_frame"] - 2, 0):blink["end_frame"] + 3] = True
    assert np.mean(ear[~near_blink] > 0.75 * open_eye) >= 0.9, "eyes look closed away from the blinks"


def test_measured_mouth_opening_follows_the_ground_truth(talking, measured):
    driven = np.array(talking[0].ground_truth["mouth_opening"])
    opening = mouth_opening(measured.landmarks)
    assert np.corrcoef(driven, opening)[0, 1] > 0.8
    assert np.abs(opening - driven).mean() < 0.04


def test_silence_closes_the_measured_mouth(talking, measured):
    out, speech_s = talking
    truth = out.ground_truth
    fps = truth["fps"]
    silent = slice(int(np.ceil((speech_s + 0.2) * fps)), truth["n_frames"])
    speaking = slice(0, int(speech_s * fps))
    opening = mouth_opening(measured.landmarks)
    assert np.all(opening[silent] < truth["mouth_opening_closed"] + 0.05)
    assert np.median(opening[silent]) < 0.2 * opening[speaking].max()


def test_blinks_in_the_ground_truth(talking):
    truth = talking[0].ground_truth
    driven = np.array(truth["eye_aspect_ratio"])
    closure = np.array(truth["eye_closure"])
    assert len(truth["blinks"]) >= 3
    for blink in truth["blinks"]:
        assert 100 <= blink["duration_ms"] <= 400
        assert blink["start_frame"] <= blink["peak_frame"] <= blink["end_frame"]
        assert closure[blink["peak_frame"]] == 1.0
        assert 0.04 < driven[blink["peak_frame"]] < 0.1  # the driven eye aspect ratio really closes
    assert np.allclose(driven[closure == 0], driven[0], atol=1e-3)  # and is back open between blinks


def test_silence_closes_the_driven_mouth(talking):
    out, speech_s = talking
    truth = out.ground_truth
    fps = truth["fps"]
    closed = truth["mouth_opening_closed"]
    opening = np.array(truth["mouth_opening"])
    silent = slice(int(np.ceil((speech_s + 0.2) * fps)), truth["n_frames"])
    assert closed < 0.02 and truth["n_frames"] - silent.start >= 10
    assert np.allclose(opening[silent], closed, atol=2e-3)
    assert opening[: int(speech_s * fps)].max() > closed + 0.2
    assert opening.max() <= OPENING_MAX + 0.02


def test_ground_truth_is_json_and_consistent(talking, face_photo):
    out, _ = talking
    truth = json.loads(json.dumps(out.ground_truth))  # plain JSON types only
    t = truth["n_frames"]
    assert truth["generator"] == "warp" and truth["seed"] == 5 and truth["fps"] == 25.0
    assert truth["blink_rate_per_min"] == 70
    assert len(truth["mouth_opening"]) == len(truth["mouth_width"]) == len(truth["head_pose"]) == t
    assert truth["landmarks_driven_stored"] is True and truth["warp_foldovers"] == 0
    driven = np.array(truth["landmarks_driven"])
    assert driven.shape == (t, 68, 2)
    np.testing.assert_allclose(mouth_opening(driven), truth["mouth_opening"], atol=1e-3)
    width = np.linalg.norm(driven[:, 54] - driven[:, 48], axis=1) / np.linalg.norm(
        driven[:, 36:42].mean(1) - driven[:, 42:48].mean(1), axis=1)
    np.testing.assert_allclose(width, truth["mouth_width"], atol=1e-3)
    assert np.ptp(truth["mouth_width"]) > 0.05  # the width moves with the sound, not only the opening

    # the rigid points follow the recorded head pose; the pose is small and smooth
    pose = np.array(truth["head_pose"])
    photo_lm = np.array(truth["landmarks_photo"])
    rigid = [27, 30, 33, 36, 39, 42, 45]
    for i in range(0, t, 9):
        m = similarity_transform(photo_lm[rigid], driven[i, rigid])
        assert np.hypot(*m[:, 0]) == pytest.approx(pose[i, 2], abs=2e-3)
        assert np.degrees(np.arctan2(m[1, 0], m[0, 0])) == pytest.approx(pose[i, 3], abs=0.1)
    iod = np.linalg.norm(photo_lm[36:42].mean(0) - photo_lm[42:48].mean(0))
    assert np.abs(pose[:, :2]).max() < 0.1 * iod and np.ptp(pose[:, 0]) > 0.2
    assert np.abs(pose[:, 2] - 1).max() <= 0.021
    assert np.abs(pose[:, 3]).max() <= 3.0 and np.ptp(pose[:, 3]) > 0.2
    assert np.abs(np.diff(pose[:, 3])).max() < 0.3  # degrees per frame: smooth
    assert out.clip.frames.shape == (t, *face_photo.shape)


def test_same_seed_same_clip_other_seed_other_blinks(face_photo, speech_16k):
    speech, sr = speech_16k
    gen = WarpGenerator(blink_rate_per_min=60)
    a = gen.generate(face_photo, speech, sr, seed=0)
    b = gen.generate(face_photo, speech, sr, seed=0)
    c = gen.generate(face_photo, speech, sr, seed=1)
    assert np.array_equal(a.clip.frames, b.clip.frames)
    assert json.dumps(a.ground_truth) == json.dumps(b.ground_truth)
    assert a.ground_truth["blinks"] and c.ground_truth["blinks"]
    assert a.ground_truth["blinks"] != c.ground_truth["blinks"]
    assert not np.array_equal(a.clip.frames, c.clip.frames)
    # the audio alone drives the mouth (blinks move the eye centres, so the inter-ocular unit, a little)
    np.testing.assert_allclose(a.ground_truth["mouth_opening"], c.ground_truth["mouth_opening"], atol=1e-3)


def test_default_blink_rate_is_drawn_per_clip_from_the_human_range(face_photo, speech_16k):
    speech, sr = speech_16k
    gen = WarpGenerator(head_motion=False)
    rates = {gen.generate(face_photo, speech[:sr // 2], sr, seed=s).ground_truth["blink_rate_per_min"]
             for s in range(3)}
    assert len(rates) == 3 and all(BLINK_RATE_RANGE[0] <= r <= BLINK_RATE_RANGE[1] for r in rates)


@pytest.mark.parametrize(("sample_rate", "fps", "seconds"), [(8000, 25.0, 1.03), (44100, 30.0, 0.77)])
def test_frame_count_size_and_audio(face_photo, speech_16k, sample_rate, fps, seconds):
    speech, sr = speech_16k
    audio = resample_audio(speech, sr, sample_rate)[:round(seconds * sample_rate)]
    out = WarpGenerator(fps=fps).generate(face_photo, audio, sample_rate)
    clip = out.clip
    assert abs(clip.n_frames - round(seconds * fps)) <= 1
    assert clip.n_frames == out.ground_truth["n_frames"]
    assert clip.frames.shape[1:] == face_photo.shape and clip.frames.dtype == np.uint8
    assert clip.fps == fps and clip.sample_rate == sample_rate
    assert clip.audio.dtype == np.float32 and np.array_equal(clip.audio, audio)


def test_stereo_and_integer_audio_become_mono(face_photo, speech_16k):
    speech, sr = speech_16k
    speech = speech[: sr]
    stereo = np.stack([speech, 0.5 * speech], axis=1)
    out = WarpGenerator(head_motion=False).generate(face_photo, stereo, sr)
    np.testing.assert_allclose(out.clip.audio, 0.75 * speech, atol=1e-6)
    pcm = (speech * 20000).astype(np.int16)
    out = WarpGenerator(head_motion=False).generate(face_photo, pcm, sr)
    np.testing.assert_allclose(out.clip.audio, pcm / 32768.0, atol=1e-6)


def test_max_side_and_the_photo_at_rest(grace_hopper, speech_16k):
    """Downscaled output; after the speech, a closed-mouth photo comes back as it was (no drift, no seams)."""
    speech, sr = speech_16k
    audio = np.concatenate([speech[: sr // 2], np.zeros(sr // 2, np.float32)])
    gen = WarpGenerator(max_side=200, head_motion=False, blink_rate_per_min=0)
    out = gen.generate(grace_hopper, audio, sr)
    assert out.clip.frames.shape == (25, 200, 171, 3)  # from a 600 x 512 photo
    photo = np.asarray(Image.fromarray(grace_hopper).resize((171, 200), Image.LANCZOS)).astype(int)
    change = np.abs(out.clip.frames.astype(int) - photo)
    assert change[:8].max() > 100  # speaking
    assert change[-1].mean() < 0.5 and np.percentile(change[-1], 99) <= 5  # at rest
    lm = np.array(out.ground_truth["landmarks_driven"])
    assert 40 < lm[:, :, 0].mean() < 171 - 40 and 40 < lm[:, :, 1].mean() < 200 - 40


def test_background_stays_put_without_head_motion(face_photo, speech_16k):
    speech, sr = speech_16k
    out = WarpGenerator(head_motion=False, blink_rate_per_min=0).generate(face_photo, speech, sr)
    frames = out.clip.frames.astype(int)
    photo = face_photo.astype(int)
    assert out.ground_truth["blinks"] == [] and np.all(np.array(out.ground_truth["head_pose"])[:, 2] == 1)
    # far from the face (the top rows and left columns of this crop) every frame is the photo
    assert np.abs(frames[:, :40] - photo[:40]).max() <= 1
    assert np.abs(frames[:, :, :40] - photo[:, :40]).max() <= 1
    # round the mouth the picture changes
    assert np.abs(frames[:, 130:160, 100:150] - photo[130:160, 100:150]).max() > 60


def test_grey_and_rgba_photos(face_photo, speech_16k):
    speech, sr = speech_16k
    speech = speech[: sr // 2]
    gen = WarpGenerator()
    grey = (face_photo.astype(np.float64) @ [0.299, 0.587, 0.114]).round().astype(np.uint8)
    frames = gen.generate(grey, speech, sr).clip.frames
    assert frames.shape[-1] == 3 and np.array_equal(frames[..., 0], frames[..., 2])
    rgba = np.concatenate([face_photo, np.full((*face_photo.shape[:2], 1), 255, np.uint8)], axis=2)
    assert np.array_equal(gen.generate(rgba, speech, sr, seed=3).clip.frames,
                          gen.generate(face_photo, speech, sr, seed=3).clip.frames)


def test_bad_photos(face_photo, speech_16k):
    speech, sr = speech_16k
    gen = WarpGenerator()
    noise = np.random.default_rng(0).integers(0, 256, (160, 160, 3), dtype=np.uint8)
    with pytest.raises(NoFaceError):
        gen.generate(noise, speech, sr)
    tiny = np.asarray(Image.fromarray(face_photo).resize((72, 72), Image.LANCZOS))
    with pytest.raises(NoFaceError, match="pixels"):
        gen.generate(tiny, speech, sr)


def test_bad_audio_and_options(face_photo, speech_16k):
    speech, sr = speech_16k
    gen = WarpGenerator()
    with pytest.raises(AudioError, match="silent"):
        gen.generate(face_photo, np.zeros(sr, np.float32), sr)
    with pytest.raises(AudioError, match="shorter than one video frame"):
        gen.generate(face_photo, speech[: sr // 50], sr)
    with pytest.raises(AudioError):
        gen.generate(face_photo, speech, 0)
    with pytest.raises(ConfigError):
        WarpGenerator(fps=0)
    with pytest.raises(ConfigError):
        WarpGenerator(blink_rate_per_min=-3)
    with pytest.raises(ConfigError):
        gen.generate(face_photo, speech, sr, seed=-1)


# ---------------------------------------------------------------------------------------------- parts

def test_blink_statistics_are_human():
    fps = 25.0
    blinks, closure = draw_blinks(int(600 * fps), fps, 20.0, np.random.default_rng(7))
    onsets = np.array([b.onset_s for b in blinks])
    durations = np.array([b.duration_s for b in blinks])
    intervals = np.diff(onsets)
    assert len(blinks) / 10.0 == pytest.approx(20.0, rel=0.15)  # per minute
    assert 0.4 < intervals.std() / intervals.mean() < 0.9  # irregular, like people; not periodic
    assert np.median(intervals) < intervals.mean()  # right-skewed
    assert durations.min() >= 0.1 and durations.max() <= 0.4
    assert np.all(closure[[b.peak_frame for b in blinks]] == 1.0)
    # fast close, slower reopening: more frames after the peak than before it, on average
    before = np.mean([b.peak_frame - b.start_frame for b in blinks])
    after = np.mean([b.end_frame - b.peak_frame for b in blinks])
    assert after > before
    assert draw_blinks(500, fps, 0.0, np.random.default_rng(0))[0] == []


def test_articulation_follows_loudness_and_brightness():
    t = np.arange(int(0.6 * SR)) / SR  # 15 frames at 25 fps per segment
    dark = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate([180, 360, 540], start=1))
    bright = sum(np.sin(2 * np.pi * f * t) for f in [180, 2200, 2900, 3500])

    def at(rms: float, x: np.ndarray) -> np.ndarray:
        return x * rms / np.sqrt(np.mean(x**2))

    gap = np.zeros_like(t)
    audio = np.concatenate([at(0.1, dark), gap, at(0.1, bright), gap, at(0.01, dark), gap]).astype(np.float32)
    opening, width = articulation(audio, SR, 90, 25.0)
    sound = {name: (opening[15 * i + 3:15 * i + 12].mean(), width[15 * i + 3:15 * i + 12].mean())
             for i, name in zip((0, 2, 4), ("dark", "bright", "quiet"), strict=True)}
    silence = [opening[15 * i + 5:15 * i + 15].max() for i in (1, 3, 5)]
    assert sound["dark"][0] > 0.4 * OPENING_MAX and sound["bright"][0] > 0.4 * OPENING_MAX
    assert sound["quiet"][0] < 0.5 * min(sound["dark"][0], sound["bright"][0])  # 20 dB quieter: less open
    assert max(silence) < 0.01  # silence closes the mouth
    assert sound["dark"][1] < 0 < sound["bright"][1]  # dark, rounded sounds narrow the mouth; bright spread


def test_piecewise_affine_map_matches_a_brute_force_reference(face_photo):
    """Each pixel of each deforming triangle maps through that triangle's affine map: no holes, no seams."""
    rig = FaceRig(photo_face(face_photo).landmarks)
    warper = Warper(face_photo, rig)
    transforms = pose_transforms(np.array([[1.3, -0.7, 0.015, 1.7], [-2.0, 1.1, -0.02, -2.5]]),
                                 np.array([128.0, 128.0]))
    moved = rig.deform(np.array([0.0, OPENING_MAX]), np.array([0.05, -0.05]), np.array([1.0, 0.5]))
    anchors = np.broadcast_to(warper.anchors, (2, *warper.anchors.shape))
    dest = apply_transforms(transforms, np.concatenate([moved, anchors], axis=1))
    grid = warper._grid(dest, transforms).astype(np.float64)
    assert warper.foldovers == 0
    h, w = face_photo.shape[:2]
    for b in range(2):
        reference = grid[b].copy()
        covered = np.zeros((h, w), bool)
        for tri, src in zip(warper.triangles, warper.tri_src, strict=True):
            lo = np.clip(np.floor(dest[b, tri].min(0)).astype(int), 0, [w, h])
            hi = np.clip(np.ceil(dest[b, tri].max(0)).astype(int) + 1, 0, [w, h])
            ys, xs = np.mgrid[lo[1]:hi[1], lo[0]:hi[0]]
            pixels = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
            barycentric = np.linalg.solve(np.vstack([dest[b, tri].T, np.ones(3)]), pixels).T
            inside = (barycentric >= -1e-9).all(1)
            reference[ys.ravel()[inside], xs.ravel()[inside]] = barycentric[inside] @ src
            covered[ys.ravel()[inside], xs.ravel()[inside]] = True
        assert covered.sum() > 5000  # the face's lower half and the eyes
        error_px = np.abs(reference - grid[b])[covered].max() * (w - 1) / 2
        assert error_px < 0.01
