"""Lip-sync: the audio-visual offset of a clip and how confident that estimate is.

Three estimators, one sign convention: ``sync_offset_frames = +K`` when the audio lags the video by K
frames (a clip whose audio track was delayed by 3 frames measures +3), as the desync generator counts.

- ``avsync`` (default without SyncNet weights; nothing downloaded): fakebench's av-cca model
  (`fakebench.avsync`, shipped in the package with its model card): pose-normalised mouth landmarks and
  log-mel speech levels, projected by canonical correlation analysis learned on real in-sync speech, and
  correlated at offsets of +-max_offset frames. Offset = the argmax; confidence = peak minus median agreement;
  ``sync_evidence_z`` = the peak's Fisher z times sqrt(frames - 3), which decides ``sync_reliable``.
- ``envelope`` (the first estimator, kept for comparison): the normalised cross-correlation of the inner-lip
  opening with the speech envelope. It was wrong on most real clips; it never says reliable.
- ``syncnet``: SyncNet (Chung & Zisserman 2016) with the published syncnet_v2 weights, following
  syncnet_python's protocol (25 fps, 16 kHz, 13 MFCCs, 5-frame 224x224 BGR face-crop windows,
  calc_pdist's zero padding). LSE-D = the minimum mean distance, LSE-C = median minus minimum, as
  Wav2Lip reports them. SyncNet's own offset (positive = audio leads) is kept as ``syncnet_av_offset``.

``sync_metrics(clip, track)`` picks SyncNet when its weights are found (``method="auto"``), else avsync, and
says in ``sync_note`` when it fell back. LSE-D / LSE-C appear only when SyncNet weights were used.

Every result says whether to trust it: ``sync_reliable`` and, when false, ``sync_unreliable_reason``: "no lip
motion" (the mouth does not move: a still photo), "no speech" (the audio has no syllable rhythm: noise, music,
silence), "no clear offset" (the best agreement is not above what unrelated audio and video reach). An
unreliable result keeps its offset, but it is not evidence of anything.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from scipy import signal as sps
from scipy.ndimage import uniform_filter1d

from fakebench.avsync import (
    ClipFeatures,
    SyncModel,
    estimate_offset,
    mel_levels,
    mouth_motion,
    mouth_shapes,
    speech_modulation_db,
    usable_max_offset,
)
from fakebench.devices import resolve_device
from fakebench.errors import AudioError, ConfigError, MediaError, NoFaceError
from fakebench.faces import FaceTrack, mouth_opening
from fakebench.media import Clip, check_speech_audio, resample_audio
from fakebench.metrics.registry import MetricContext, register_metric
from fakebench.weights import find_weight, locate, sha256_of

if TYPE_CHECKING:
    from fakebench.samples import Sample

Method = Literal["auto", "avsync", "envelope", "syncnet"]

AVSYNC_METHOD = "av-cca-v1: pose-normalised mouth landmarks vs log-mel speech, CCA model (fakebench.avsync)"
ENVELOPE_METHOD = "envelope-xcorr-v1: landmark mouth opening vs speech envelope"
SYNCNET_METHOD = "syncnet_v2: SyncNet (Chung & Zisserman 2016), syncnet_python protocol"
MIN_FRAMES = 15  # shortest clip measured (0.6 s at 25 fps)
MIN_FACE_RATIO = 0.5  # share of frames that must have a tracked face

# Envelope estimator.
ENVELOPE_SR = 16000
SPEECH_BAND_HZ = (100.0, 4000.0)
LEVEL_RANGE_DB = 40.0  # frame levels are floored this far below the loud (95th percentile) speech level
HIGHPASS_S = 1.0  # a centred moving average this long is removed from both signals
ENVELOPE_MIN_MOUTH_MOTION = 1e-3  # inter-ocular units: below this standard deviation the mouth is still
MIN_ENVELOPE_CHANGE_DB = 0.1

# Reliability, one place (README "Lip sync" quotes these; benchmarks/sync_real.py measures them on real clips,
# leave-one-speaker-out, against nulls: the clip's mouth with other speakers' audio, still photos, noise).
SYNC_RELIABLE_MIN_Z = 3.55  # av-cca evidence z: at most 5 % of real clips given other speakers' audio reach it
MIN_MOUTH_MOTION = 0.006  # inter-ocular units, median band-passed deviation of the aligned mouth landmarks
MIN_SPEECH_MODULATION_DB = 2.0  # syllable-rate deviation of the speech level (dB)
SYNCNET_MIN_CONFIDENCE = 3.0  # LSE-C; data-cleaning practice with syncnet_v2, not measured here (no weights)
NO_LIP_MOTION, NO_SPEECH, NO_CLEAR_OFFSET = "no lip motion", "no speech", "no clear offset"
SKIPPED_NO_AUDIO = "no audio track"  # `sync_skipped` of a measured clip without any audio (a visual-only clip)


_SYNCNET_NAMES = ("SyncNet", "load_syncnet", "load_syncnet_state", "syncnet_estimate", "syncnet_offset",
                  "mfcc", "mel_filterbank", "SYNCNET_FPS", "SYNCNET_SR", "SYNCNET_WINDOW", "CROP_SIZE", "CROP_SCALE",
                  "CROP_PAD_VALUE", "BOX_MEDIAN_KERNEL", "PDIST_EPS", "EMBED_BATCH",
                  "syncnet_face_crops", "syncnet_embeddings", "_syncnet_offsets", "_syncnet_offsets_loop",
                  "_index_at_25_fps", "_int16_scaled", "_crop_windows", "_crop_and_resize")


def __getattr__(name: str) -> Any:  # the SyncNet part lives in fakebench.metrics.syncnet (imports torch)
    if name in _SYNCNET_NAMES:
        from fakebench.metrics import syncnet

        return getattr(syncnet, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------------------------------------- entry point

def sync_metrics(clip: Clip, track: FaceTrack, *, method: Method = "auto",
                 syncnet_weights: str | os.PathLike | None = None, max_offset: int = 15,
                 device: str = "auto", sync_model_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Lip-sync offset and confidence of one clip (flat, JSON-serialisable).

    Keys: ``sync_method``, ``sync_offset_frames`` (+K = audio K frames late), ``sync_offset_s``,
    ``sync_confidence``, ``sync_max_offset_used``, ``sync_note``, ``sync_weights``; with the envelope
    method also ``sync_peak_corr`` and ``sync_corr_curve`` (correlation at offsets -m..+m); with SyncNet
    also ``lse_d``, ``lse_c``, ``syncnet_av_offset`` and ``syncnet_dist_curve`` (mean distance at
    offsets -m..+m in fakebench's sign). When the mouth does not move (a still photo) the envelope method
    has nothing to align: the offset is None and the confidence 0.

    The two confidences are in different units (correlation vs SyncNet distance): compare a confidence
    only with others of the same ``sync_method``. SyncNet works at 25 fps: its ``syncnet_av_offset`` and
    ``sync_max_offset_used`` count 25 fps frames, ``sync_offset_frames`` counts frames of the clip.
    """
    if method not in ("auto", "avsync", "envelope", "syncnet"):
        raise ConfigError(f"unknown sync method {method!r}; choose auto, avsync, envelope or syncnet")
    if not isinstance(max_offset, int | np.integer) or max_offset < 1:
        raise ConfigError(f"max_offset must be a whole number of frames >= 1, got {max_offset!r}")
    _check_inputs(clip, track)
    note = ""
    if method == "auto":
        if syncnet_weights is not None or locate("syncnet_v2").found:
            method = "syncnet"
        else:
            method = "avsync"
            note = "syncnet_v2 weights not found: fakebench's av-cca estimator used, LSE-D/LSE-C not computed"
    if method == "syncnet":
        path = find_weight("syncnet_v2", syncnet_weights, option="--syncnet-weights")
        return _syncnet_metrics(clip, track, path, int(max_offset), resolve_device(device))
    if method == "avsync":
        return _avsync_metrics(clip, track, int(max_offset), note, sync_model_path)
    return _envelope_metrics(clip, track, int(max_offset), note)


