"""Clips and media I/O through PyAV: decoding, constant-frame-rate conversion, resampling, writing mp4.

A `Clip` is a value: frames (T, H, W, 3) uint8 RGB at a constant `fps`, plus mono float32 audio in
[-1, 1] at `sample_rate`. Functions take clips and return new ones.

Truncated media: whatever decodes before the damage is returned, a warning is issued and
``clip.truncated`` is set. A file with nothing decodable (including an mp4 cut before its index
was written) is a `MediaError`.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import math
import os
import sys
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soxr
from av.video.reformatter import VideoReformatter

from fakebench.errors import AudioError, InputFileError, MediaError
from fakebench.io import atomic_write

IMAGE_FORMATS = {"image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "webp_pipe", "tiff_pipe", "ppm_pipe",
                 "pgm_pipe", "pam_pipe", "gif_pipe", "qoi_pipe", "j2k_pipe", "dpx_pipe"}
AAC_SAMPLE_RATES = (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
SILENCE_RMS_DBFS = -60.0
# The one list of each, used wherever a folder is searched for clips or images (lower-case; compare with
# ``path.suffix.lower()``). IMAGE_EXTENSIONS is pytorch-fid's list (its IMAGE_EXTENSIONS), with the dot.
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".mpg", ".mpeg")
IMAGE_EXTENSIONS = (".bmp", ".jpg", ".jpeg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp")
DECODER_THREADS_ENV = "FAKEBENCH_DECODER_THREADS"
# x264 output depends on its thread count, so the count is fixed, never taken from the machine: a clip's
# bytes (and the sha256 in a corpus manifest) are the same whatever the machine, executor or worker count.
# A single clip is written with 2 threads (lower latency); corpus builds write with 1 per worker process:
# their parallelism is across clips, and one x264 thread costs ~10% less CPU per clip than two.
ENCODER_THREADS = 2
# x264's AVX-512 macroblock-tree kernel reads past the end of a macroblock row when the width is not a
# multiple of 128 px, so its output then depends on leftover heap contents (two encodes of the same frames,
# two files). Every other SIMD path x264 detects is kept; AVX-512 is left out (no measurable speed cost).
X264_UNSTABLE_CPU_FLAGS = ("AVX512",)


class TruncatedMediaWarning(UserWarning):
    """Decoding stopped early because the file is damaged; the decodable part was kept."""


@dataclass(frozen=True, eq=False)
class Clip:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    fps: float
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (N,) float32 mono
    sample_rate: int = 16000
    has_audio_track: bool = True
    truncated: bool = False

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 (T, H, W, 3), got {self.frames.dtype} "
                             f"{self.frames.shape}")
        if self.audio.ndim != 1 or self.audio.dtype != np.float32:
            raise ValueError(f"audio must be float32 (N,), got {self.audio.dtype} {self.audio.shape}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps

    @property
    def has_audio(self) -> bool:
        return self.audio.size > 0

    @property
    def audio_duration_s(self) -> float:
        return self.audio.size / self.sample_rate if self.sample_rate else 0.0

    def content_hash(self) -> str:
        """SHA-256 of the decoded content (frames, fps, audio), for clips that exist only in memory."""
        h = hashlib.sha256()
        h.update(f"{self.frames.shape}|{self.fps:.6f}|{self.sample_rate}".encode())
        h.update(np.ascontiguousarray(self.frames).data)
        h.update(np.ascontiguousarray(self.audio).data)
        return h.hexdigest()

    def cut_frames(self, start: int, stop: int) -> Clip:
        """Frames [start, stop) and the audio under them."""
        a, b = (int(round(i * self.sample_rate / self.fps)) for i in (start, stop))
        return replace(self, frames=self.frames[start:stop], audio=self.audio[a:b] if self.audio.size else self.audio)

    def with_audio(self, audio: np.ndarray, sample_rate: int) -> Clip:
        return replace(self, audio=np.asarray(audio, np.float32).reshape(-1), sample_rate=int(sample_rate),
                       has_audio_track=True)


@dataclass(frozen=True)
class MediaInfo:
    """What a container says about itself, without decoding the streams."""

    path: Path
    has_video: bool
    has_audio: bool
    width: int
    height: int
    fps: float
    n_frames_estimate: int
    duration_s: float
    sample_rate: int
    audio_channels: int
    is_image: bool


# ---------------------------------------------------------------------------------------------- paths

def check_input_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{p}: no such file; check the path")
    if p.is_dir():
        raise InputFileError(f"{p} is a folder; give a media file")
    if p.stat().st_size == 0:
        raise InputFileError(f"{p} is empty (0 bytes); the file was not written completely, re-create it")
    return p


def check_output_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise InputFileError(f"cannot write {p}: it is a folder; give a file name")
    if parent.exists() and not parent.is_dir():
        raise InputFileError(f"cannot write {p}: {parent} is a file, not a folder; "
                             "choose another output path")
    if not parent.exists():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputFileError(f"cannot create folder {parent} for {p.name} ({e.strerror}); "
                                 "choose a writable output path") from e
    if not os.access(parent, os.W_OK):
        raise InputFileError(f"cannot write {p}: folder {parent} is not writable; choose another output path")
    return p


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise MediaError(f"{path} is not readable media ({_reason(e)}); it may be corrupt, truncated before "
                         "its index was written, or not a video/audio file") from e


def _reason(e: Exception) -> str:
    """FFmpeg's own words ("Invalid data found when processing input"), without errno numbers or the path."""
    text = getattr(e, "strerror", None) if isinstance(e, av.error.FFmpegError) else None
    return " ".join(str(text or e).split())[:160]


