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
import torch
from scipy import signal as sps
from scipy.fft import dct
from scipy.ndimage import uniform_filter1d
from torch import nn

from fakebench.avsync import (
    ClipFeatures,
    SyncModel,
    estimate_offset,
    mel_levels,
    mouth_motion,
    mouth_shapes,
    speech_modulation_db,
)
from fakebench.devices import resolve_device
from fakebench.errors import AudioError, ConfigError, MediaError, NoFaceError, WeightsError
from fakebench.faces import FaceTrack, mouth_opening
from fakebench.media import Clip, check_speech_audio, resample_audio
from fakebench.metrics.registry import MetricContext, register_metric
from fakebench.weights import find_weight, load_checkpoint, locate, sha256_of

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

# SyncNet protocol (syncnet_python SyncNetInstance / run_pipeline).
SYNCNET_FPS = 25.0
SYNCNET_SR = 16000
SYNCNET_WINDOW = 5  # video frames per window; audio: 20 MFCC columns, 4 per frame
CROP_SIZE = 224
CROP_SCALE = 0.40
CROP_PAD_VALUE = 110
BOX_MEDIAN_KERNEL = 13
PDIST_EPS = 1e-6
EMBED_BATCH = 32
# Reliability, one place (README "Lip sync" quotes these; benchmarks/sync_real.py measures them on real clips,
# leave-one-speaker-out, against nulls: the clip's mouth with other speakers' audio, still photos, noise).
SYNC_RELIABLE_MIN_Z = 3.55  # av-cca evidence z: at most 5 % of real clips given other speakers' audio reach it
MIN_MOUTH_MOTION = 0.006  # inter-ocular units, median band-passed deviation of the aligned mouth landmarks
MIN_SPEECH_MODULATION_DB = 2.0  # syllable-rate deviation of the speech level (dB)
SYNCNET_MIN_CONFIDENCE = 3.0  # LSE-C; data-cleaning practice with syncnet_v2, not measured here (no weights)
NO_LIP_MOTION, NO_SPEECH, NO_CLEAR_OFFSET = "no lip motion", "no speech", "no clear offset"
SKIPPED_NO_AUDIO = "no audio track"  # `sync_skipped` of a measured clip without any audio (a visual-only clip)


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