def _check_inputs(clip: Clip, track: FaceTrack) -> None:
    if not clip.has_audio:
        raise AudioError("the clip has no audio; lip-sync needs the speech track: give a clip with sound")
    check_speech_audio(clip.audio, clip.sample_rate, fps=clip.fps, what="the clip's audio")
    if track.n_frames != clip.n_frames:
        raise MediaError(f"the face track has {track.n_frames} frames but the clip has {clip.n_frames}; "
                         "analyse this clip (fakebench.faces.analyze) and pass its own track")
    if clip.n_frames < MIN_FRAMES:
        raise MediaError(f"the clip has {clip.n_frames} frames ({clip.duration_s:.2f} s); lip-sync needs "
                         f"at least {MIN_FRAMES} frames of a speaking face")
    track.require_face("lip-sync measurement", min_ratio=MIN_FACE_RATIO)


def _base_result(method: str, offset: int | None, offset_s: float | None, confidence: float, max_used: int,
                 max_requested: int, note: str, weights: str) -> dict[str, Any]:
    if max_used < max_requested:
        reduced = f"clip too short for +-{max_requested} frames: searched +-{max_used}"
        note = f"{note}; {reduced}" if note else reduced
    return {
        "sync_method": method,
        "sync_offset_frames": None if offset is None else int(offset),
        "sync_offset_s": None if offset_s is None else round(offset_s, 6),
        "sync_confidence": float(confidence),
        "sync_max_offset_used": int(max_used),
        "sync_note": note,
        "sync_weights": weights,
    }