def probe(path: str | os.PathLike) -> MediaInfo:
    p = check_input_file(path)
    with _open(p) as c:
        return _info_of(p, c)


def _info_of(p: Path, c: av.container.InputContainer) -> MediaInfo:
    """What an open container says about itself (nothing is decoded)."""
    vs = c.streams.video[0] if c.streams.video else None
    aus = c.streams.audio[0] if c.streams.audio else None
    is_image = c.format.name in IMAGE_FORMATS or (vs is not None and vs.codec_context.name in
                                                   {"png", "mjpeg", "bmp", "webp", "tiff"}
                                                   and (vs.frames or 0) <= 1 and c.duration is None)
    fps = _stream_fps(vs) if vs is not None else 0.0
    duration = float(c.duration / av.time_base) if c.duration else 0.0
    if vs is not None and vs.duration and vs.time_base:
        duration = float(vs.duration * vs.time_base)
    n_est = int(vs.frames) if vs is not None and vs.frames else int(round(duration * fps))
    return MediaInfo(
        path=p, has_video=vs is not None, has_audio=aus is not None,
        width=vs.codec_context.width if vs is not None else 0,
        height=vs.codec_context.height if vs is not None else 0,
        fps=fps, n_frames_estimate=n_est, duration_s=duration,
        sample_rate=aus.codec_context.sample_rate if aus is not None else 0,
        audio_channels=aus.codec_context.channels if aus is not None else 0,
        is_image=is_image,
    )


def _stream_fps(vs: av.video.stream.VideoStream) -> float:
    for rate in (vs.average_rate, vs.guessed_rate, vs.base_rate):
        if rate and 0 < float(rate) < 1000:
            return float(rate)
    return 25.0


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------- video

def scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) shrunk so the longer side is at most max_side; never enlarged; kept even-free."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    s = max_side / max(width, height)
    return max(1, round(width * s)), max(1, round(height * s))


def _require_video(p: Path, c: av.container.InputContainer) -> av.video.stream.VideoStream:
    if c.format.name in IMAGE_FORMATS:
        raise MediaError(f"{p} is a still image, not a video; pass it where a photo is expected "
                         "(e.g. `fakebench generate --image`)")
    if not c.streams.video:
        if c.streams.audio:
            raise MediaError(f"{p} is an audio file with no video stream; "
                             "pass a video clip (mp4, avi, mov, mkv)")
        raise MediaError(f"{p} has no video stream (no readable stream at all); it may be truncated or "
                         "corrupt, or not a video; pass a video clip (mp4, avi, mov, mkv)")
    return c.streams.video[0]


