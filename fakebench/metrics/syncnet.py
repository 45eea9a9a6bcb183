"""SyncNet (Chung & Zisserman 2016) with the published syncnet_v2 weights, following syncnet_python's protocol.

Kept apart from `fakebench.metrics.sync` so that measuring lip sync with fakebench's own av-cca estimator (the
default) does not import torch: this module is imported only when SyncNet runs.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import signal as sps
from scipy.fft import dct
from torch import nn

from fakebench.avsync import usable_max_offset
from fakebench.errors import MediaError, NoFaceError, WeightsError
from fakebench.faces import FaceTrack
from fakebench.media import Clip, resample_audio
from fakebench.weights import load_checkpoint

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


def syncnet_estimate(clip: Clip, track: FaceTrack, weights: Path, max_offset: int, device: str) -> dict[str, Any]:
    """SyncNet's offset and distances for one clip: offset (frames of the clip, +K = audio late), offset_s,
    lse_d (minimum mean distance), lse_c (median minus minimum), av_offset (SyncNet's own sign, 25 fps frames),
    dist_curve, vshift (offsets searched, 25 fps frames) and requested."""
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
    return {"offset": int(round(-av_offset * clip.fps / SYNCNET_FPS)), "offset_s": -av_offset / SYNCNET_FPS,
            "lse_d": min_dist, "lse_c": conf, "av_offset": av_offset,
            "dist_curve": [round(float(d), 5) for d in mdist], "vshift": vshift, "requested": requested}


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
