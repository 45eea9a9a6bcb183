"""Face analysis against known answers: photos moved by known transforms, cache behaviour, crops."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from fakebench.errors import NoFaceError
from fakebench.faces import (
    FaceTrack,
    align_faces,
    analyze,
    apply_transform,
    default_template,
    inter_ocular,
    shape_error,
    similarity_transform,
)
from fakebench.media import Clip, write_clip
from fakebench.synthetic import moving_photo


def still_landmarks(photo: np.ndarray) -> np.ndarray:
    track = analyze(Clip(frames=np.stack([photo, photo]), fps=25.0))
    assert track.valid.all()
    return track.landmarks[0].astype(np.float64)


def per_frame_nme(track: FaceTrack, expected: np.ndarray) -> np.ndarray:
    """Mean landmark error of each frame over the 68 points, in units of the inter-ocular distance."""
    return np.linalg.norm(track.landmarks - expected, axis=2).mean(1) / inter_ocular(expected)


# Bounds per photo on the mean and the 95th percentile of the per-frame error (% of the inter-ocular
# distance), never on the worst of 60 frames: that one moves with the CPU's oneDNN kernels (AVX-512 vs
# AVX2 shift MTCNN points by ~6e-5 px, which moved grace_hopper's worst frame between 2.71 and 3.03 %).
# Measured over seeds 0-5: astronaut mean 0.98-1.01, p95 1.11-1.19; grace_hopper mean 2.04-2.18, p95 2.44-2.72.
@pytest.mark.parametrize(("photo_name", "zoom", "seed", "mean_bound", "p95_bound"),
                         [("astronaut", 1.0, 1, 0.015, 0.02), ("grace_hopper", 0.6, 2, 0.026, 0.033)])
def test_landmarks_follow_known_motion(request, photo_name, zoom, seed, mean_bound, p95_bound):
    photo = request.getfixturevalue(photo_name)
    reference = still_landmarks(photo)
    moving = moving_photo(photo, n_frames=60, size=(256, 256), centre=tuple(reference.mean(0)), zoom=zoom,
                          seed=seed)
    # the motion really moves, scales and rotates the face
    scales = np.hypot(moving.transforms[:, 0, 0], moving.transforms[:, 1, 0])
    angles = np.degrees(np.arctan2(moving.transforms[:, 1, 0], moving.transforms[:, 0, 0]))
    assert np.ptp(scales) / zoom > 0.05 and np.ptp(angles) > 5 and np.ptp(moving.transforms[:, 0, 2]) > 8

    track = analyze(moving.clip)
    expected = moving.map_points(reference)
    nme = per_frame_nme(track, expected)
    assert track.valid.all() and track.face_frames == 60 and track.faces_max == 1
    assert nme.mean() < mean_bound, f"mean error {100 * nme.mean():.2f}% of the inter-ocular distance"
    p95 = np.percentile(nme, 95)
    assert p95 < p95_bound, f"95th percentile {100 * p95:.2f}% of the inter-ocular distance"


@pytest.mark.slow
def test_landmark_bounds_hold_with_other_cpu_kernels_and_a_perturbed_heap():
    """The same test with oneDNN limited to AVX2 kernels (as on a CPU without AVX-512) and glibc filling freed
    memory: bounds that held only for this machine's kernels, or values read from leftover heap, fail here."""
    import subprocess
    import sys

    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "MALLOC_PERTURB_": "170", "PYTEST_XDIST_WORKER": ""}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           f"{__file__}::test_landmarks_follow_known_motion"],
                          capture_output=True, text=True, timeout=600, env=env, cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "2 passed" in done.stdout


def test_far_motion_of_face_is_tracked_between_key_frames(astronaut):
    reference = still_landmarks(astronaut)
    motion = np.zeros((30, 4))
    motion[:, 0] = np.linspace(-30, 30, 30)  # 60 px sweep within one detection interval
    moving = moving_photo(astronaut, n_frames=30, size=(256, 256), centre=tuple(reference.mean(0)), motion=motion)
    track = analyze(moving.clip)
    assert track.detected.sum() <= 2  # tracked, not re-detected every frame
    assert per_frame_nme(track, moving.map_points(reference)).max() < 0.03


def test_similarity_transform_recovers_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, size=(10, 2))
    a, s, t = np.radians(17.0), 1.3, np.array([5.0, -8.0])
    m = np.array([[s * np.cos(a), -s * np.sin(a), t[0]], [s * np.sin(a), s * np.cos(a), t[1]]])
    est = similarity_transform(src, apply_transform(m, src))
    np.testing.assert_allclose(est, m, atol=1e-9)


def test_shape_error_separates_faces_from_scrambled_points(astronaut):
    lm = still_landmarks(astronaut)
    assert shape_error(lm) < 0.08
    scrambled = lm[np.random.default_rng(0).permutation(68)]
    assert shape_error(scrambled) > 0.5