# ---------------------------------------------------------------------------------------------- av-cca

def sync_model(path: str | os.PathLike | None = None) -> SyncModel:
    """The av-cca sync model: ``path``, else the one shipped in the package (weights entry ``sync_cca``)."""
    found = find_weight("sync_cca", path, option="--sync-model")
    return _load_sync_model(str(found.resolve()))


@lru_cache(maxsize=2)
def _load_sync_model(path: str) -> SyncModel:
    return SyncModel.load(path)


def _avsync_metrics(clip: Clip, track: FaceTrack, max_offset: int, note: str,
                    model_path: str | os.PathLike | None = None) -> dict[str, Any]:
    n = clip.n_frames
    max_used = usable_max_offset(n, max_offset)
    features = ClipFeatures.of(track, clip.audio, clip.sample_rate, clip.fps)
    found = estimate_offset(sync_model(model_path), features, max_used)
    result = _base_result(AVSYNC_METHOD, found.offset, found.offset / clip.fps, found.confidence, max_used,
                          max_offset, note, weights=str(find_weight("sync_cca", model_path)))
    reliable, reason = sync_reliability(features.mouth_motion, features.speech_modulation_db, found.evidence_z)
    result |= {"sync_reliable": reliable, "sync_unreliable_reason": reason,
               "sync_evidence_z": round(found.evidence_z, 4), "sync_mouth_motion": round(features.mouth_motion, 5),
               "sync_speech_modulation_db": round(features.speech_modulation_db, 3),
               "sync_peak_corr": round(found.agreement, 5),
               "sync_corr_curve": [round(float(c), 5) for c in found.curve]}
    return result


def sync_reliability(mouth_motion: float, speech_modulation_db: float, evidence_z: float | None, *,
                     syncnet_confidence: float | None = None) -> tuple[bool, str]:
    """(reliable, reason when not): the one decision every estimator's result goes through."""
    if mouth_motion < MIN_MOUTH_MOTION:
        return False, NO_LIP_MOTION
    if speech_modulation_db < MIN_SPEECH_MODULATION_DB:
        return False, NO_SPEECH
    if syncnet_confidence is not None:
        return (True, "") if syncnet_confidence >= SYNCNET_MIN_CONFIDENCE else (False, NO_CLEAR_OFFSET)
    if evidence_z is None or evidence_z < SYNC_RELIABLE_MIN_Z:
        return False, NO_CLEAR_OFFSET
    return True, ""


