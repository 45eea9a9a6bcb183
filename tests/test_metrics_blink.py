"""Blink detection against known answers: synthetic EAR traces and a real photo whose eyelids close."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fakebench.errors import NoFaceError
from fakebench.faces import LEFT_EYE, RIGHT_EYE, FaceTrack, analyze, default_template, eye_aspect_ratio
from fakebench.media import Clip
from fakebench.metrics.blink import Blink, blink_metrics, detect_blinks
from fakebench.synthetic import moving_photo

OPEN_EAR, CLOSED_EAR = 0.3, 0.08


def closure(t: np.ndarray, onset: float, duration: float) -> np.ndarray:
    """Lid closure 0..1 of one blink: fast close (30%), closed (10%), slower reopening (60%)."""
    close, hold = 0.3 * duration, 0.1 * duration
    reopen = duration - close - hold
    x = t - onset
    out = np.zeros_like(t)
    m = (x >= 0) & (x < close)
    out[m] = 0.5 * (1 - np.cos(np.pi * x[m] / close))
    out[(x >= close) & (x < close + hold)] = 1.0
    m = (x >= close + hold) & (x < duration)
    out[m] = 0.5 * (1 + np.cos(np.pi * (x[m] - close - hold) / reopen))
    return out


def half_depth_ms(duration: float) -> float:
    """The half-amplitude duration of `closure`: half the closing, the hold, half the reopening."""
    return 1000 * duration * (0.15 + 0.1 + 0.3)


def ear_trace(seconds: float, fps: float, rate_per_min: float, seed: int, noise: float = 0.008):
    """EAR with slow drift, landmark noise and blinks (100-400 ms) at random, right-skewed intervals.

    Returns the trace and the true blinks as (peak frame, half-depth duration in ms)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fps)) / fps
    open_ear = (OPEN_EAR + 0.02 * np.sin(2 * np.pi * 0.07 * t + rng.uniform(0, 6))
                + 0.01 * np.sin(2 * np.pi * 0.3 * t))
    lid = np.zeros_like(t)
    truth = []
    onset = 1.0
    while True:
        onset += max(0.7, rng.gamma(2.0, 30.0 / rate_per_min))
        duration = rng.uniform(0.1, 0.4)
        if onset + duration > seconds - 1:
            break
        lid = np.maximum(lid, closure(t, onset, duration))
        truth.append(((onset + 0.35 * duration) * fps, half_depth_ms(duration)))
        onset += duration
    ear = open_ear * (1 - lid * (1 - CLOSED_EAR / OPEN_EAR)) + rng.normal(0, noise, t.size)
    return ear, truth


def match(found: list[int], true: list[float], tol: float = 2.0) -> list[tuple[int, int]]:
    """Greedy one-to-one matching of detected to true peak frames within `tol` frames: (found, true) pairs."""
    pairs = sorted((abs(f - t), i, j) for i, f in enumerate(found) for j, t in enumerate(true) if abs(f - t) <= tol)
    used_f, used_t, out = set(), set(), []
    for _, i, j in pairs:
        if i not in used_f and j not in used_t:
            used_f.add(i)
            used_t.add(j)
            out.append((i, j))
    return out


def f1_score(n_found: int, n_true: int, n_matched: int) -> float:
    return 2 * n_matched / (n_found + n_true) if n_found + n_true else 1.0


# ---------------------------------------------------------------------------------------------- synthetic EAR

@pytest.mark.parametrize(("fps", "rate"), [(25.0, 10.0), (25.0, 26.0), (30.0, 17.0), (30.0, 40.0)])
def test_detects_synthetic_blinks_with_their_durations(fps, rate):
    ear, truth = ear_trace(120, fps, rate, seed=int(fps + rate))
    blinks = detect_blinks(ear, fps)
    pairs = match([b.peak for b in blinks], [p for p, _ in truth])
    assert len(truth) >= 0.5 * rate * 118 / 60
    assert f1_score(len(blinks), len(truth), len(pairs)) >= 0.95
    frame_ms = 1000 / fps
    errors = np.array([blinks[i].duration_ms - truth[j][1] for i, j in pairs])
    assert np.abs(errors).max() <= frame_ms, f"duration off by {np.abs(errors).max() / frame_ms:.2f} frames"
    for b in blinks:
        assert b.start <= b.peak <= b.end and b.depth > 0.15


