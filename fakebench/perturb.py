"""Test-time robustness perturbations, ``Sample -> Sample``, each at five levels.

The video perturbations and their levels are the DeeperForensics-1.0 grid (EndlessSora/DeeperForensics-1.0,
``perturbation/distortions.py``; also LipForensics' robustness study), 7 types x 5 levels, with its "JPEG"
named for what it does (``resize``: down- then up-scaling) and real JPEG, frame dropping and the audio
perturbations added:

============  =======================================================  ===============================
name          what level 1 -> 5 is                                     values
============  =======================================================  ===============================
saturation    chroma scale in YCbCr (0 = grey)                         0.4, 0.3, 0.2, 0.1, 0.0
contrast      pixel scale (DeeperForensics' CC: every value x c)       0.85, 0.725, 0.6, 0.475, 0.35
blockwise     grey (128) 8x8 blocks per 256 px of the short side       16, 32, 48, 64, 80
noise         Gaussian noise variance on YCbCr in [0, 1]               0.001, 0.002, 0.005, 0.01, 0.05
blur          Gaussian kernel size k (sigma = k / 6)                   7, 9, 13, 17, 21
resize        down-scale factor, then back up (bilinear)               2, 3, 4, 5, 6
jpeg          JPEG quality (PIL/libjpeg, 4:2:0), each frame            90, 70, 50, 30, 10
h264          x264 CRF (preset medium), the whole clip                 30, 32, 35, 38, 40
framedrop     fraction of frames replaced by the previous kept frame   0.05, 0.1, 0.2, 0.3, 0.5
audio_noise   white Gaussian noise at this SNR (dB)                    30, 20, 10, 5, 0
mp3           MP3 (LAME) re-encode bit rate (bit/s)                    128k, 64k, 32k, 16k, 8k
aac           AAC (FFmpeg's encoder, in mp4) bit rate (bit/s)          128k, 64k, 32k, 16k, 8k
resample      sample rate (Hz) down to, then back up (soxr HQ)         12000, 10000, 8000, 6000, 4000
audio_offset  audio delayed by this many video frames (audio lags)     1, 2, 3, 5, 8
============  =======================================================  ===============================

Details, where the grid leaves a choice:

- Block-wise: DeeperForensics draws ``short_side // 256 * value`` blocks, none below 256 px; here the count is
  ``max(1, round(value * short_side / 256))`` per frame, at positions drawn afresh for every frame (as there).
- Noise is drawn independently of the level (the same seed gives the same pattern, scaled), so a higher level
  is always the same noise, stronger. Values are clipped to [0, 255] (DeeperForensics casts to uint8 unclipped).
- Resize uses PIL's bilinear filter, which low-passes when it shrinks (OpenCV's does not); the small size is
  ``size // factor`` as in DeeperForensics.
- H.264 re-encodes through `fakebench.media.write_clip` (the project's x264 settings) and decodes back.
- Frame dropping keeps the frame count and timing: a dropped frame shows the last kept frame (frame 0 is always
  kept); ``max(1, round(rate * (T - 1)))`` frames are dropped, the set at a level contained in the next one's.
- Audio noise: the noise power is ``signal power / 10^(SNR/10)`` exactly, the power taken over the whole clip.
- MP3 encodes at the clip's rate when MPEG audio allows the bit rate there, else at the highest MPEG rate that
  does (24 kHz or below for 16 and 8 kbit/s); AAC at the clip's rate, or 48 kHz for rates AAC cannot carry. The
  result is resampled back and cut to the original length; both containers record the encoder delay, so the
  decoded audio is not shifted.
- Resample leaves audio already at or below the target rate as it is (``meta["resampled"]`` is False).

`apply` never modifies its input and is deterministic given ``seed``. Video perturbations keep the frame count,
fps and audio; audio perturbations keep the frames (and the face track, when the input Sample already has it).
The result's ``meta`` adds ``perturbation``, ``level``, ``value`` (the parameter above), ``perturbation_seed``,
any facts of the perturbation (``offset_samples``, ``dropped_frames``, ...), and ``perturbations``: the chain
applied so far, for mixed distortions (apply one after another), and ``perturbed_from`` (the first source's
name). ``clip_id``, label, identity and split stay.
"""