def _motion_and_speech(clip: Clip, track: FaceTrack) -> tuple[float, float]:
    shapes = mouth_shapes(track)
    levels = mel_levels(clip.audio, clip.sample_rate, clip.n_frames, clip.fps)
    return mouth_motion(shapes, clip.fps), speech_modulation_db(levels, clip.fps)


# ---------------------------------------------------------------------------------------------- SyncNet

def _syncnet_metrics(clip: Clip, track: FaceTrack, weights: Path, max_offset: int, device: str) -> dict[str, Any]:
    from fakebench.metrics.syncnet import syncnet_estimate  # imports torch: only when SyncNet runs

    found = syncnet_estimate(clip, track, weights, max_offset, device)
    result = _base_result(SYNCNET_METHOD, found["offset"], found["offset_s"], found["lse_c"], found["vshift"],
                          found["requested"], "", str(weights))
    result |= {"sync_weights_sha256": sha256_of(weights), "lse_d": found["lse_d"], "lse_c": found["lse_c"],
               "syncnet_av_offset": found["av_offset"], "syncnet_dist_curve": found["dist_curve"]}
    reliable, reason = sync_reliability(*_motion_and_speech(clip, track), None, syncnet_confidence=found["lse_c"])
    return result | {"sync_reliable": reliable, "sync_unreliable_reason": reason}


# ---------------------------------------------------------------------------------------------- envelope

def _envelope_metrics(clip: Clip, track: FaceTrack, max_offset: int, note: str) -> dict[str, Any]:
    n = clip.n_frames
    max_used = usable_max_offset(n, max_offset)
    video = highpass(mouth_signal(track), clip.fps)
    audio = highpass(speech_envelope(clip.audio, clip.sample_rate, n, clip.fps), clip.fps)
    if video.std() < ENVELOPE_MIN_MOUTH_MOTION or audio.std() < MIN_ENVELOPE_CHANGE_DB:
        return _no_envelope_sync(video.std() < ENVELOPE_MIN_MOUTH_MOTION, max_used, max_offset, note)
    curve = lagged_correlation(video, audio, max_used)
    best = int(np.argmax(curve))
    offset = best - max_used
    result = _base_result(ENVELOPE_METHOD, offset, offset / clip.fps, curve[best] - np.median(curve), max_used,
                          max_offset, note, weights="none")
    result["sync_peak_corr"] = float(curve[best])
    result["sync_corr_curve"] = [round(float(c), 5) for c in curve]
    result |= {"sync_reliable": False,
               "sync_unreliable_reason": "the envelope estimator has no measured reliability; use avsync"}
    return result


def _no_envelope_sync(still_mouth: bool, max_used: int, max_offset: int, note: str) -> dict[str, Any]:
    """A mouth that does not move (a still photo) or an envelope that does not change: no offset, zero trust."""
    why = ("the mouth does not move: no lip-sync to measure" if still_mouth
           else "the audio level does not change: no speech rhythm to align")
    result = _base_result(ENVELOPE_METHOD, None, None, 0.0, max_used, max_offset,
                          f"{note}; {why}" if note else why, weights="none")
    result["sync_peak_corr"] = 0.0
    result["sync_corr_curve"] = [0.0] * (2 * max_used + 1)
    result |= {"sync_reliable": False, "sync_unreliable_reason": NO_LIP_MOTION if still_mouth else NO_SPEECH}
    return result