def test_blink_shape_fields():
    fps = 25.0
    t = np.arange(100) / fps
    ear = OPEN_EAR * (1 - closure(t, 2.01, 0.4) * (1 - CLOSED_EAR / OPEN_EAR))
    (blink,) = detect_blinks(ear, fps)
    assert isinstance(blink, Blink)
    assert blink.peak == 54  # the lid is shut from 2.13 to 2.17 s
    assert (blink.start, blink.end) == (52, 57)  # closure >= 0.5 from 2.07 to 2.29 s
    assert blink.duration_ms == pytest.approx(half_depth_ms(0.4), abs=0.25 * 1000 / fps)
    assert blink.depth == pytest.approx(OPEN_EAR - CLOSED_EAR, abs=1e-6)


def test_slow_head_turn_is_not_a_blink():
    fps = 25.0
    t = np.arange(int(8 * fps)) / fps
    rng = np.random.default_rng(0)
    # down by 30% over 1 s and staying there; and a 30% dip that takes 1 s down and 1 s back
    step = np.interp(t, [2, 3], [1.0, 0.7])
    dip = np.interp(t, [2, 3, 4], [1.0, 0.7, 1.0])
    for shape in (step, dip, step[::-1]):
        ear = OPEN_EAR * shape + rng.normal(0, 0.005, t.size)
        assert detect_blinks(ear, fps) == []


def test_one_eye_change_is_not_a_blink():
    """One eye's EAR halves within 0.2 s and stays (the head turns, that eye is foreshortened) then comes back."""
    fps = 30.0
    t = np.arange(int(8 * fps)) / fps
    rng = np.random.default_rng(1)
    right = OPEN_EAR * np.interp(t, [2.0, 2.2, 5.0, 5.2], [1.0, 0.5, 0.5, 1.0])
    left = np.full_like(t, OPEN_EAR)
    ear = (right + left) / 2 + rng.normal(0, 0.004, t.size)
    assert detect_blinks(ear, fps) == []
    # the same trace with a real blink (both eyes) during the turned period is still found
    lid = closure(t, 3.5, 0.3) * (1 - CLOSED_EAR / OPEN_EAR)
    (blink,) = detect_blinks(((right + left) / 2) * (1 - lid), fps)
    assert abs(blink.peak - (3.5 + 0.105) * fps) <= 2


def test_long_closure_is_not_a_blink_and_close_dips_merge():
    fps = 25.0
    t = np.arange(int(6 * fps)) / fps
    long_closure = np.interp(t, [2.0, 2.1, 3.2, 3.4], [0, 1, 1, 0])  # eyes shut for more than a second
    assert detect_blinks(OPEN_EAR * (1 - 0.7 * long_closure), fps) == []
    ear = np.full(t.size, OPEN_EAR)
    ear[[50, 51, 53, 54]] = CLOSED_EAR  # two dips one frame apart: one blink
    ear[52] = 0.26  # above the threshold (0.225), so two runs
    (blink,) = detect_blinks(ear, fps)
    assert (blink.start, blink.end) == (50, 54)


def test_single_frame_dip_is_noise():
    fps = 30.0
    ear = np.full(150, OPEN_EAR)
    ear[70] = CLOSED_EAR
    assert detect_blinks(ear, fps) == []


def test_missing_frames_neither_create_nor_hide_blinks():
    fps = 25.0
    t = np.arange(int(10 * fps)) / fps
    rng = np.random.default_rng(2)
    ear = OPEN_EAR + rng.normal(0, 0.006, t.size)
    valid = np.ones(t.size, bool)
    for start, length in [(20, 1), (45, 2), (80, 5), (130, 30)]:
        ear[start:start + length] = np.nan
    ear[200:210] = 0.05  # garbage where the face was lost
    valid[200:210] = False
    assert detect_blinks(ear, fps, valid=valid) == []

    # blinks 10 frames after and before long gaps (130-159, 200-209), and one with a frame missing at its bottom
    blinks_at = [170 / fps, 182 / fps, 1.0]  # the second ends 10 frames before frame 200
    lid = sum(closure(t, onset, 0.3) for onset in blinks_at)
    blinking = ear * (1 - lid * (1 - CLOSED_EAR / OPEN_EAR))
    blinking[int((1.0 + 0.12) * fps)] = np.nan
    found = detect_blinks(blinking, fps, valid=valid)
    expected = [(onset + 0.105) * fps for onset in blinks_at]
    assert len(found) == 3 and len(match([b.peak for b in found], expected)) == 3


# ---------------------------------------------------------------------------------------------- blink_metrics