from __future__ import annotations

import io
import math
import tempfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, overload

import av
import numpy as np
from PIL import Image
from scipy.ndimage import convolve1d

from fakebench.errors import AudioError, ConfigError, MediaError
from fakebench.media import (
    AAC_SAMPLE_RATES,
    SILENCE_RMS_DBFS,
    Clip,
    mux_mono_audio,
    read_clip,
    resample_audio,
    rms_dbfs,
    write_clip,
)
from fakebench.registry import check_seed
from fakebench.samples import Sample

__all__ = ["LEVELS", "PERTURBATIONS", "Perturbation", "apply", "apply_to_clip", "parse_perturbations",
           "perturbation_value"]

LEVELS = (1, 2, 3, 4, 5)
BLOCK_SIZE = 8  # DeeperForensics' block-wise patches: 8x8 px of grey 128
BLOCK_GREY = 128
# MPEG-1/2/2.5 audio layer III: the sample rates of each version and the bit rates (bit/s) it allows.
MP3_VERSIONS = (((32000, 44100, 48000), 32000, 320000),
                ((16000, 22050, 24000), 8000, 160000),
                ((8000, 11025, 12000), 8000, 64000))

Transform = Callable[[Clip, Any, np.random.Generator], tuple[Clip, dict[str, Any]]]


@dataclass(frozen=True)
class Perturbation:
    """One perturbation: its command-line ``name``, whether it changes the ``video`` or the ``audio``, the
    parameter ``values`` of levels 1..5, the parameter's ``unit`` and the ``transform`` that applies it."""

    name: str
    modality: str  # "video" | "audio"
    values: tuple[Any, ...]
    unit: str
    transform: Transform

    def value(self, level: int) -> Any:
        return self.values[level - 1]


# ---------------------------------------------------------------------------------------------- helpers

