"""PSNR, SSIM, CPBD and LMD against known answers; quality_metrics on a clip made from a real photo."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from fakebench.errors import ConfigError, MediaError, NoFaceError
from fakebench.faces import (
    LEFT_EYE,
    MOUTH,
    RIGHT_EYE,
    FaceTrack,
    align_faces,
    apply_transform,
    default_template,
    inter_ocular,
    similarity_transform,
)
from fakebench.media import Clip
from fakebench.metrics.quality import cpbd, lmd, luma, psnr, quality_metrics, ssim
from fakebench.synthetic import moving_photo


def noisy(x: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.round(x + rng.normal(0, sigma, x.shape)), 0, 255).astype(np.uint8)


def blurred(gray: np.ndarray, sigma: float) -> np.ndarray:
    if sigma == 0:
        return gray
    return np.clip(np.round(ndimage.gaussian_filter(gray.astype(np.float64), sigma)), 0, 255).astype(np.uint8)


def grey(rgb: np.ndarray) -> np.ndarray:
    return np.round(luma(rgb)).astype(np.uint8)


def wang_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM written out from Wang et al. (2004) for two grey float images: 11x11 Gaussian (sigma 1.5),
    C1 = (0.01 L)^2, C2 = (0.03 L)^2, L = 255, mean over the windows that fit inside the image."""
    def w(x):
        return ndimage.gaussian_filter(x, 1.5, truncate=3.5)[5:-5, 5:-5]

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ma, mb = w(a), w(b)
    va, vb, cov = w(a * a) - ma**2, w(b * b) - mb**2, w(a * b) - ma * mb
    return float((((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))).mean())


# ---------------------------------------------------------------------------------------------- PSNR, SSIM

@pytest.fixture(scope="module")
def face_frames(astronaut) -> np.ndarray:
    return moving_photo(astronaut, n_frames=3, size=(96, 96), centre=(225, 130), zoom=0.5, seed=1).clip.frames


def test_identical_frames(face_frames):
    assert psnr(face_frames, face_frames) == np.inf
    assert ssim(face_frames, face_frames) == pytest.approx(1.0, abs=1e-12)
    assert psnr(face_frames[0], face_frames[0].copy()) == np.inf


def test_psnr_and_ssim_fall_with_noise(face_frames):
    sigmas = [2, 5, 10, 20, 40]
    p = [psnr(face_frames, noisy(face_frames, s)) for s in sigmas]
    s = [ssim(face_frames, noisy(face_frames, s)) for s in sigmas]
    assert all(x > y for x, y in zip(p, p[1:], strict=False))
    assert all(x > y for x, y in zip(s, s[1:], strict=False))
    assert p[1] == pytest.approx(20 * np.log10(255 / 5), abs=0.3)  # little clipping at sigma 5
    assert 0 < s[-1] < s[0] < 1


def test_psnr_is_the_mean_of_per_frame_values(face_frames):
    other = np.stack([noisy(f, 3 + 10 * i, seed=i) for i, f in enumerate(face_frames)])
    per_frame = [10 * np.log10(255**2 / np.mean((a.astype(float) - b) ** 2))
                 for a, b in zip(face_frames, other, strict=True)]
    assert psnr(face_frames, other) == pytest.approx(np.mean(per_frame), rel=1e-12)
    assert ssim(face_frames, other) == pytest.approx(
        np.mean([ssim(a, b) for a, b in zip(face_frames, other, strict=True)]), rel=1e-12)


def test_ssim_is_wang_2004_on_luma(face_frames):
    a, b = face_frames[0], noisy(face_frames[0], 12)
    assert ssim(a, b) == pytest.approx(wang_ssim(luma(a), luma(b)), abs=1e-9)
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(a, b[:-1])


# ---------------------------------------------------------------------------------------------- CPBD