@functools.cache
def limit_heap_fragmentation() -> None:
    """Keep big frame buffers out of glibc's heap so long videos run in bounded memory.

    Decoding allocates and frees frame-sized buffers by the thousand, from several threads. glibc
    raises its mmap threshold adaptively after such frees, moving later buffers onto the heap, where
    they fragment: a 10-minute 720p analysis grew by about 1 MB per frame. A fixed 1 MiB threshold
    (mallopt M_MMAP_THRESHOLD) keeps them mmapped and returned to the system when freed.
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").mallopt(-3, 1 << 20)  # -3 = M_MMAP_THRESHOLD
        except (OSError, AttributeError):
            pass  # not glibc: nothing to tune


def decoder_threads() -> int:
    """Threads per video decoder: ``$FAKEBENCH_DECODER_THREADS``, else 0 (FFmpeg's choice: every core).

    Pool and Ray workers, which run clips in parallel, set one (`fakebench.execution.WORKER_THREADS`), as
    they do for torch: decoder threads on top of parallel workers only contend for the same cores. The
    decoded frames are the same for any count.
    """
    value = os.environ.get(DECODER_THREADS_ENV, "0")
    try:
        return max(0, int(value))
    except ValueError:
        raise MediaError(f"${DECODER_THREADS_ENV}={value!r} is not a whole number; set it to 0 (automatic) or "
                         "a thread count") from None


def iter_frames(path: str | os.PathLike, *, chunk_frames: int = 64, max_side: int | None = None,
                start_s: float = 0.0, duration_s: float | None = None,
                fps_out: list | None = None, truncated_out: list | None = None) -> Iterator[np.ndarray]:
    """Decode a video in chunks of at most `chunk_frames` RGB frames, at a constant frame rate.

    Variable-rate input is resampled to its average rate, as ffmpeg's fps filter does: each decoded
    frame goes to the output slot nearest its timestamp; when several frames land in one slot the
    latest wins (it is the one on screen at the slot's time), and empty slots repeat the frame before
    them. Memory is bounded by one chunk. The frame rate used is appended to `fps_out` and whether
    decoding stopped at damage to `truncated_out`, when given.
    """
    p = check_input_file(path)
    limit_heap_fragmentation()
    with _open(p) as c:
        yield from _frames_of(p, c, chunk_frames=chunk_frames, max_side=max_side, start_s=start_s,
                              duration_s=duration_s, fps_out=fps_out, truncated_out=truncated_out)


def _frames_of(p: Path, c: av.container.InputContainer, *, chunk_frames: int, max_side: int | None,
               start_s: float, duration_s: float | None, fps_out: list | None,
               truncated_out: list | None) -> Iterator[np.ndarray]:
    """`iter_frames` on a container that is already open."""
    vs = _require_video(p, c)
    vs.thread_type = "AUTO"
    vs.codec_context.thread_count = decoder_threads()
    fps = _stream_fps(vs)
    if fps_out is not None:
        fps_out.append(fps)
    tb = float(vs.time_base) if vs.time_base else 1.0 / fps
    first_pts = vs.start_time if vs.start_time is not None else None
    seek_target = int(start_s / tb) + (first_pts or 0) if start_s > 0 else None
    end_s = start_s + duration_s if duration_s is not None else math.inf
    size: tuple[int, int] | None = None
    chunk: list[np.ndarray] = []
    pending: av.VideoFrame | None = None  # latest frame for slot `pending_slot`, not yet output
    pending_slot = -1
    truncated = False
    decoded = 0

    # One converter per stream, reused (a frame's own converter is set up anew, threads and all, per frame).
    convert, scale, threads = VideoReformatter(), VideoReformatter(), decoder_threads()

    def to_rgb(frame: av.VideoFrame) -> np.ndarray:
        nonlocal size
        if size is None:
            size = scaled_size(frame.width, frame.height, max_side)
        rgb = convert.reformat(frame, format="rgb24", threads=threads)
        if size != (frame.width, frame.height):
            # convert, then scale: swscale's one-pass scale+convert darkens every level by ~2 (255 -> 253)
            rgb = scale.reformat(rgb, width=size[0], height=size[1], interpolation="AREA", threads=threads)
        return rgb.to_ndarray()

    damage: list[Exception] = []
    decoder = _decode_until_damage(p, c, vs, seek_target, damage)
    for frame in decoder:
        decoded += 1
        if frame.pts is None:
            slot = pending_slot + 1
            if start_s + slot / fps >= end_s - 1e-9:
                break
        else:
            t = (frame.pts - (first_pts or 0)) * tb
            if t < start_s - 0.5 / fps:
                continue
            if t >= end_s - 1e-9:
                break
            slot = int(round((t - start_s) * fps))
        if pending is not None and slot <= pending_slot:
            if slot == pending_slot:  # a later frame in the same slot replaces the earlier one
                pending = frame
            continue  # (a timestamp going backwards: dropped)
        if pending is not None:
            rgb = to_rgb(pending)
            for _ in range(slot - pending_slot):  # the slot itself, then any gap after it
                chunk.append(rgb)
                if len(chunk) >= chunk_frames:
                    yield np.stack(chunk)
                    chunk = []
        pending, pending_slot = frame, slot
    decoder.close()
    if damage:
        truncated = True
        warnings.warn(f"{p}: decoding stopped after {decoded} frames ({_reason(damage[0])}); "
                      "kept the decodable part", TruncatedMediaWarning, stacklevel=2)
    promised = _promised_frames(vs, fps)
    if not truncated and promised and decoded and decoded < promised and start_s == 0 and duration_s is None:
        truncated = True
        warnings.warn(f"{p}: only {decoded} of {promised} frames could be decoded; the file looks "
                      "truncated; kept the decodable part", TruncatedMediaWarning, stacklevel=2)
    if truncated_out is not None:
        truncated_out.append(truncated)
    if pending is not None:
        chunk.append(to_rgb(pending))
    if chunk:
        yield np.stack(chunk)
    if decoded == 0:
        raise MediaError(f"{p} has a video stream but no frame could be decoded; the file is corrupt "
                         "or truncated; re-encode or re-download it")


def _promised_frames(vs: av.video.stream.VideoStream, fps: float) -> int:
    """How many frames the container says the stream presents (0: it does not say).

    The sample index (``vs.frames``) counts every stored frame; an edit list can present fewer (a clip cut
    without re-encoding keeps its samples but shortens the duration), so the smaller of the two counts.
    """
    by_duration = float(vs.duration * vs.time_base * fps) if vs.duration and vs.time_base else 0.0
    if vs.frames and (not by_duration or by_duration >= vs.frames - 1):
        return int(vs.frames)
    return int(math.floor(by_duration + 1e-6))


def _decode_until_damage(p: Path, c: av.container.InputContainer, vs: av.video.stream.VideoStream,
                         seek_target: int | None, damage: list[Exception]) -> Iterator[av.VideoFrame]:
    """The frames of `vs` (after seeking to `seek_target`, when given) up to any damage.

    At damage (a demuxing or decoding error, appended to `damage`) the frames the decoder already
    holds (B-frame and threading delay: several frames) must still come out. A frame-threaded decoder
    can lose them, raising or silently (seen with H.264 cut mid-packet), so when decoding stopped at
    an error or well short of the container's frame count, the stream is decoded again without
    threads, the frames already returned are skipped, and that decoder is drained after the damage.
    """
    if seek_target is not None:
        c.seek(seek_target, stream=vs, backward=True, any_frame=False)
    returned = 0
    try:
        for packet in c.demux(vs):
            for frame in packet.decode():
                returned += 1
                yield frame
    except (av.error.FFmpegError, ValueError) as e:
        damage.append(e)
    short = seek_target is None and bool(vs.frames) and returned < 0.9 * vs.frames
    if not damage and not short:
        return
    with _open(p) as again:
        stream = again.streams.video[0]
        stream.thread_type = "NONE"
        if seek_target is not None:
            again.seek(seek_target, stream=stream, backward=True, any_frame=False)
        n = 0
        for decode in (lambda: (f for pk in again.demux(stream) for f in pk.decode()),
                       lambda: stream.codec_context.decode(None)):
            try:
                for frame in decode():
                    n += 1
                    if n > returned:
                        yield frame
            except (av.error.FFmpegError, ValueError):
                pass


def read_clip(path: str | os.PathLike, *, max_side: int | None = None, start_s: float = 0.0,
              duration_s: float | None = None, sample_rate: int | None = None,
              min_frames: int = 2) -> Clip:
    """Read a whole clip: constant-rate RGB frames and mono float32 audio (at `sample_rate` if given).

    A clip without an audio track is valid: its audio is empty and ``has_audio_track`` is False.
    """
    fps_out: list[float] = []
    trunc_out: list[bool] = []
    p = check_input_file(path)
    limit_heap_fragmentation()
    with _open(p) as c:  # one open for the video, the audio and the container facts
        info = _info_of(p, c)
        chunks = list(_frames_of(p, c, max_side=max_side, start_s=start_s, duration_s=duration_s,
                                 fps_out=fps_out, truncated_out=trunc_out, chunk_frames=256))
        frames = np.concatenate(chunks) if chunks else np.zeros((0, 1, 1, 3), np.uint8)
        if len(frames) < min_frames:
            raise MediaError(f"{path} has only {len(frames)} frame(s); a video clip needs at least {min_frames}. "
                             "If it is a still photo, pass it as an image")
        if info.has_audio:
            end = None if duration_s is None else start_s + duration_s
            audio, sr = _audio_of(p, c, sr=sample_rate, start_s=start_s, end_s=end) if _rewind(c) else \
                read_audio(path, sr=sample_rate, start_s=start_s, end_s=end)
        else:
            audio, sr = np.zeros(0, np.float32), int(sample_rate or 16000)
    return Clip(frames=frames, fps=fps_out[0], audio=audio, sample_rate=sr, has_audio_track=info.has_audio,
                truncated=any(trunc_out))


def _rewind(c: av.container.InputContainer) -> bool:
    """Seek an open container back to its start (for a second pass over another stream); False if it cannot."""
    try:
        c.seek(0)
    except (av.error.FFmpegError, ValueError, OSError):
        return False
    return True


# ---------------------------------------------------------------------------------------------- audio

def read_audio(path: str | os.PathLike, sr: int | None = None, *, start_s: float = 0.0,
               end_s: float | None = None) -> tuple[np.ndarray, int]:
    """Mono float32 audio of an audio file (wav, flac, mp3, m4a, ogg…) or of a video's audio track.

    Channels are averaged; with `sr` the signal is resampled with soxr (high quality).
    """
    p = check_input_file(path)
    with _open(p) as c:
        return _audio_of(p, c, sr=sr, start_s=start_s, end_s=end_s)


def _audio_of(p: Path, c: av.container.InputContainer, *, sr: int | None, start_s: float,
              end_s: float | None) -> tuple[np.ndarray, int]:
    """`read_audio` on a container that is already open (demuxing from wherever it stands)."""
    if not c.streams.audio:
        raise AudioError(f"{p} has no audio track; give a file with sound (wav, flac, mp3, m4a or a "
                         "video with audio)")
    stream = c.streams.audio[0]
    native = stream.codec_context.sample_rate
    declared = (int(stream.duration * stream.time_base * native)
                if stream.duration and stream.time_base else 0)
    resampler = av.AudioResampler(format="fltp", layout=stream.layout, rate=native)
    parts: list[np.ndarray] = []
    try:
        for frame in c.decode(stream):
            for f in resampler.resample(frame):
                parts.append(f.to_ndarray().mean(axis=0))
    except (av.error.FFmpegError, ValueError) as e:
        warnings.warn(f"{p}: audio decoding stopped ({_reason(e)}); kept the decodable part",
                      TruncatedMediaWarning, stacklevel=2)
    for f in resampler.resample(None):
        parts.append(f.to_ndarray().mean(axis=0))
    audio = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    if declared and audio.size > declared:  # drop the encoder's padding after the last real sample
        audio = audio[:declared]
    if start_s > 0 or end_s is not None:
        a = int(round(start_s * native))
        b = None if end_s is None else int(round(end_s * native))
        audio = audio[a:b]
    if sr and sr != native:
        audio = resample_audio(audio, native, sr)
        native = sr
    return np.clip(audio, -1.0, 1.0).astype(np.float32), int(native)


def resample_audio(audio: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    if sr_from == sr_to or audio.size == 0:
        return np.asarray(audio, np.float32)
    return soxr.resample(np.asarray(audio, np.float32), sr_from, sr_to, quality="HQ").astype(np.float32)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average the channels of (N, C) or (C, N) audio (the smaller axis is taken to be channels)."""
    a = np.asarray(audio, np.float32)
    if a.ndim == 1:
        return a
    if a.ndim != 2:
        raise AudioError(f"audio must be 1-D or 2-D (samples x channels), got shape {a.shape}")
    return a.mean(axis=int(np.argmin(a.shape))).astype(np.float32)


def rms_dbfs(audio: np.ndarray) -> float:
    if audio.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    return 20 * math.log10(rms) if rms > 0 else -math.inf


def check_speech_audio(audio: np.ndarray, sample_rate: int, *, fps: float = 25.0,
                       what: str = "audio") -> None:
    """Raise AudioError unless the audio is at least one video frame long and not silent."""
    if audio.size < sample_rate / fps:
        raise AudioError(f"{what} is {audio.size / sample_rate * 1000:.0f} ms long, shorter than one video "
                         f"frame at {fps:g} fps; give at least {1000 / fps:.0f} ms of speech")
    level = rms_dbfs(audio)
    if level < SILENCE_RMS_DBFS:
        raise AudioError(f"{what} is silent (RMS {level:.0f} dBFS); give audio with speech or singing")


# ---------------------------------------------------------------------------------------------- images

def read_image(path: str | os.PathLike) -> np.ndarray:
    """An RGB uint8 (H, W, 3) photo; EXIF rotation applied, grey and RGBA converted (alpha on white)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = check_input_file(path)
    try:
        with Image.open(p) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, rgba)
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except UnidentifiedImageError:
        pass
    except OSError as e:
        raise MediaError(f"{p} is a damaged image ({_reason(e)}); re-save or re-download it") from e
    try:
        info = probe(p)
    except MediaError:
        info = None
    if info is not None and info.has_video and not info.is_image:
        raise MediaError(f"{p} is a video, not a photo; pass a still image (png, jpg), or extract a frame")
    raise MediaError(f"{p} is not a readable image; give a png, jpg, bmp or webp photo")


def ensure_rgb(image: np.ndarray) -> np.ndarray:
    """Grey (H, W) or (H, W, 1), RGB and RGBA arrays of any integer or [0, 1] float type -> RGB uint8."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[-1] not in (1, 3, 4):
        raise MediaError(f"an image must be (H, W), (H, W, 3) or (H, W, 4); got shape {a.shape}")
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating):
            a = np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)
        else:
            a = np.clip(a, 0, 255).astype(np.uint8)
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    elif a.shape[-1] == 4:
        alpha = a[..., 3:4].astype(np.float32) / 255.0
        a = (a[..., :3] * alpha + 255.0 * (1 - alpha) + 0.5).astype(np.uint8)
    return np.ascontiguousarray(a)


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    from PIL import Image

    p = check_output_path(path)
    atomic_write(p, lambda f: Image.fromarray(ensure_rgb(image)).save(f, format=_pil_format(p)))
    return p