def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma (JPEG/JFIF YCbCr), float32, keeping a trailing axis of 1."""
    return rgb @ np.array([[0.299], [0.587], [0.114]], np.float32)


# Full-range BT.601 (JFIF) RGB <-> YCbCr on [0, 1] values, chroma centred on 0.5 (OpenCV's YCrCb, reordered).
_RGB_TO_YCBCR = np.array([[0.299, 0.587, 0.114],
                          [-0.168736, -0.331264, 0.5],
                          [0.5, -0.418688, -0.081312]], np.float32)
_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR).astype(np.float32)


def _video(clip: Clip, frames: np.ndarray) -> Clip:
    return replace(clip, frames=frames)


def _require_audio(clip: Clip, name: str) -> None:
    if not clip.has_audio:
        raise AudioError(f"the clip has no audio, so the audio perturbation {name!r} cannot apply; "
                         "give clips with sound or choose a video perturbation")


def _gaussian_kernel(size: int) -> np.ndarray:
    sigma = size / 6.0
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    k = np.exp(-x ** 2 / (2 * sigma ** 2))
    return (k / k.sum()).astype(np.float32)


# ---------------------------------------------------------------------------------------------- video

def _saturation(clip: Clip, scale: float, rng: np.random.Generator) -> tuple[Clip, dict]:
    # Scaling Cb and Cr about their centre is, in RGB, moving each pixel towards its luma by the same factor.
    out = np.empty_like(clip.frames)
    for t, frame in enumerate(clip.frames):
        rgb = frame.astype(np.float32)
        y = _luma(rgb)
        out[t] = _to_uint8(y + scale * (rgb - y))
    return _video(clip, out), {}


def _contrast(clip: Clip, scale: float, rng: np.random.Generator) -> tuple[Clip, dict]:
    out = np.empty_like(clip.frames)
    for t, frame in enumerate(clip.frames):
        out[t] = _to_uint8(frame.astype(np.float32) * scale)
    return _video(clip, out), {}


def _blockwise(clip: Clip, per_256: int, rng: np.random.Generator) -> tuple[Clip, dict]:
    h, w = clip.height, clip.width
    size_h, size_w = min(BLOCK_SIZE, h), min(BLOCK_SIZE, w)
    n_blocks = max(1, round(per_256 * min(h, w) / 256))
    most = max(1, round(max(PERTURBATIONS["blockwise"].values) * min(h, w) / 256))
    out = clip.frames.copy()
    for t in range(clip.n_frames):
        # The most blocks any level draws, drawn every time: a level's blocks are the first of the next one's.
        ys = rng.integers(0, h - size_h + 1, size=most)
        xs = rng.integers(0, w - size_w + 1, size=most)
        for y, x in zip(ys[:n_blocks], xs[:n_blocks], strict=True):
            out[t, y:y + size_h, x:x + size_w] = BLOCK_GREY
    return _video(clip, out), {"blocks_per_frame": int(n_blocks), "block_size": BLOCK_SIZE}


def _noise(clip: Clip, variance: float, rng: np.random.Generator) -> tuple[Clip, dict]:
    sd = np.float32(math.sqrt(variance))
    out = np.empty_like(clip.frames)
    for t, frame in enumerate(clip.frames):
        ycbcr = (frame.astype(np.float32) / 255) @ _RGB_TO_YCBCR.T
        ycbcr += sd * rng.standard_normal(ycbcr.shape, dtype=np.float32)
        out[t] = _to_uint8((ycbcr @ _YCBCR_TO_RGB.T) * 255)
    return _video(clip, out), {}


def _blur(clip: Clip, kernel: int, rng: np.random.Generator) -> tuple[Clip, dict]:
    k = _gaussian_kernel(kernel)
    out = np.empty_like(clip.frames)
    for t, frame in enumerate(clip.frames):
        f = convolve1d(frame.astype(np.float32), k, axis=0, mode="mirror")  # mirror = OpenCV's reflect-101
        out[t] = _to_uint8(convolve1d(f, k, axis=1, mode="mirror"))
    return _video(clip, out), {"sigma": kernel / 6.0}


def _resize(clip: Clip, factor: int, rng: np.random.Generator) -> tuple[Clip, dict]:
    w, h = clip.width, clip.height
    small = (max(1, w // factor), max(1, h // factor))
    out = np.empty_like(clip.frames)
    for t, frame in enumerate(clip.frames):
        image = Image.fromarray(frame).resize(small, Image.Resampling.BILINEAR)
        out[t] = np.asarray(image.resize((w, h), Image.Resampling.BILINEAR))
    return _video(clip, out), {"small_size": list(small)}


def _jpeg(clip: Clip, quality: int, rng: np.random.Generator) -> tuple[Clip, dict]:
    out = np.empty_like(clip.frames)
    for t, frame in enumerate(clip.frames):
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="JPEG", quality=int(quality), subsampling="4:2:0")
        buf.seek(0)
        with Image.open(buf) as image:
            out[t] = np.asarray(image.convert("RGB"))
    return _video(clip, out), {}


def _h264(clip: Clip, crf: int, rng: np.random.Generator) -> tuple[Clip, dict]:
    silent = replace(clip, audio=np.zeros(0, np.float32), has_audio_track=False)
    with tempfile.TemporaryDirectory(prefix="fakebench-h264-") as folder:
        path = write_clip(Path(folder) / "perturbed.mp4", silent, crf=int(crf))
        decoded = read_clip(path, min_frames=1)
    frames = decoded.frames[:, :clip.height, :clip.width]  # write_clip pads odd sizes by one row/column
    if len(frames) != clip.n_frames:  # constant-rate in and out: a mismatch is a bug, never a perturbation
        raise RuntimeError(f"h264 re-encoding gave {len(frames)} frames for {clip.n_frames}")
    return _video(clip, np.ascontiguousarray(frames)), {"preset": "medium"}


def _framedrop(clip: Clip, rate: float, rng: np.random.Generator) -> tuple[Clip, dict]:
    n = clip.n_frames
    order = rng.permutation(np.arange(1, n))  # independent of the level: the dropped sets are nested
    n_drop = min(n - 1, max(1, math.floor(rate * (n - 1) + 0.5)))
    dropped = np.zeros(n, bool)
    dropped[order[:n_drop]] = True
    source = np.arange(n)
    for t in range(1, n):
        if dropped[t]:
            source[t] = source[t - 1]
    return _video(clip, clip.frames[source]), {"dropped_frames": int(dropped.sum())}


# ---------------------------------------------------------------------------------------------- audio

def _audio(clip: Clip, audio: np.ndarray) -> Clip:
    return replace(clip, audio=np.clip(audio, -1.0, 1.0).astype(np.float32))


def _audio_noise(clip: Clip, snr_db: float, rng: np.random.Generator) -> tuple[Clip, dict]:
    _require_audio(clip, "audio_noise")
    if rms_dbfs(clip.audio) < SILENCE_RMS_DBFS:
        raise AudioError(f"the clip's audio is silent (under {SILENCE_RMS_DBFS:g} dBFS), so noise at an SNR "
                         "has no meaning; give clips with sound")
    signal = clip.audio.astype(np.float64)
    noise = rng.standard_normal(signal.size)
    noise *= math.sqrt(np.mean(signal ** 2) / 10 ** (snr_db / 10) / np.mean(noise ** 2))
    return _audio(clip, signal + noise), {}


def _mp3_rate(sample_rate: int, bit_rate: int) -> int:
    """The highest MPEG audio rate <= `sample_rate` that allows `bit_rate` (the lowest that does, if none)."""
    allowed = sorted(sr for rates, low, high in MP3_VERSIONS if low <= bit_rate <= high for sr in rates)
    below = [sr for sr in allowed if sr <= sample_rate]
    return below[-1] if below else allowed[0]


def _reencode(audio: np.ndarray, sample_rate: int, codec: str, container: str, bit_rate: int) -> np.ndarray:
    """Encode mono audio in memory and decode it back (float32, the same rate, cut or padded to its length)."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=sample_rate, layout="mono")
        stream.bit_rate = bit_rate
        mux_mono_audio(out, stream, np.asarray(audio, np.float32), sample_rate)
    buf.seek(0)
    parts: list[np.ndarray] = []
    with av.open(buf, mode="r") as c:
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=sample_rate)
        for decoded in c.decode(c.streams.audio[0]):
            parts.extend(f.to_ndarray()[0] for f in resampler.resample(decoded))
        parts.extend(f.to_ndarray()[0] for f in resampler.resample(None))
    back = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    if back.size < audio.size:
        back = np.pad(back, (0, audio.size - back.size))
    return back[:audio.size].astype(np.float32)