def usable_max_offset(n_frames: int, max_offset: int) -> int:
    """The search range actually used: at the extreme offsets at least two thirds of the clip overlap."""
    return max(1, min(max_offset, n_frames // 3))


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


# ---------------------------------------------------------------------------------------------- MFCC

def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def mel_filterbank(n_filters: int = 26, nfft: int = 512, sample_rate: int = 16000) -> np.ndarray:
    """python_speech_features' triangular mel filterbank, (n_filters, nfft // 2 + 1), 0 Hz to Nyquist."""
    def hz2mel(hz):
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    mels = np.linspace(hz2mel(0.0), hz2mel(sample_rate / 2), n_filters + 2)
    bins = np.floor((nfft + 1) * (700.0 * (10.0 ** (mels / 2595.0) - 1.0)) / sample_rate)
    fb = np.zeros((n_filters, nfft // 2 + 1))
    k = np.arange(nfft // 2 + 1)
    for j in range(n_filters):
        left, centre, right = bins[j], bins[j + 1], bins[j + 2]
        rising = (k >= left) & (k < centre)
        falling = (k >= centre) & (k < right)
        fb[j, rising] = (k[rising] - left) / (centre - left)
        fb[j, falling] = (right - k[falling]) / (right - centre)
    return fb


def mfcc(signal: np.ndarray, sample_rate: int = 16000, *, winlen: float = 0.025, winstep: float = 0.01,
         numcep: int = 13, nfilt: int = 26, nfft: int = 512, preemph: float = 0.97,
         ceplifter: int = 22) -> np.ndarray:
    """MFCCs exactly as python_speech_features.mfcc 0.6 computes them with its defaults: (frames, numcep).

    Pre-emphasis, rectangular 25 ms frames every 10 ms (the last zero-padded), power spectrum / nfft,
    log mel energies, orthonormal DCT-II, sinusoidal lifter, c0 replaced by the log frame energy.
    """
    x = np.asarray(signal, np.float64)
    x = np.append(x[0], x[1:] - preemph * x[:-1])
    frame_len, step = _round_half_up(winlen * sample_rate), _round_half_up(winstep * sample_rate)
    n = 1 if x.size <= frame_len else 1 + math.ceil((x.size - frame_len) / step)
    padded = np.concatenate([x, np.zeros((n - 1) * step + frame_len - x.size)])
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame_len)[::step][:n]
    power = np.abs(np.fft.rfft(frames, nfft)) ** 2 / nfft
    eps = np.finfo(float).eps
    energy = power.sum(1)
    energy = np.where(energy == 0, eps, energy)
    feat = power @ mel_filterbank(nfilt, nfft, sample_rate).T
    feat = np.where(feat == 0, eps, feat)
    cep = dct(np.log(feat), type=2, axis=1, norm="ortho")[:, :numcep]
    if ceplifter > 0:
        cep = cep * (1 + ceplifter / 2.0 * np.sin(np.pi * np.arange(numcep) / ceplifter))
    cep[:, 0] = np.log(energy)
    return cep


# ---------------------------------------------------------------------------------------------- SyncNet

def _conv_bn(conv: nn.Module, channels: int, dims: int) -> list[nn.Module]:
    bn = nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm3d(channels)
    return [conv, bn, nn.ReLU(inplace=True)]


def _fc_head(embedding: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, embedding))


class SyncNet(nn.Module):
    """syncnet_python's class S: same module names and nn.Sequential indices, so syncnet_v2.model loads.

    Audio: (N, 1, 13, 20) MFCC windows -> netcnnaud -> 512 -> netfcaud -> 1024.
    Video: (N, 3, 5, 224, 224) raw 0-255 BGR face crops -> netcnnlip -> 512 -> netfclip -> 1024.
    """

    def __init__(self, embedding: int = 1024) -> None:
        super().__init__()
        self.netcnnaud = nn.Sequential(
            *_conv_bn(nn.Conv2d(1, 64, 3, padding=1), 64, 2),  # 0-2
            nn.MaxPool2d(1, 1),  # 3
            *_conv_bn(nn.Conv2d(64, 192, 3, padding=1), 192, 2),  # 4-6
            nn.MaxPool2d(3, (1, 2)),  # 7
            *_conv_bn(nn.Conv2d(192, 384, 3, padding=1), 384, 2),  # 8-10
            *_conv_bn(nn.Conv2d(384, 256, 3, padding=1), 256, 2),  # 11-13
            *_conv_bn(nn.Conv2d(256, 256, 3, padding=1), 256, 2),  # 14-16
            nn.MaxPool2d(3, 2),  # 17
            *_conv_bn(nn.Conv2d(256, 512, (5, 4)), 512, 2),  # 18-20
        )
        self.netfcaud = _fc_head(embedding)
        self.netfclip = _fc_head(embedding)
        self.netcnnlip = nn.Sequential(
            *_conv_bn(nn.Conv3d(3, 96, (5, 7, 7), stride=(1, 2, 2)), 96, 3),  # 0-2
            nn.MaxPool3d((1, 3, 3), (1, 2, 2)),  # 3
            *_conv_bn(nn.Conv3d(96, 256, (1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)), 256, 3),  # 4-6
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), padding=(0, 1, 1)),  # 7
            *_conv_bn(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, 3),  # 8-10
            *_conv_bn(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, 3),  # 11-13
            *_conv_bn(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, 3),  # 14-16
            nn.MaxPool3d((1, 3, 3), (1, 2, 2)),  # 17
            *_conv_bn(nn.Conv3d(256, 512, (1, 6, 6)), 512, 3),  # 18-20
        )

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        return self.netfcaud(self.netcnnaud(x).flatten(1))

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        return self.netfclip(self.netcnnlip(x).flatten(1))


def load_syncnet_state(model: SyncNet, state: Any, source: str = "the checkpoint") -> SyncNet:
    """Load a syncnet_v2 state dict strictly; only BatchNorm's num_batches_tracked may be missing."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{source} is not a SyncNet state dict (a mapping of names to tensors); "
                           "use syncnet_v2.model from the syncnet_python release")
    state = dict(state)
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise WeightsError(f"{source} does not fit SyncNet (syncnet_v2): missing {_some(missing)}, "
                           f"unexpected {_some(unexpected)}; use syncnet_v2.model from syncnet_python")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        reason = " ".join(str(e).split())[:300]
        raise WeightsError(f"{source} does not fit SyncNet (syncnet_v2): {reason}") from None
    return model.eval()


def _some(keys: list[str], limit: int = 3) -> str:
    if not keys:
        return "none"
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_syncnet(path: str | os.PathLike, device: str = "cpu") -> SyncNet:
    """A SyncNet in eval mode with the weights at `path`, loaded with the weights-only unpickler (cached)."""
    p = Path(path).resolve()
    stat = p.stat()
    return _load_syncnet_cached(str(p), stat.st_size, stat.st_mtime_ns, device)


@lru_cache(maxsize=2)
def _load_syncnet_cached(path: str, size: int, mtime_ns: int, device: str) -> SyncNet:
    state = load_checkpoint(path, name="syncnet_v2")
    return load_syncnet_state(SyncNet(), state, source=path).to(device)


def _syncnet_metrics(clip: Clip, track: FaceTrack, weights: Path, max_offset: int,
                     device: str) -> dict[str, Any]:
    model = load_syncnet(weights, device)
    crops = syncnet_face_crops(clip.frames, track.boxes, track.valid, _index_at_25_fps(clip.n_frames, clip.fps))
    pcm = _int16_scaled(resample_audio(clip.audio, clip.sample_rate, SYNCNET_SR))
    n_windows = min(len(crops), pcm.size // int(SYNCNET_SR / SYNCNET_FPS)) - SYNCNET_WINDOW
    if n_windows < 1:
        raise MediaError(f"the clip gives no complete {SYNCNET_WINDOW}-frame SyncNet window; "
                         "lip-sync needs a longer clip")
    requested = max(1, int(round(max_offset * SYNCNET_FPS / clip.fps)))  # in 25 fps frames
    vshift = usable_max_offset(n_windows + SYNCNET_WINDOW, requested)
    video_emb, audio_emb = syncnet_embeddings(model, crops, mfcc(pcm, SYNCNET_SR), n_windows, device)
    av_offset, min_dist, conf, mdist = syncnet_offset(_syncnet_offsets(video_emb, audio_emb, vshift), vshift)
    offset = int(round(-av_offset * clip.fps / SYNCNET_FPS))
    result = _base_result(SYNCNET_METHOD, offset, -av_offset / SYNCNET_FPS, conf, vshift, requested, "",
                          str(weights))
    result["sync_weights_sha256"] = sha256_of(weights)
    result["lse_d"] = min_dist
    result["lse_c"] = conf
    result["syncnet_av_offset"] = av_offset
    result["syncnet_dist_curve"] = [round(float(d), 5) for d in mdist]
    reliable, reason = sync_reliability(*_motion_and_speech(clip, track), None, syncnet_confidence=conf)
    result |= {"sync_reliable": reliable, "sync_unreliable_reason": reason}
    return result


def syncnet_offset(dists: torch.Tensor, vshift: int) -> tuple[int, float, float, torch.Tensor]:
    """syncnet_python's reading of the (N, 2 vshift + 1) distances: (AV offset, min dist, confidence, mdist).

    mdist = mean over windows; AV offset = vshift - argmin (positive = audio leads the video);
    confidence = median(mdist) - min(mdist).
    """
    mdist = dists.mean(0)
    minval, minidx = torch.min(mdist, 0)
    return vshift - int(minidx), float(minval), float(torch.median(mdist) - minval), mdist


def _int16_scaled(audio: np.ndarray) -> np.ndarray:
    """The audio as syncnet_python sees it: 16-bit PCM sample values (as read from its wav file)."""
    return np.round(np.clip(audio, -1.0, 1.0) * 32767.0)


def _index_at_25_fps(n_frames: int, fps: float) -> np.ndarray:
    """The frame shown at each 25 fps instant (nearest in time, as ``ffmpeg -r 25`` picks)."""
    if abs(fps - SYNCNET_FPS) < 1e-3:
        return np.arange(n_frames)
    n = max(1, int(math.floor(n_frames * SYNCNET_FPS / fps)))
    return np.minimum(np.round(np.arange(n) * fps / SYNCNET_FPS).astype(int), n_frames - 1)


def syncnet_face_crops(frames: np.ndarray, boxes: np.ndarray, valid: np.ndarray,
                       index: np.ndarray | None = None) -> np.ndarray:
    """run_pipeline.crop_video's crops of frames[index] (default all): (T, 224, 224, 3) uint8 BGR.

    Half-size s = max(w, h) / 2 and the box centre, interpolated over frames without a face and
    median-filtered over 13 frames; the frame padded by s(1 + 2cs) with grey 110; the square of side
    2.8 s (cs = 0.4) from s above to 1.8 s below the centre, cut at the same whole pixels as there;
    bilinear resize to 224 x 224 with half-pixel centres and no antialiasing, like OpenCV's INTER_LINEAR
    (only the outermost half pixel of the crop may differ: OpenCV clamps at the crop's edge).
    """
    index = np.arange(len(frames)) if index is None else np.asarray(index)
    boxes = np.asarray(boxes, np.float64)[index]
    t = np.arange(len(index))
    ok = np.asarray(valid, bool)[index] & np.isfinite(boxes).all(1) & (boxes[:, 2] > boxes[:, 0])
    if not ok.any():
        raise NoFaceError("no frame with a face box; SyncNet needs a tracked face")
    s = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) / 2
    x = (boxes[:, 0] + boxes[:, 2]) / 2
    y = (boxes[:, 1] + boxes[:, 3]) / 2
    # medfilt zero-pads; a kernel no longer than the clip keeps the zeros a minority at the ends
    kernel = min(BOX_MEDIAN_KERNEL, len(t) - (len(t) + 1) % 2)
    s, x, y = (sps.medfilt(np.interp(t, t[ok], v[ok]), kernel) for v in (s, x, y))
    windows = _crop_windows(s, x, y)
    out = np.empty((len(t), CROP_SIZE, CROP_SIZE, 3), np.uint8)
    for start in range(0, len(t), EMBED_BATCH):
        sl = slice(start, start + EMBED_BATCH)
        out[sl] = _crop_and_resize(frames, index[sl], windows[sl])
    return out


def _crop_windows(s: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """crop_video's crop windows in frame pixels, (T, 4) top, bottom, left, right (end-exclusive)."""
    cs = CROP_SCALE
    pad = (s * (1 + 2 * cs)).astype(np.int64)  # int() as there: the windows start on whole pixels
    top = np.trunc(y + pad - s).astype(np.int64) - pad
    bottom = np.trunc(y + pad + s * (1 + 2 * cs)).astype(np.int64) - pad
    left = np.trunc(x + pad - s * (1 + cs)).astype(np.int64) - pad
    right = np.trunc(x + pad + s * (1 + cs)).astype(np.int64) - pad
    return np.stack([top, bottom, left, right], 1)


def _crop_and_resize(frames: np.ndarray, index: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """One batched bilinear sampling of the windows; only the region they cover (plus 1 px) is read."""
    height, width = frames.shape[1:3]
    r0 = int(np.clip(windows[:, 0].min() - 1, 0, height - 1))
    r1 = int(np.clip(windows[:, 1].max() + 1, r0 + 1, height))
    c0 = int(np.clip(windows[:, 2].min() - 1, 0, width - 1))
    c1 = int(np.clip(windows[:, 3].max() + 1, c0 + 1, width))
    region = torch.from_numpy(np.ascontiguousarray(frames[index, r0:r1, c0:c1])).permute(0, 3, 1, 2)
    h, w = r1 - r0, c1 - c0
    top, bottom, left, right = (windows - [r0, r0, c0, c0]).T
    theta = np.zeros((len(index), 2, 3))  # affine_grid (align_corners=False): output [-1, 1] -> window
    theta[:, 0, 0] = (right - left) / w
    theta[:, 0, 2] = (left + right) / w - 1
    theta[:, 1, 1] = (bottom - top) / h
    theta[:, 1, 2] = (top + bottom) / h - 1
    grid = torch.nn.functional.affine_grid(torch.from_numpy(theta).float(), [len(index), 3, CROP_SIZE, CROP_SIZE],
                                           align_corners=False)
    # Sampling (frame - 110) with zero padding = sampling the frame padded with grey 110.
    crops = torch.nn.functional.grid_sample(region.float() - CROP_PAD_VALUE, grid, mode="bilinear",
                                            padding_mode="zeros", align_corners=False) + CROP_PAD_VALUE
    return crops.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()[..., ::-1]


def syncnet_embeddings(model: SyncNet, crops: np.ndarray, mfccs: np.ndarray, n_windows: int,
                       device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Embed every window once: video frames i..i+4 and MFCC columns 4i..4i+19, i < n_windows."""
    video = torch.from_numpy(crops).permute(0, 3, 1, 2)  # (T, 3, H, W) uint8
    cepstra = torch.from_numpy(np.ascontiguousarray(mfccs.T)).float()  # (13, M)
    step = SYNCNET_WINDOW - 1
    video_emb, audio_emb = [], []
    with torch.inference_mode():
        for start in range(0, n_windows, EMBED_BATCH):
            idx = range(start, min(n_windows, start + EMBED_BATCH))
            lips = torch.stack([video[i:i + SYNCNET_WINDOW] for i in idx]).permute(0, 2, 1, 3, 4)
            video_emb.append(model.forward_lip(lips.float().to(device)).cpu())
            audio = torch.stack([cepstra[:, step * i:step * i + 20] for i in idx])[:, None]
            audio_emb.append(model.forward_aud(audio.to(device)).cpu())
    return torch.cat(video_emb), torch.cat(audio_emb)


def _syncnet_offsets(video_emb: torch.Tensor, audio_emb: torch.Tensor, vshift: int) -> torch.Tensor:
    """calc_pdist for all windows and offsets at once: (N, 2 vshift + 1) distances.

    d[i, k] = ||v_i - a_{i + k - vshift} + eps||, the audio zero-padded by vshift windows at each end.
    """
    padded = torch.nn.functional.pad(audio_emb, (0, 0, vshift, vshift))
    shifted = padded.unfold(0, 2 * vshift + 1, 1)  # (N, D, 2 vshift + 1): shifted[i, :, k] = padded[i + k]
    return torch.linalg.vector_norm(video_emb[:, :, None] - shifted + PDIST_EPS, dim=1)


def _syncnet_offsets_loop(video_emb: torch.Tensor, audio_emb: torch.Tensor, vshift: int) -> torch.Tensor:
    """The same distances, one offset at a time with pairwise_distance (the reference for tests)."""
    n = len(video_emb)
    padded = torch.nn.functional.pad(audio_emb, (0, 0, vshift, vshift))
    columns = [torch.nn.functional.pairwise_distance(video_emb, padded[k:k + n], eps=PDIST_EPS)
               for k in range(2 * vshift + 1)]
    return torch.stack(columns, 1)


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