def _pil_format(p: Path) -> str:
    return {".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".webp": "WEBP"}.get(p.suffix.lower(), "PNG")


# ---------------------------------------------------------------------------------------------- writing

def write_clip(path: str | os.PathLike, clip: Clip, *, crf: int = 18, preset: str = "medium",
               encoder_threads: int = ENCODER_THREADS, bitrate: int | None = None) -> Path:
    """Write an mp4 that browsers play: H.264 yuv420p (+faststart) with AAC audio when the clip has audio.

    Quality-constant (``crf``) by default. With ``bitrate`` (bits/s) the video is constant-bitrate with filler
    data instead (x264 nal-hrd=cbr), so the file size says nothing about the content: corpora encode every
    clip this way (`corpus_bitrate`), or a still fake would be told from a real clip by its size alone.

    yuv420p needs even sizes: an odd width or height is padded by repeating the last column or row.
    Sample rates AAC cannot carry are resampled to 48 kHz. The file appears only once complete. The same
    clip, options and `encoder_threads` give the same bytes on any machine.
    """
    p = check_output_path(path)
    atomic_write(p, lambda tmp: _encode_mp4(str(tmp), clip, crf=crf, preset=preset, threads=encoder_threads,
                                            bitrate=bitrate), mode=None)
    return p


def write_frames(path: str | os.PathLike, chunks: Iterable[np.ndarray], *, fps: float,
                 audio: np.ndarray | None = None, sample_rate: int = 16000, crf: int = 18, preset: str = "medium",
                 encoder_threads: int = ENCODER_THREADS, bitrate: int | None = None) -> Path:
    """`write_clip` for frames that come in chunks: uint8 (t, H, W, 3) arrays of one size, each encoded as it
    comes, so only one chunk is held at a time; mono float32 `audio` is muxed after the last frame. The same
    frames, audio and options give the same bytes as `write_clip` of the whole clip. The file appears only once
    complete: an error or an interrupt (also one raised by the iterator) leaves nothing at `path`."""
    p = check_output_path(path)
    limit_heap_fragmentation()  # frame-sized buffers by the thousand, as in decoding
    sound = None if audio is None else np.asarray(audio, np.float32).reshape(-1)
    atomic_write(p, lambda tmp: _encode_chunks(str(tmp), chunks, float(fps), sound, int(sample_rate), crf=crf,
                                               preset=preset, threads=encoder_threads, bitrate=bitrate), mode=None)
    return p


CORPUS_BITS_PER_PIXEL = 0.3  # per frame: 256x256 at 25 fps -> 492 kb/s, 1280x720 -> 6.9 Mb/s


def corpus_bitrate(width: int, height: int, fps: float) -> int:
    """The constant video bitrate (bits/s) of a corpus clip of this size and frame rate."""
    return int(round(CORPUS_BITS_PER_PIXEL * width * height * fps / 1000)) * 1000


@functools.cache
def x264_cpu_flags() -> tuple[str, ...]:
    """The SIMD capabilities x264 detects on this CPU, as x264 names them ("SSE2Fast", "AVX2", ...).

    Read from the line x264 logs when an encoder opens ("using cpu capabilities: ..."); empty when it
    does not say (then x264 is left to its own detection)."""
    import av.logging

    level = av.logging.get_level()
    av.logging.set_level(av.logging.INFO)
    try:
        with av.logging.Capture(local=False) as logs:
            frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
            ctx = av.CodecContext.create("libx264", "w")
            ctx.width = ctx.height = 16
            ctx.pix_fmt = "yuv420p"
            ctx.time_base = Fraction(1, 25)
            ctx.encode(frame)
            ctx.encode(None)
    finally:
        av.logging.set_level(level)
    for _, _, message in logs:
        if "using cpu capabilities:" in message:
            return tuple(message.split(":", 1)[1].split())
    return ()


def x264_stable_options() -> dict[str, str]:
    """x264 settings whose output does not depend on heap contents: its detected SIMD paths less AVX-512."""
    flags = x264_cpu_flags()
    kept = [f for f in flags if not any(bad in f for bad in X264_UNSTABLE_CPU_FLAGS)]
    if not flags or len(kept) == len(flags) or not kept:
        return {}
    return {"x264-params": "asm=" + ",".join(kept)}


# H.264 levels (ITU-T H.264 Table A-1): (level_idc, max macroblocks/s, max frame size in macroblocks, max
# decoded picture buffer in macroblocks). Browsers and phones play High profile up to 4.1 or 4.2 (1080p
# at 30 or 60 fps); a 4000x3000 photo at its own size needs 6.0, which most do not decode.
H264_LEVELS = (
    (10, 1485, 99, 396), (11, 3000, 396, 900), (12, 6000, 396, 2376), (13, 11880, 396, 2376),
    (20, 11880, 396, 2376), (21, 19800, 792, 4752), (22, 20250, 1620, 8100), (30, 40500, 1620, 8100),
    (31, 108000, 3600, 18000), (32, 216000, 5120, 20480), (40, 245760, 8192, 32768), (41, 245760, 8192, 32768),
    (42, 522240, 8704, 34816), (50, 589824, 22080, 110400), (51, 983040, 36864, 184320),
    (52, 2073600, 36864, 184320), (60, 4177920, 139264, 696320), (61, 8355840, 139264, 696320),
    (62, 16711680, 139264, 696320),
)
# Frames x264's presets keep in the decoded picture buffer: max(reference frames, 4 with B-pyramid).
X264_PRESET_DPB_FRAMES = {"ultrafast": 1, "superfast": 4, "veryfast": 4, "faster": 4, "fast": 4, "medium": 4,
                          "slow": 5, "slower": 8, "veryslow": 16, "placebo": 16}


def h264_level(width: int, height: int, fps: float, *, dpb_frames: int = 4) -> int | None:
    """The lowest H.264 level (level_idc: 31 = 3.1) whose limits hold a `width` x `height` stream at `fps`
    with `dpb_frames` frames buffered; None when even 6.2 is too small (x264 then picks one itself)."""
    mb_w, mb_h = -(-width // 16), -(-height // 16)
    mbs = mb_w * mb_h
    for idc, max_mbps, max_fs, max_dpb in H264_LEVELS:
        if (mbs <= max_fs and max(mb_w, mb_h) ** 2 <= 8 * max_fs and mbs * fps <= max_mbps
                and mbs * dpb_frames <= max_dpb):
            return idc
    return None


def x264_level_options(width: int, height: int, fps: float, preset: str = "medium") -> dict[str, str]:
    """High profile at the level the frame size and rate need (see `h264_level`): what x264 would choose
    itself, stated, so that a player knows up front whether it can decode the file."""
    level = h264_level(width, height, fps, dpb_frames=X264_PRESET_DPB_FRAMES.get(preset, 16))
    options = {"profile": "high"}
    if level is not None:
        options["level"] = f"{level // 10}.{level % 10}"
    return options


def _even_frames(frames: np.ndarray) -> np.ndarray:
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return frames


def _rate_options(crf: int, bitrate: int | None) -> dict[str, str]:
    if bitrate is None:
        return {"crf": str(crf)}
    kbps = f"{max(1, bitrate // 1000)}k"
    buffer = f"{max(1, bitrate // 5000)}k"  # 0.2 s: a small VBV buffer keeps short clips at the rate too
    return {"b": kbps, "maxrate": kbps, "bufsize": buffer, "x264-params": "nal-hrd=cbr:filler=1"}


def _encode_mp4(target: str, clip: Clip, *, crf: int, preset: str, threads: int, bitrate: int | None = None) -> None:
    _encode_chunks(target, [clip.frames], clip.fps, clip.audio if clip.has_audio else None, clip.sample_rate,
                   crf=crf, preset=preset, threads=threads, bitrate=bitrate)


def _encode_chunks(target: str, chunks: Iterable[np.ndarray], fps: float, audio: np.ndarray | None, sample_rate: int,
                   *, crf: int, preset: str, threads: int, bitrate: int | None = None) -> None:
    """Encode frame chunks (t, H, W, 3) uint8 as they come, then the audio. The streams are set up from the first
    chunk; every chunk must have its size."""
    it = iter(chunks)
    first = next(it, None)
    if first is None:
        raise ValueError("no frames to encode: give at least one chunk")
    size = first.shape[1:]
    first = _even_frames(first)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(target, mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height = first.shape[2], first.shape[1]
        vs.pix_fmt = "yuv420p"
        rate_options, stable = _rate_options(crf, bitrate), x264_stable_options()
        params = ":".join(o["x264-params"] for o in (rate_options, stable) if "x264-params" in o)
        vs.options = {**rate_options, "preset": preset, **x264_level_options(vs.width, vs.height, float(rate), preset),
                      **stable, **({"x264-params": params} if params else {})}
        # x264's rate control under a VBV (constant bitrate) depends on which frame threads finish first: with more
        # than one thread the same frames give different bytes from run to run. One thread keeps them identical.
        vs.codec_context.thread_count = 1 if bitrate is not None else threads
        vs.codec_context.time_base = 1 / rate
        aus = None
        sr = sample_rate
        if audio is not None and audio.size:
            if sr not in AAC_SAMPLE_RATES:
                audio, sr = resample_audio(audio, sr, 48000), 48000
            aus = out.add_stream("aac", rate=sr, layout="mono")
            aus.bit_rate = 128000
        i = 0
        chunk: np.ndarray | None = first
        while chunk is not None:
            for rgb in chunk:
                vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                vf.pts = i
                vf.time_base = vs.codec_context.time_base
                out.mux(vs.encode(vf))
                i += 1
            chunk = next(it, None)
            if chunk is not None:
                if chunk.ndim != 4 or chunk.shape[1:] != size or chunk.dtype != np.uint8:
                    raise ValueError(f"a chunk of {chunk.dtype} {chunk.shape} among {size} uint8 frames")
                chunk = _even_frames(chunk)
        out.mux(vs.encode(None))
        if aus is not None:
            if audio.dtype != np.float32 or audio.min(initial=0.0) < -1 or audio.max(initial=0.0) > 1:
                audio = np.clip(audio, -1, 1).astype(np.float32)  # (one copy less of a long song when in range)
            mux_mono_audio(out, aus, audio, sr)


def mux_mono_audio(out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, audio: np.ndarray,
                   sample_rate: int, block: int = 1024 * 16) -> None:
    """Encode mono float32 audio into ``stream`` of ``out`` in blocks, timestamped by sample, and flush it."""
    for start in range(0, audio.size, block):
        frame = av.AudioFrame.from_ndarray(audio[None, start:start + block], format="fltp", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = start
        frame.time_base = Fraction(1, sample_rate)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> Path:
    """Write mono audio: 16-bit PCM for .wav, FLAC for .flac (lossless either way)."""
    p = check_output_path(path)
    codec = {".wav": ("wav", "pcm_s16le", "s16"), ".flac": ("flac", "flac", "s16")}.get(p.suffix.lower())
    if codec is None:
        raise InputFileError(f"cannot write audio to {p.name}: use a .wav or .flac file name")
    fmt, codec_name, sample_fmt = codec

    def encode(tmp: str) -> None:
        pcm = (np.clip(np.asarray(audio, np.float32), -1, 1) * 32767).round().astype(np.int16)
        with av.open(tmp, mode="w", format=fmt) as out:
            stream = out.add_stream(codec_name, rate=int(sample_rate), layout="mono")
            for start in range(0, pcm.size, 8192):
                frame = av.AudioFrame.from_ndarray(pcm[None, start:start + 8192], format=sample_fmt,
                                                   layout="mono")
                frame.sample_rate = int(sample_rate)
                frame.pts = start
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))

    atomic_write(p, lambda tmp: encode(str(tmp)), mode=None)
    return p


# ---------------------------------------------------------------------------------------------- silence

SPEECH_FLOOR_DB = 40.0  # frames this far below the loudest 10 ms count as silence ...
SPEECH_SILENCE_DBFS = -55.0  # ... and anything under this level always does
TRIM_PAD_S = 0.12  # silence kept before the first and after the last speech


def speech_bounds(audio: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """(start, end) in seconds of the speech: from the first to the last 10 ms window within
    SPEECH_FLOOR_DB of the loudest one (and above SPEECH_SILENCE_DBFS)."""
    hop = max(1, sample_rate // 100)
    n = audio.size // hop
    if n == 0:
        raise AudioError("the audio is shorter than 10 ms")
    power = np.square(audio[: n * hop].astype(np.float64)).reshape(n, hop).mean(1)
    level = 10 * np.log10(power + 1e-12)
    loud = np.flatnonzero(level >= max(level.max() - SPEECH_FLOOR_DB, SPEECH_SILENCE_DBFS))
    if loud.size == 0:
        raise AudioError(f"the audio is silent (loudest 10 ms at {level.max():.0f} dBFS); a talking clip needs speech")
    return loud[0] * hop / sample_rate, (loud[-1] + 1) * hop / sample_rate


def speech_cut(audio: np.ndarray, sample_rate: int, fps: float, n_frames: int,
               pad_s: float = TRIM_PAD_S) -> tuple[int, int, int, int]:
    """Where to cut a clip to its speech plus `pad_s` each side, on whole video frames: (first frame, end
    frame, first sample, end sample)."""
    start_s, end_s = speech_bounds(audio, sample_rate)
    first = max(0, int(np.floor((start_s - pad_s) * fps)))
    last = min(n_frames, int(np.ceil((end_s + pad_s) * fps)))
    if last - first < 2:
        raise AudioError(f"only {last - first} frame(s) of the clip hold speech; a talking clip needs more")
    return first, last, int(round(first / fps * sample_rate)), int(round(last / fps * sample_rate))


def trim_silence(clip: Clip, pad_s: float = TRIM_PAD_S) -> tuple[Clip, list[float]]:
    """The clip cut to its speech plus `pad_s` each side, on whole video frames, audio and video together.

    Real clips and the audio that drives fakes are cut by this same rule (`speech_cut`), so both start and end
    with the same amount of silence. Returns the clip and [start, end] of the cut in seconds.
    """
    first, last, a, b = speech_cut(clip.audio, clip.sample_rate, clip.fps, clip.n_frames, pad_s)
    trimmed = Clip(frames=clip.frames[first:last], fps=clip.fps, audio=clip.audio[a:b],
                   sample_rate=clip.sample_rate)
    return trimmed, [round(first / clip.fps, 4), round(last / clip.fps, 4)]