def mouth_signal(track: FaceTrack) -> np.ndarray:
    """Inner-lip opening per frame (inter-ocular units), linearly interpolated over frames without a face."""
    opening = mouth_opening(track.landmarks)
    ok = track.valid & np.isfinite(opening)
    if ok.sum() < 2:
        raise NoFaceError("fewer than two frames with mouth landmarks; lip-sync needs a visible speaking face")
    t = np.arange(track.n_frames)
    return np.interp(t, t[ok], opening[ok])


def speech_envelope(audio: np.ndarray, sample_rate: int, n_frames: int, fps: float) -> np.ndarray:
    """Log energy (dB) of the speech band in a one-frame window centred on each video frame's time slot.

    Frame i stands for [i/fps, (i+1)/fps); audio missing at the end counts as silence. Levels are floored
    LEVEL_RANGE_DB below the loud speech level, so background noise in pauses does not matter.
    """
    x = resample_audio(audio, sample_rate, ENVELOPE_SR).astype(np.float64)
    low, high = SPEECH_BAND_HZ
    sos = sps.butter(4, [low, high], btype="bandpass", fs=ENVELOPE_SR, output="sos")
    x = sps.sosfiltfilt(sos, x) if x.size > 3 * 2 * sos.shape[0] else x
    hop = ENVELOPE_SR / fps
    half = max(1, int(round(hop / 2)))
    centres = np.round((np.arange(n_frames) + 0.5) * hop).astype(np.int64)
    energy = np.concatenate([[0.0], np.cumsum(x * x)])
    lo = np.clip(centres - half, 0, x.size)
    hi = np.clip(centres + half, 0, x.size)
    level = 10.0 * np.log10((energy[hi] - energy[lo]) / (2 * half) + 1e-12)
    return np.maximum(level, np.percentile(level, 95) - LEVEL_RANGE_DB)


def highpass(x: np.ndarray, fps: float, seconds: float = HIGHPASS_S) -> np.ndarray:
    """Remove slow drift (head pose, loudness changes): x minus its centred moving average."""
    size = max(3, int(round(seconds * fps)) | 1)
    return x - uniform_filter1d(np.asarray(x, np.float64), size, mode="nearest")


def lagged_correlation(video: np.ndarray, audio: np.ndarray, max_offset: int) -> np.ndarray:
    """Pearson correlation of video[i] with audio[i + k] over the overlap, for k = -max_offset..+max_offset.

    A peak at k = K means the audio is K frames late.
    """
    n = len(video)
    out = np.empty(2 * max_offset + 1)
    for j, k in enumerate(range(-max_offset, max_offset + 1)):
        v = video[max(0, -k):n - max(0, k)]
        a = audio[max(0, k):n - max(0, -k)]
        v = v - v.mean()
        a = a - a.mean()
        denom = math.sqrt(float(v @ v) * float(a @ a))
        out[j] = float(v @ a) / denom if denom > 0 else 0.0
    return out


@register_metric("sync", per="clip", weights=("syncnet_v2", "sync_cca"),
                 keys=("sync_offset_frames", "sync_confidence", "sync_reliable", "sync_unreliable_reason",
                       "sync_method", "lse_d", "lse_c"),
                 description="lip-sync offset in frames (+K = audio K frames later than video), confidence, and "
                             "sync_reliable (false with a reason: no lip motion, no speech, no clear offset; then the "
                             "offset is unknown, not evidence); fakebench's av-cca model, or SyncNet with lse_d/lse_c "
                             "when the syncnet_v2 weights are found; a clip without an audio track gets sync_skipped")
def _sync_metric(sample: Sample, ctx: MetricContext) -> dict:
    if not sample.clip.has_audio_track:  # a visual-only clip: nothing to measure, and nothing wrong
        return {"sync_skipped": SKIPPED_NO_AUDIO}
    options = {} if ctx.device is None else {"device": ctx.device}
    return sync_metrics(sample.clip, sample.track, syncnet_weights=ctx.weight("syncnet_v2"),
                        sync_model_path=ctx.weight("sync_cca"), **options)