def synthetic_track(ear: np.ndarray, fps: float, valid: np.ndarray | None = None) -> FaceTrack:
    """A FaceTrack of the mean face whose eyelids open to give (about) the EAR asked for."""
    base = default_template((128, 128))
    n = len(ear)
    lm = np.repeat(base[None], n, 0)
    for eye in (RIGHT_EYE, LEFT_EYE):
        pts = base[eye]
        mid = (pts[0, 1] + pts[3, 1]) / 2
        scale = np.asarray(ear) / eye_aspect_ratio(base)
        for k in (1, 2, 4, 5):
            lm[:, eye.start + k, 1] = mid + (pts[k, 1] - mid) * scale
    valid = np.ones(n, bool) if valid is None else valid
    lm[~valid] = np.nan
    return FaceTrack(boxes=np.zeros((n, 4), np.float32), scores=np.ones(n, np.float32),
                     landmarks=lm.astype(np.float32), valid=valid, n_faces=valid.astype(np.int16),
                     detected=np.zeros(n, bool), shape_errors=np.zeros(n, np.float32), fps=fps,
                     width=128, height=128)


def test_blink_metrics_values():
    fps = 25.0
    t = np.arange(int(20 * fps)) / fps
    onsets = [1.0, 4.0, 8.5, 15.0]
    lid = sum(closure(t, s, 0.3) for s in onsets)
    valid = np.ones(t.size, bool)
    valid[300:350] = False  # 2 s without a face
    ear = 0.3 * (1 - 0.7 * lid)
    track = synthetic_track(ear, fps, valid)
    clip = Clip(frames=np.zeros((t.size, 8, 8, 3), np.uint8), fps=fps, has_audio_track=False)
    out = blink_metrics(clip, track)

    assert set(out) == {"blink_count", "blink_rate_per_min", "blink_frames", "blink_durations_ms",
                        "ibi_mean_s", "ear_mean", "blink_model"}
    peaks = [round((s + 0.105) * fps) for s in onsets]
    assert out["blink_count"] == 4
    assert all(abs(a - b) <= 1 for a, b in zip(out["blink_frames"], peaks, strict=True))
    assert out["blink_rate_per_min"] == pytest.approx(4 / (18 / 60))
    assert out["ibi_mean_s"] == pytest.approx((peaks[-1] - peaks[0]) / 3 / fps, abs=1 / fps)
    assert all(abs(d - half_depth_ms(0.3)) <= 40 for d in out["blink_durations_ms"])
    assert out["ear_mean"] == pytest.approx(eye_aspect_ratio(track.landmarks[valid]).mean(), rel=1e-6)
    assert 0.25 < out["ear_mean"] < 0.3
    assert "EAR" in out["blink_model"]
    json.dumps(out)


def test_blink_metrics_without_blinks_and_without_face():
    fps = 25.0
    clip = Clip(frames=np.zeros((50, 8, 8, 3), np.uint8), fps=fps, has_audio_track=False)
    out = blink_metrics(clip, synthetic_track(np.full(50, 0.3), fps))
    assert out["blink_count"] == 0 and out["blink_frames"] == [] and out["ibi_mean_s"] is None
    assert out["blink_rate_per_min"] == 0.0
    with pytest.raises(NoFaceError):
        blink_metrics(clip, synthetic_track(np.full(50, 0.3), fps, valid=np.zeros(50, bool)))


# ---------------------------------------------------------------------------------------------- rendered clip

def close_eyelid(frame: np.ndarray, eye: np.ndarray, c: float) -> np.ndarray:
    """Lower the upper lid by `c` (0 open, 1 shut) of the eye opening: the skin above the eye is
    stretched down over it, column by column, and the lid edge (lashes) darkened."""
    out = frame.astype(np.float64)
    rows = np.arange(frame.shape[0])
    upper, lower = eye[[0, 1, 2, 3]], eye[[0, 5, 4, 3]]
    upper, lower = upper[np.argsort(upper[:, 0])], lower[np.argsort(lower[:, 0])]
    height = np.ptp(eye[:, 1]) + 1
    for x in range(int(np.ceil(eye[:, 0].min())), int(np.floor(eye[:, 0].max())) + 1):
        y_up = np.interp(x, upper[:, 0], upper[:, 1]) - 1
        y_low = np.interp(x, lower[:, 0], lower[:, 1]) + 1
        top = y_up - 1.5 * height
        lid = y_up + c * (y_low - y_up)
        ys = np.arange(int(np.floor(top)), int(np.ceil(lid)) + 1)
        src = top + (ys - top) * (y_up - top) / max(lid - top, 1e-6)
        for ch in range(3):
            out[ys, x, ch] = np.interp(src, rows, frame[:, x, ch])
        out[int(round(lid)), x] *= 0.6
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def test_blinks_painted_on_a_real_face_are_found(astronaut):
    fps, n = 25.0, 80
    still = moving_photo(astronaut, n_frames=n, size=(256, 256), centre=(225, 130), zoom=1.5,
                         motion=np.zeros((n, 4)), fps=fps).clip
    lm = analyze(Clip(frames=still.frames[:2], fps=fps)).landmarks[0].astype(np.float64)
    profile = {-2: 0.35, -1: 0.8, 0: 1.0, 1: 0.85, 2: 0.5, 3: 0.2}  # fast close, slower reopening
    peaks = [12, 32, 52, 70]
    frames = still.frames.copy()
    for p in peaks:
        for dt, c in profile.items():
            frames[p + dt] = close_eyelid(close_eyelid(frames[p + dt], lm[RIGHT_EYE], c), lm[LEFT_EYE], c)
    clip = Clip(frames=frames, fps=fps, has_audio_track=False)
    track = analyze(clip)
    assert track.valid.all()
    out = blink_metrics(clip, track)
    pairs = match(out["blink_frames"], peaks)
    assert f1_score(out["blink_count"], len(peaks), len(pairs)) >= 0.95
    ear = eye_aspect_ratio(track.landmarks)
    assert ear[peaks].max() < 0.75 * np.median(ear)  # dlib really saw the eyes close