def stripes(period_ramp: int, low: float, high: float, size: int = 128) -> np.ndarray:
    """Vertical bars: 64-pixel periods of flat low and high runs joined by linear ramps of `period_ramp` steps."""
    flat = (64 - 2 * period_ramp) // 2
    up = np.linspace(low, high, period_ramp + 1)[1:-1]
    period = np.concatenate([[low] * flat, [low], up, [high] * flat, [high], up[::-1]])
    period = np.concatenate([period, [low] * (64 - period.size)])
    row = np.roll(np.tile(period, size // 64 + 1)[:size], 16)  # no ramp cut by the image's border
    return np.round(np.tile(row, (size, 1))).astype(np.uint8)


def test_cpbd_of_ideal_edges():
    step = stripes(1, 40, 220)
    assert cpbd(step) == 1.0  # every edge is 2 pixels wide
    assert cpbd(blurred(step, 3.0)) == 0.0
    # 4-pixel ramps: below the just-noticeable blur width (5) at contrast <= 50, above it (3) otherwise
    assert cpbd(stripes(4, 100, 140)) == 1.0
    assert cpbd(stripes(4, 30, 230)) == 0.0


def test_cpbd_falls_with_blur_on_a_real_face(grace_hopper):
    face = grey(grace_hopper)[102:358, 128:384]
    values = [cpbd(blurred(face, s)) for s in (0, 0.5, 1, 1.5, 2, 3)]
    assert 0.3 < values[0] < 0.7  # sharp photos score ~0.2-0.8 in the CPBD paper's LIVE results
    positive = [v for v in values if v > 0]
    assert all(x > y for x, y in zip(positive, positive[1:], strict=False))
    assert len(positive) >= 3 and values[-1] < 0.01


def test_cpbd_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        cpbd(np.zeros((100, 100)))
    with pytest.raises(ValueError, match="64x64"):
        cpbd(np.zeros((100, 40), np.uint8))
    assert cpbd(np.full((64, 64), 128, np.uint8)) == 0.0  # no edges at all


# ---------------------------------------------------------------------------------------------- LMD

def posed(shape: np.ndarray, n: int, seed: int) -> np.ndarray:
    """`shape` (68, 2) under n random similarity transforms (scale 1.5-4, any roll, any position)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, 68, 2))
    for i in range(n):
        a, s = rng.uniform(-0.5, 0.5), rng.uniform(1.5, 4.0)
        m = np.array([[s * np.cos(a), -s * np.sin(a), rng.uniform(0, 300)],
                      [s * np.sin(a), s * np.cos(a), rng.uniform(0, 300)]])
        out[i] = apply_transform(m, shape)
    return out


def test_lmd_is_zero_for_the_same_face_in_any_pose():
    template = default_template((128, 128))
    a = posed(template, 12, seed=0)
    assert lmd(a, a) == 0.0
    assert lmd(a, posed(template, 12, seed=1), "face") == pytest.approx(0.0, abs=1e-9)


def test_lmd_measures_a_known_mouth_offset():
    template = default_template((128, 128))
    moved = template.copy()
    moved[MOUTH] += [1.8, 2.4]  # 3 pixels of the aligned face
    a, b = posed(template, 10, seed=2), posed(moved, 10, seed=3)
    assert lmd(a, b, "mouth") == pytest.approx(3.0, rel=0.01)
    assert lmd(a, b, "face") == pytest.approx(3.0 * 20 / 68, rel=0.01)


def test_lmd_skips_missing_frames_and_uses_the_common_length():
    template = default_template((128, 128))
    moved = template.copy()
    moved[MOUTH] += [0.0, 2.0]
    a, b = posed(template, 8, seed=4), posed(moved, 6, seed=5)
    a[1] = np.nan
    b[3] = a[3]  # identical in frame 3: a distance of 0 there
    assert lmd(a, b) == pytest.approx(2.0 * 4 / 5, rel=1e-6)  # frames 0, 2, 3, 4, 5
    a[:] = np.nan
    assert np.isnan(lmd(a, b))
    with pytest.raises(ValueError, match="region"):
        lmd(b, b, "eyes")


# ---------------------------------------------------------------------------------------------- per clip

ASTRONAUT_EYES = np.array([[203.7, 101.6], [246.1, 104.0]])  # eye centres in the photo (measured with analyze)


def known_track(moving, photo_landmarks: np.ndarray) -> FaceTrack:
    """The face track of a moving photo whose landmarks in the photo are known: exact in every frame."""
    lm = moving.map_points(photo_landmarks).astype(np.float32)
    n = len(lm)
    return FaceTrack(boxes=np.zeros((n, 4), np.float32), scores=np.ones(n, np.float32), landmarks=lm,
                     valid=np.ones(n, bool), n_faces=np.ones(n, np.int16), detected=np.zeros(n, bool),
                     shape_errors=np.zeros(n, np.float32), fps=moving.clip.fps, width=moving.clip.width,
                     height=moving.clip.height)


@pytest.fixture(scope="module")
def talking(astronaut):
    """A moving photo of a real face, 12 frames, with its exact face track (no detector needed)."""
    template = default_template((128, 128))
    eyes = np.stack([template[RIGHT_EYE].mean(0), template[LEFT_EYE].mean(0)])
    photo_landmarks = apply_transform(similarity_transform(eyes, ASTRONAUT_EYES), template)
    moving = moving_photo(astronaut, n_frames=12, size=(192, 192), centre=(225, 130), zoom=1.6, seed=7)
    return moving, photo_landmarks


def test_quality_metrics_against_itself_and_a_noisy_copy(talking, monkeypatch):
    moving, photo_landmarks = talking
    clip, track = moving.clip, known_track(moving, photo_landmarks)
    alone = quality_metrics(clip, track)
    assert set(alone) == {"cpbd", "quality_model"}
    assert 0.05 < alone["cpbd"] < 0.9  # low: the photo is upsampled by 1.6, then resampled by the alignment
    soft = Clip(frames=ndimage.gaussian_filter(clip.frames, (0, 1.2, 1.2, 0)), fps=clip.fps)
    assert quality_metrics(soft, track)["cpbd"] < 0.5 * alone["cpbd"]

    analysed = []
    monkeypatch.setattr("fakebench.metrics.quality.analyze", lambda c: analysed.append(c) or track)
    same = quality_metrics(clip, track, reference=clip)  # without its track, the reference is analysed
    assert analysed == [clip]
    assert set(same) == {"cpbd", "psnr", "ssim", "lmd_mouth", "lmd_face", "quality_model"}
    assert same["psnr"] == np.inf and same["ssim"] == pytest.approx(1.0)
    assert same["lmd_mouth"] == 0.0 and same["lmd_face"] == 0.0
    assert same["cpbd"] == alone["cpbd"]
    json.dumps(same)

    previous = {"face": {"psnr": np.inf, "ssim": 1.0}, "full": {"psnr": np.inf, "ssim": 1.0}}
    for sigma in (4, 12):
        ref = Clip(frames=noisy(clip.frames, sigma), fps=clip.fps, has_audio_track=False)
        for crop in ("face", "full"):
            out = quality_metrics(clip, track, reference=ref, reference_track=track, crop=crop, cpbd_frames=1)
            assert out["psnr"] < previous[crop]["psnr"] and out["ssim"] < previous[crop]["ssim"]
            assert ("aligned face crops" if crop == "face" else "full frames") in out["quality_model"]
            previous[crop] = out
    assert previous["full"]["psnr"] == pytest.approx(20 * np.log10(255 / 12), abs=0.5)


def test_quality_metrics_mouth_distance(talking):
    moving, photo_landmarks = talking
    clip, track = moving.clip, known_track(moving, photo_landmarks)
    opened = photo_landmarks.copy()
    opened[MOUTH, 1] += 0.1 * np.linalg.norm(ASTRONAUT_EYES[1] - ASTRONAUT_EYES[0])  # 10% of the eye distance
    out = quality_metrics(clip, track, reference=clip, reference_track=known_track(moving, opened),
                          cpbd_frames=1)
    assert out["lmd_mouth"] == pytest.approx(0.1 * inter_ocular(default_template((128, 128))), rel=0.01)
    assert out["lmd_face"] == pytest.approx(out["lmd_mouth"] * 20 / 68, rel=1e-6)


def test_quality_metrics_uses_common_face_frames_and_length(talking):
    moving, photo_landmarks = talking
    clip, track = moving.clip, known_track(moving, photo_landmarks)
    ref = Clip(frames=noisy(clip.frames[:9], 8), fps=clip.fps, has_audio_track=False)
    ref_track = known_track(moving, photo_landmarks)
    for name in ("landmarks", "valid"):
        setattr(ref_track, name, getattr(ref_track, name)[:9].copy())
    ref_track.valid[[2, 5]] = False
    ref_track.landmarks[[2, 5]] = np.nan
    out = quality_metrics(clip, track, reference=ref, reference_track=ref_track, cpbd_frames=1)
    idx = [0, 1, 3, 4, 6, 7, 8]
    crops = align_faces(clip.frames[idx], track.landmarks[idx], (128, 128))
    ref_crops = align_faces(ref.frames[idx], ref_track.landmarks[idx], (128, 128))
    assert out["psnr"] == pytest.approx(psnr(crops, ref_crops), rel=1e-12)
    assert out["ssim"] == pytest.approx(ssim(crops, ref_crops), rel=1e-12)
    assert out["lmd_mouth"] == pytest.approx(0.0, abs=1e-4)


def test_quality_metrics_errors(talking):
    moving, photo_landmarks = talking
    clip, track = moving.clip, known_track(moving, photo_landmarks)
    with pytest.raises(ConfigError):
        quality_metrics(clip, track, crop="mouth")
    small = Clip(frames=clip.frames[:, :128, :128], fps=clip.fps, has_audio_track=False)
    with pytest.raises(MediaError, match="crop='face'"):
        quality_metrics(clip, track, reference=small, reference_track=track, crop="full")
    faceless = known_track(moving, photo_landmarks)
    faceless.valid[:] = False
    faceless.landmarks[:] = np.nan
    with pytest.raises(NoFaceError):
        quality_metrics(clip, faceless)
    assert 0 < quality_metrics(clip, faceless, crop="full")["cpbd"] < 1
    full = quality_metrics(clip, faceless, reference=clip, reference_track=faceless, crop="full", cpbd_frames=1)
    assert full["psnr"] == np.inf and full["lmd_mouth"] is None and full["lmd_face"] is None