def _codec(clip: Clip, bit_rate: int, codec: str, container: str, rate: int) -> tuple[Clip, dict]:
    audio = resample_audio(np.clip(clip.audio, -1, 1), clip.sample_rate, rate)
    back = resample_audio(_reencode(audio, rate, codec, container, int(bit_rate)), rate, clip.sample_rate)
    back = np.pad(back, (0, max(0, clip.audio.size - back.size)))[:clip.audio.size]
    return _audio(clip, back), {"encode_sample_rate": int(rate)}


def _mp3(clip: Clip, bit_rate: int, rng: np.random.Generator) -> tuple[Clip, dict]:
    _require_audio(clip, "mp3")
    return _codec(clip, bit_rate, "libmp3lame", "mp3", _mp3_rate(clip.sample_rate, bit_rate))


def _aac(clip: Clip, bit_rate: int, rng: np.random.Generator) -> tuple[Clip, dict]:
    _require_audio(clip, "aac")
    rate = clip.sample_rate if clip.sample_rate in AAC_SAMPLE_RATES else 48000
    return _codec(clip, bit_rate, "aac", "mp4", rate)


def _resample(clip: Clip, rate: int, rng: np.random.Generator) -> tuple[Clip, dict]:
    _require_audio(clip, "resample")
    if clip.sample_rate <= rate:
        return _audio(clip, clip.audio), {"resampled": False}
    down = resample_audio(clip.audio, clip.sample_rate, rate)
    back = resample_audio(down, rate, clip.sample_rate)
    back = np.pad(back, (0, max(0, clip.audio.size - back.size)))[:clip.audio.size]
    return _audio(clip, back), {"resampled": True}