# ---------------------------------------------------------------------------------------------- one blink schema


def test_blinks_the_warp_generator_puts_in_are_found_where_they_were_put():
    """Ground truth (warp's draw_blinks) and detection share `fakebench.faces.Blink`; score_blinks compares them."""
    from fakebench.faces import Blink as SharedBlink
    from fakebench.faces import score_blinks
    from fakebench.generators.warp import draw_blinks

    fps = 25.0
    truth, lid = draw_blinks(int(60 * fps), fps, 20.0, np.random.default_rng(11))
    assert len(truth) >= 10 and all(isinstance(b, SharedBlink) for b in truth) and Blink is SharedBlink
    noise = np.random.default_rng(1).normal(0, 0.004, lid.size)
    found = detect_blinks(OPEN_EAR - (OPEN_EAR - CLOSED_EAR) * lid + noise, fps)
    score = score_blinks(found, truth)
    assert score["precision"] == 1.0 and score["recall"] >= 0.85 and score["f1"] >= 0.9
    missed = set(range(len(truth))) - {j for _, j in score["matches"]}
    assert all(truth[j].duration_ms < 150 for j in missed)  # only the briefest (2-3 frames shown) may be missed
    assert abs(score["onset_error_frames"]) <= 1 and score["onset_abs_error_frames"] <= 1
    for i, j in score["matches"]:
        assert abs(found[i].peak - truth[j].peak) <= 1

    # one 300 ms blink put at 4.0 s is found there, and only there
    lid = np.zeros(250)
    lid[100:108] = [0.3, 0.8, 1.0, 1.0, 0.8, 0.5, 0.25, 0.1]
    put = SharedBlink(start=100, end=107, peak=102, duration_ms=320.0, depth=1.0, onset_s=4.0)
    (one,) = detect_blinks(OPEN_EAR - (OPEN_EAR - CLOSED_EAR) * lid, fps)
    assert score_blinks([one], [put])["f1"] == 1.0 and 100 <= one.start <= 102 and one.peak in (102, 103)


def test_score_blinks_counts_misses_false_alarms_and_onset_error():
    from fakebench.faces import Blink as B
    from fakebench.faces import score_blinks

    truth = [B(start=10, end=16, peak=12, duration_ms=200.0), B(start=50, end=58, peak=53, duration_ms=300.0)]
    found = [B(start=12, end=15, peak=13, duration_ms=120.0, depth=0.2),  # truth 0, 2 frames late
             B(start=80, end=84, peak=82, duration_ms=150.0, depth=0.2)]  # nothing there
    s = score_blinks(found, truth)
    assert (s["blinks_matched"], s["precision"], s["recall"]) == (1, 0.5, 0.5)
    assert s["f1"] == pytest.approx(0.5) and s["onset_error_frames"] == 2.0 and s["matches"] == [(0, 0)]
    assert score_blinks([], [])["f1"] == 1.0  # nothing to find, nothing found
    assert score_blinks([], truth)["recall"] == 0.0 and score_blinks([], truth)["onset_error_frames"] is None
    # one detection spanning two true blinks matches only one of them
    assert score_blinks([B(start=10, end=58, peak=30, duration_ms=1900.0)], truth)["blinks_matched"] == 1
    # the JSON form of ground truth round-trips, and keeps the keys the warp generator always wrote
    d = truth[0].as_dict()
    assert list(d) == ["start_frame", "end_frame", "peak_frame", "duration_ms"] and B.from_dict(d) == truth[0]