def test_cache_hit_gives_identical_arrays_and_corrupt_entry_is_recomputed(tmp_path, astronaut, monkeypatch):
    monkeypatch.setenv("FAKEBENCH_CACHE", str(tmp_path / "cache"))
    moving = moving_photo(astronaut, n_frames=20, size=(192, 192), centre=(225, 130), zoom=0.8, seed=3)
    path = write_clip(tmp_path / "clip.mp4", moving.clip)
    first = analyze(path)
    second = analyze(path)
    assert first.meta["cache_hit"] is False and second.meta["cache_hit"] is True
    for name in FaceTrack.ARRAYS:
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))

    (entry,) = list((tmp_path / "cache").rglob("*.npz"))
    data = bytearray(entry.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = bytes(64)  # damage the middle of the file
    entry.write_bytes(bytes(data))
    with pytest.raises(ValueError):
        FaceTrack.load(entry)
    third = analyze(path)
    assert third.meta["cache_hit"] is False
    np.testing.assert_array_equal(third.landmarks, first.landmarks)
    assert analyze(path).meta["cache_hit"] is True  # the recomputed entry replaced the damaged one


def test_cache_key_changes_with_content(tmp_path, astronaut, monkeypatch):
    monkeypatch.setenv("FAKEBENCH_CACHE", str(tmp_path / "cache"))
    a = moving_photo(astronaut, n_frames=10, size=(160, 160), centre=(225, 130), zoom=0.7, seed=1)
    b = moving_photo(astronaut, n_frames=10, size=(160, 160), centre=(225, 130), zoom=0.7, seed=2)
    assert analyze(a.clip).meta["cache_hit"] is False
    assert analyze(b.clip).meta["cache_hit"] is False
    assert analyze(a.clip).meta["cache_hit"] is True


def test_aligned_faces_remove_head_motion(astronaut):
    reference = still_landmarks(astronaut)
    moving = moving_photo(astronaut, n_frames=20, size=(256, 256), centre=tuple(reference.mean(0)), seed=4)
    track = analyze(moving.clip)
    crops = track.aligned_faces(moving.clip.frames, size=(112, 96)).astype(np.float32)
    assert crops.shape == (20, 112, 96, 3)
    aligned_change = np.abs(crops - crops[0]).mean()
    raw_change = np.abs(moving.clip.frames.astype(np.float32) - moving.clip.frames[0]).mean()
    assert aligned_change < 0.35 * raw_change
    # the stable points land on the template
    template = default_template((112, 96))
    m = similarity_transform(track.landmarks[5][[33, 36, 39, 42, 45]], template[[33, 36, 39, 42, 45]])
    mapped = apply_transform(m, track.landmarks[5].astype(np.float64))
    assert np.abs(mapped[[33, 36, 39, 42, 45]] - template[[33, 36, 39, 42, 45]]).max() < 3.0


def test_mouth_and_eye_crops_are_centred_on_their_regions(astronaut):
    moving = moving_photo(astronaut, n_frames=6, size=(256, 256), centre=(225, 130), seed=5)
    track = analyze(moving.clip)
    mouth = track.mouth_crops(moving.clip.frames, size=(48, 96))
    right, left = track.eye_crops(moving.clip.frames, size=(32, 48))
    assert mouth.shape == (6, 48, 96, 3) and right.shape == left.shape == (6, 32, 48, 3)
    # lips are redder than the surrounding skin; the crop centre holds them
    centre_red = mouth[:, 16:32, 32:64, 0].astype(float) - mouth[:, 16:32, 32:64, 1]
    assert centre_red.mean() > 20
    # the pupils/iris make the eye-crop centre darker than its border
    for eye in (right, left):
        grey = eye.mean(-1)
        assert grey[:, 10:22, 16:32].mean() < grey[:, :4].mean()


def test_no_face_gives_empty_track_and_clear_error():
    yy, xx = np.mgrid[0:96, 0:128]
    frames = np.stack([np.stack([xx * 2, yy * 2, (xx + yy + t) % 256], -1) for t in range(12)]).astype(np.uint8)
    track = analyze(Clip(frames=frames, fps=25.0))
    assert track.face_frames == 0 and track.faces_max == 0 and not track.valid.any()
    assert np.isnan(track.landmarks).all()
    with pytest.raises(NoFaceError, match="no usable face"):
        track.require_face("the sync metric")


def test_align_faces_blank_where_no_landmarks(astronaut):
    frames = np.stack([astronaut, astronaut])
    lm = np.full((2, 68, 2), np.nan)
    lm[0] = still_landmarks(astronaut)
    crops = align_faces(frames, lm, (64, 64))
    assert crops[0].mean() > 30 and crops[1].max() == 0


def test_track_save_load_roundtrip_and_checksum(tmp_path, astronaut):
    moving = moving_photo(astronaut, n_frames=4, size=(160, 160), centre=(225, 130), zoom=0.7)
    track = analyze(moving.clip, use_cache=False)
    track.save(tmp_path / "t.npz")
    back = FaceTrack.load(tmp_path / "t.npz")
    np.testing.assert_array_equal(back.landmarks, track.landmarks)
    assert back.fps == track.fps and back.meta["analysis_version"] == track.meta["analysis_version"]
    with np.load(tmp_path / "t.npz") as z:
        arrays = dict(z)
    arrays["landmarks"] = arrays["landmarks"] + 1
    np.savez(tmp_path / "forged.npz", **arrays)
    with pytest.raises(ValueError, match="checksum"):
        FaceTrack.load(tmp_path / "forged.npz")