def _audio_offset(clip: Clip, frames: int, rng: np.random.Generator) -> tuple[Clip, dict]:
    _require_audio(clip, "audio_offset")
    shift = min(clip.audio.size, round(frames * clip.sample_rate / clip.fps))
    delayed = np.concatenate([np.zeros(shift, np.float32), clip.audio[:clip.audio.size - shift]])
    return _audio(clip, delayed), {"offset_frames": int(frames), "offset_samples": int(shift),
                                   "offset_s": shift / clip.sample_rate}


# ---------------------------------------------------------------------------------------------- registry

PERTURBATIONS: Mapping[str, Perturbation] = MappingProxyType({p.name: p for p in (
    Perturbation("saturation", "video", (0.4, 0.3, 0.2, 0.1, 0.0), "YCbCr chroma scale", _saturation),
    Perturbation("contrast", "video", (0.85, 0.725, 0.6, 0.475, 0.35), "pixel scale", _contrast),
    Perturbation("blockwise", "video", (16, 32, 48, 64, 80), "8x8 grey blocks per 256 px of the short side",
                 _blockwise),
    Perturbation("noise", "video", (0.001, 0.002, 0.005, 0.01, 0.05), "Gaussian variance, YCbCr on [0, 1]",
                 _noise),
    Perturbation("blur", "video", (7, 9, 13, 17, 21), "Gaussian kernel px (sigma = k/6)", _blur),
    Perturbation("resize", "video", (2, 3, 4, 5, 6), "down/up-scaling factor", _resize),
    Perturbation("jpeg", "video", (90, 70, 50, 30, 10), "JPEG quality", _jpeg),
    Perturbation("h264", "video", (30, 32, 35, 38, 40), "x264 CRF", _h264),
    Perturbation("framedrop", "video", (0.05, 0.1, 0.2, 0.3, 0.5), "fraction of frames dropped", _framedrop),
    Perturbation("audio_noise", "audio", (30, 20, 10, 5, 0), "SNR dB (white noise)", _audio_noise),
    Perturbation("mp3", "audio", (128000, 64000, 32000, 16000, 8000), "bit/s", _mp3),
    Perturbation("aac", "audio", (128000, 64000, 32000, 16000, 8000), "bit/s", _aac),
    Perturbation("resample", "audio", (12000, 10000, 8000, 6000, 4000), "Hz (down, then back)", _resample),
    Perturbation("audio_offset", "audio", (1, 2, 3, 5, 8), "video frames (audio delayed)", _audio_offset),
)})

_USAGE = (f"valid names: {', '.join(PERTURBATIONS)}; levels {LEVELS[0]}-{LEVELS[-1]}; "
          "write NAME:LEVEL[,NAME:LEVEL...], e.g. blur:3,h264:5")


def _check(name: Any, level: Any) -> tuple[Perturbation, int]:
    if not isinstance(name, str) or name not in PERTURBATIONS:
        raise ConfigError(f"unknown perturbation {name!r}; {_USAGE}")
    if isinstance(level, bool) or not isinstance(level, int | np.integer) or int(level) not in LEVELS:
        raise ConfigError(f"perturbation level of {name} must be a whole number {LEVELS[0]}-{LEVELS[-1]}, "
                          f"got {level!r}; {_USAGE}")
    return PERTURBATIONS[name], int(level)


def perturbation_value(name: str, level: int) -> Any:
    """The parameter of `name` at `level` (1..5), e.g. ``perturbation_value("h264", 5) == 40``."""
    perturbation, level = _check(name, level)
    return perturbation.value(level)


def parse_perturbations(text: str | Iterable[str]) -> list[tuple[str, int]]:
    """``"blur:3,h264:5"`` (or several such strings) -> ``[("blur", 3), ("h264", 5)]``, in order; ConfigError
    with the valid names and levels for anything else."""
    items = [text] if isinstance(text, str) else list(text)
    parsed: list[tuple[str, int]] = []
    for item in (part.strip() for chunk in items for part in str(chunk).split(",")):
        name, sep, level = item.partition(":")
        name, level = name.strip().lower(), level.strip()
        if not item or not sep or not level:
            raise ConfigError(f"bad perturbation {item!r}: {_USAGE}")
        if not level.isdigit():
            raise ConfigError(f"perturbation level must be a whole number 1-5, got {item!r}; {_USAGE}")
        _check(name, int(level))
        parsed.append((name, int(level)))
    if not parsed:
        raise ConfigError(f"no perturbation given; {_USAGE}")
    return parsed


# ---------------------------------------------------------------------------------------------- apply

def _rng(name: str, seed: int) -> np.random.Generator:
    # Seeded by the seed and the name, not the level: levels differ in strength, not in their random draws.
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(name.encode())]))


def apply_to_clip(clip: Clip, name: str, level: int, *, seed: int = 0) -> tuple[Clip, dict[str, Any]]:
    """The perturbed clip and what was done: ``{"perturbation", "level", "value", "perturbation_seed", ...}``."""
    perturbation, level = _check(name, level)
    seed = check_seed(seed)
    value = perturbation.value(level)
    if clip.n_frames < 1:
        raise MediaError("the clip has no frames to perturb; give a video clip")
    out, facts = perturbation.transform(clip, value, _rng(perturbation.name, seed))
    return out, {"perturbation": perturbation.name, "level": level, "value": value, "perturbation_seed": seed,
                 **facts}


@overload
def apply(sample: Sample, name: str, level: int, *, seed: int = 0) -> Sample: ...
@overload
def apply(sample: Clip, name: str, level: int, *, seed: int = 0) -> Clip: ...


def apply(sample: Sample | Clip, name: str, level: int, *, seed: int = 0) -> Sample | Clip:
    """Perturb a Sample (a new Sample of the perturbed clip in memory, its ``meta`` recording the perturbation)
    or a Clip (a new Clip). The input is never modified; the same seed gives the same output."""
    if isinstance(sample, Clip):
        return apply_to_clip(sample, name, level, seed=seed)[0]
    clip, facts = apply_to_clip(sample.clip, name, level, seed=seed)
    chain = list(sample.meta.get("perturbations", [])) + [
        {"perturbation": facts["perturbation"], "level": facts["level"], "value": facts["value"]}]
    meta = {**sample.meta, **facts, "perturbations": chain}
    meta.setdefault("perturbed_from", sample.name)
    # Audio perturbations keep every frame, so a face track already known stays right; otherwise the perturbed
    # clip is analysed on first use (faces.analyze, cached by its content hash).
    track = sample.track if PERTURBATIONS[facts["perturbation"]].modality == "audio" and sample.has_track \
        else None
    return Sample.from_clip(clip, clip_id=sample.clip_id, track=track, label=sample.label,
                            identity=sample.identity, split=sample.split, meta=meta, options=sample.options)
