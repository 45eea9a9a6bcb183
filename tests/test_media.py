"""Tests for fakebench.media: reading and writing clips, audio and images through PyAV.

Every test makes its own small media in tmp_path (64x64 to 128x96 pixels, 1-2 s).
"""

from __future__ import annotations

import errno
import os
import warnings
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from fakebench.errors import AudioError, InputFileError, MediaError
from fakebench.media import (
    DECODER_THREADS_ENV,
    Clip,
    TruncatedMediaWarning,
    check_speech_audio,
    decoder_threads,
    iter_frames,
    probe,
    read_audio,
    read_clip,
    read_image,
    resample_audio,
    write_audio,
    write_clip,
    write_image,
)

FPS = 25.0
STEP = 5  # grey-level step between consecutive frames of `index_frames` clips


# ------------------------------------------------------------------------------------------- helpers

def smooth_frames(n: int, height: int = 64, width: int = 64) -> np.ndarray:
    """Slowly drifting low-frequency colour gradients: content H.264 at crf 18 keeps almost exactly."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    frames = np.zeros((n, height, width, 3), np.uint8)
    for t in range(n):
        frames[t, ..., 0] = 128 + 90 * np.sin(2 * np.pi * (x / width / 2 + t / 100))
        frames[t, ..., 1] = 128 + 90 * np.cos(2 * np.pi * (y / height / 2 - t / 120))
        frames[t, ..., 2] = 60 + 100 * (x + y) / (width + height)
    return frames


def index_frames(n: int, step: int, height: int = 64, width: int = 64) -> np.ndarray:
    """Frame i is flat grey at level i * step, so a decoded frame tells which source frame it was."""
    return np.stack([np.full((height, width, 3), i * step, np.uint8) for i in range(n)])


def frame_indices(frames: np.ndarray, step: int, offset: int = 0) -> list[int]:
    return [int(round((float(f.mean()) - offset) / step)) for f in frames]


def tone(seconds: float, sr: int, amplitude: float = 0.4) -> np.ndarray:
    """A chirp (150 -> ~1000 Hz, under every tested Nyquist rate): misalignment destroys correlation."""
    t = np.arange(int(round(seconds * sr))) / sr
    return (amplitude * np.sin(2 * np.pi * (150 + 220 * t) * t)).astype(np.float32)


def corr(a: np.ndarray, b: np.ndarray) -> float:
    n = min(a.size, b.size)
    assert n > 100
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


def write_av_audio(path: Path, audio: np.ndarray, sr: int, fmt: str, codec: str) -> Path:
    """Write (C, N) or (N,) float audio with PyAV into any container/codec (mono or stereo)."""
    data = np.atleast_2d(np.asarray(audio, np.float32))
    layout = "mono" if data.shape[0] == 1 else "stereo"
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=sr, layout=layout)
        formats = [f.name for f in stream.codec_context.codec.audio_formats]
        sample_fmt = "fltp" if "fltp" in formats else formats[0]
        for start in range(0, data.shape[1], 1152):
            block = data[:, start:start + 1152]
            if sample_fmt == "fltp":
                arr = block
            elif sample_fmt == "s16":  # packed: channels interleaved in one plane
                arr = (block.T.reshape(1, -1) * 32767).round().astype(np.int16)
            else:
                raise AssertionError(f"helper does not handle {sample_fmt}")
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(arr), format=sample_fmt, layout=layout)
            frame.sample_rate = sr
            frame.pts = start
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def write_stereo_mp4(path: Path, frames: np.ndarray, left: np.ndarray, right: np.ndarray, sr: int) -> Path:
    """An mp4 with H.264 video and a *stereo* AAC track (write_clip only writes mono)."""
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=int(FPS))
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        aus = out.add_stream("aac", rate=sr, layout="stereo")
        aus.bit_rate = 256000
        for i, rgb in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            vf.pts = i
            vf.time_base = Fraction(1, int(FPS))
            out.mux(vs.encode(vf))
        out.mux(vs.encode(None))
        stereo = np.stack([left, right]).astype(np.float32)
        for start in range(0, stereo.shape[1], 4096):
            block = np.ascontiguousarray(stereo[:, start:start + 4096])
            af = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
            af.sample_rate = sr
            af.pts = start
            out.mux(aus.encode(af))
        out.mux(aus.encode(None))
    return path


def write_vfr_mp4(path: Path, times_ms: list[int], size: int = 64, step: int = 8, offset: int = 10) -> Path:
    """H.264 in mp4 with explicit, irregular presentation times (ms): a variable-frame-rate file.
    Frame i is grey level offset + i * step. No B-frames, so the container's average rate is exact."""
    tb = Fraction(1, 1000)
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=int(FPS))
        vs.width = vs.height = size
        vs.pix_fmt = "yuv420p"
        vs.options = {"bf": "0"}
        vs.codec_context.time_base = tb
        for i, t in enumerate(times_ms):
            grey = np.full((size, size, 3), offset + i * step, np.uint8)
            vf = av.VideoFrame.from_ndarray(grey, format="rgb24")
            vf.pts = t
            vf.time_base = tb
            out.mux(vs.encode(vf))
        out.mux(vs.encode(None))
    return path


def clip_with_audio(frames: np.ndarray, sr: int, fps: float = FPS) -> Clip:
    return Clip(frames=frames, fps=fps, audio=tone(len(frames) / fps, sr), sample_rate=sr)


# ------------------------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("sr", [16000, 8000, 22050, 44100])
def test_round_trip_keeps_frames_fps_duration_audio_and_pixels(tmp_path: Path, sr: int) -> None:
    frames = smooth_frames(25)
    clip = clip_with_audio(frames, sr)
    path = write_clip(tmp_path / "rt.mp4", clip)
    back = read_clip(path)
    assert back.n_frames == clip.n_frames
    assert back.fps == pytest.approx(FPS)
    assert abs(back.duration_s - clip.duration_s) <= 1 / FPS
    assert (back.width, back.height) == (64, 64)
    assert back.has_audio_track and back.has_audio
    assert back.sample_rate == sr  # an AAC rate: kept as is
    assert abs(back.audio.size - clip.audio.size) <= sr / FPS
    assert corr(back.audio, clip.audio) > 0.99
    assert not back.truncated
    mae = np.abs(back.frames.astype(np.int16) - frames.astype(np.int16)).mean()
    assert mae < 3.0


@pytest.mark.parametrize("threads", ["0", "1", "3"])
def test_decoder_thread_count_changes_no_frame_and_the_encoder_bytes_do_not_depend_on_it(
        tmp_path: Path, monkeypatch, threads) -> None:
    clip = clip_with_audio(smooth_frames(25), 16000)
    monkeypatch.delenv(DECODER_THREADS_ENV, raising=False)
    reference_path = write_clip(tmp_path / "auto.mp4", clip)
    reference = read_clip(reference_path).frames
    monkeypatch.setenv(DECODER_THREADS_ENV, threads)
    assert decoder_threads() == int(threads)
    path = write_clip(tmp_path / f"t{threads}.mp4", clip)
    assert path.read_bytes() == reference_path.read_bytes()
    assert np.array_equal(read_clip(path).frames, reference)


_ENCODE_AND_HASH = """
import hashlib, sys
import numpy as np
sys.path.insert(0, {tests!r})
from test_media import clip_with_audio, smooth_frames
from fakebench.media import write_clip
clip = clip_with_audio(smooth_frames(25, width={width}), 16000)
hashes = {{hashlib.sha256(write_clip({out!r} + f"/{{i}}.mp4", clip, encoder_threads=1).read_bytes()).hexdigest()
          for i in range(4)}}
print(" ".join(sorted(hashes)))
"""


@pytest.mark.parametrize("width", [96, 224])
def test_encoder_bytes_do_not_depend_on_leftover_heap_contents(tmp_path: Path, width: int) -> None:
    """x264's AVX-512 mbtree kernel read past a macroblock row at widths not a multiple of 128 px, so the
    bytes followed the heap's leftovers; glibc's MALLOC_PERTURB_ fills freed memory to expose that here,
    whatever this machine's CPU."""
    import subprocess
    import sys

    outputs = []
    for perturb in ("85", "170"):
        folder = tmp_path / perturb
        folder.mkdir()
        script = _ENCODE_AND_HASH.format(tests=str(Path(__file__).parent), width=width, out=str(folder))
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                              env={**os.environ, "MALLOC_PERTURB_": perturb})
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(done.stdout.split())
    assert len(outputs[0]) == 1 and outputs[0] == outputs[1]


def test_x264_keeps_every_detected_simd_path_but_avx512(monkeypatch) -> None:
    import fakebench.media as media

    monkeypatch.setattr(media, "x264_cpu_flags", lambda: ("MMX2", "SSE2Fast", "SSSE3", "AVX2", "AVX512"))
    assert media.x264_stable_options() == {"x264-params": "asm=MMX2,SSE2Fast,SSSE3,AVX2"}
    monkeypatch.setattr(media, "x264_cpu_flags", lambda: ("MMX2", "SSE2Fast", "AVX2"))
    assert media.x264_stable_options() == {}  # nothing to leave out: x264 detects for itself
    monkeypatch.setattr(media, "x264_cpu_flags", lambda: ())
    assert media.x264_stable_options() == {}
    monkeypatch.undo()
    assert all("AVX512" not in f for f in media.x264_stable_options().get("x264-params", "").split(","))


def test_a_bad_decoder_thread_setting_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setenv(DECODER_THREADS_ENV, "many")
    with pytest.raises(MediaError, match="FAKEBENCH_DECODER_THREADS"):
        decoder_threads()


def test_non_aac_sample_rate_is_written_at_48k_and_round_trips(tmp_path: Path) -> None:
    clip = clip_with_audio(smooth_frames(25), 11000)
    path = write_clip(tmp_path / "rt11k.mp4", clip)
    assert probe(path).sample_rate == 48000
    back = read_clip(path)
    assert back.sample_rate == 48000
    assert abs(back.audio_duration_s - clip.audio_duration_s) <= 1 / FPS
    assert corr(resample_audio(back.audio, 48000, 11000), clip.audio) > 0.99
    # and read back at the original rate directly
    again = read_clip(path, sample_rate=11000)
    assert again.sample_rate == 11000
    assert corr(again.audio, clip.audio) > 0.99


def test_odd_size_is_padded_to_even_with_the_original_region_intact(tmp_path: Path) -> None:
    frames = smooth_frames(10, height=81, width=65)
    path = write_clip(tmp_path / "odd.mp4", Clip(frames=frames, fps=FPS, has_audio_track=False))
    back = read_clip(path)
    assert back.frames.shape == (10, 82, 66, 3)
    region = back.frames[:, :81, :65].astype(np.int16)
    assert np.abs(region - frames).mean() < 3.0
    # the padding repeats the last row / column
    assert np.abs(back.frames[:, 81, :65].astype(np.int16) - frames[:, 80]).mean() < 4.0
    assert np.abs(back.frames[:, :81, 65].astype(np.int16) - frames[:, :, 64]).mean() < 4.0


def test_clip_without_audio_round_trips_without_an_audio_track(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "silent.mp4", Clip(frames=smooth_frames(12), fps=FPS, has_audio_track=False))
    info = probe(path)
    assert info.has_video and not info.has_audio
    back = read_clip(path)
    assert back.has_audio_track is False
    assert back.audio.size == 0 and back.audio.dtype == np.float32
    assert back.n_frames == 12


# ------------------------------------------------------------------------------------------- read options

@pytest.fixture(scope="module")
def indexed_clip(tmp_path_factory) -> tuple[Path, Clip]:
    """2 s, 128x96, 50 frames: frame i is grey 5 * i; audio is a 16 kHz chirp."""
    frames = index_frames(50, step=STEP, height=96, width=128)
    clip = clip_with_audio(frames, 16000)
    path = write_clip(tmp_path_factory.mktemp("indexed") / "indexed.mp4", clip)
    return path, clip


def test_max_side_shrinks_keeping_aspect_and_content(indexed_clip) -> None:
    path, clip = indexed_clip
    small = read_clip(path, max_side=64)
    assert small.frames.shape == (50, 48, 64, 3)
    assert frame_indices(small.frames, STEP) == list(range(50))
    # shrinking keeps grey levels: no brightness shift against the full-size decode
    full = read_clip(path)
    np.testing.assert_allclose(small.frames.mean(axis=(1, 2, 3)), full.frames.mean(axis=(1, 2, 3)), atol=0.5)
    assert np.abs(small.frames.astype(np.int16) - clip.frames[:, ::2, ::2]).max() <= 2
    same = read_clip(path, max_side=1000)  # never enlarged
    assert same.frames.shape == (50, 96, 128, 3)


@pytest.mark.parametrize(("start_s", "duration_s"), [(1.0, 0.6), (0.6, 0.8)])
def test_window_gives_the_frames_and_audio_of_that_window(indexed_clip, start_s: float,
                                                           duration_s: float) -> None:
    path, clip = indexed_clip
    part = read_clip(path, start_s=start_s, duration_s=duration_s)
    first = int(round(start_s * FPS))
    n = int(round(duration_s * FPS))
    assert part.n_frames == n
    assert frame_indices(part.frames, STEP) == list(range(first, first + n))
    sr = clip.sample_rate
    assert part.sample_rate == sr
    assert abs(part.audio.size - duration_s * sr) <= 1
    a = int(round(start_s * sr))
    assert corr(part.audio, clip.audio[a:a + part.audio.size]) > 0.99


@pytest.mark.parametrize("sr", [8000, 44100])
def test_sample_rate_option_resamples_audio(indexed_clip, sr: int) -> None:
    path, clip = indexed_clip
    back = read_clip(path, sample_rate=sr)
    assert back.sample_rate == sr
    assert back.audio.size == pytest.approx(clip.duration_s * sr, rel=0.01)
    assert corr(resample_audio(back.audio, sr, 16000), clip.audio) > 0.99


def test_iter_frames_chunks_concatenate_to_read_clip(indexed_clip) -> None:
    path, _ = indexed_clip
    chunks = list(iter_frames(path, chunk_frames=7))
    assert all(1 <= len(c) <= 7 for c in chunks)
    assert [len(c) for c in chunks] == [7] * 7 + [1]
    np.testing.assert_array_equal(np.concatenate(chunks), read_clip(path).frames)


def test_variable_frame_rate_is_resampled_to_constant_rate(tmp_path: Path) -> None:
    """Irregular timestamps: gaps (a slot with no frame repeats the frame on screen) and bursts (two
    frames in one 40 ms slot: the later one is on screen at the slot's time and must win)."""
    cycle_a = [0, 40, 110, 120]  # slot 2 (80 ms) empty; 110 and 120 both belong to slot 3
    cycle_b = [0, 30, 40, 150]   # 30 and 40 share slot 1; slots 2-3 empty; 150 shares slot 4 with 160
    times: list[int] = []
    for c in range(6):
        times += [160 * c + t for t in (cycle_a if c % 2 == 0 else cycle_b)]
    times.append(960)
    path = write_vfr_mp4(tmp_path / "vfr.mp4", times)
    info = probe(path)
    clip = read_clip(path)
    assert clip.fps == pytest.approx(info.fps)
    assert clip.fps == pytest.approx(FPS, rel=0.05)
    assert abs(clip.n_frames - round(info.duration_s * clip.fps)) <= 1
    got = frame_indices(clip.frames, step=8, offset=10)
    # the frame on screen at the slot's time: the latest frame whose timestamp is not after it
    expected = [max(i for i, t in enumerate(times) if t <= 1000 * k / clip.fps + 1e-6)
                for k in range(clip.n_frames)]
    assert got == expected
    assert got[2] == got[1] and got[3] != got[2]  # a repeated frame, then a skipped one
    assert len(set(got)) < len(times)


# ------------------------------------------------------------------------------------------- audio

def test_stereo_wav_is_mixed_down_to_mono(tmp_path: Path) -> None:
    sine = tone(1.0, 22050, amplitude=0.5)
    path = write_av_audio(tmp_path / "stereo.wav", np.stack([sine, -0.5 * sine]), 22050, "wav", "pcm_s16le")
    audio, sr = read_audio(path)
    assert sr == 22050
    assert audio.ndim == 1 and audio.size == sine.size
    np.testing.assert_allclose(audio, 0.25 * sine, atol=2e-4)


def test_stereo_mp4_audio_is_mixed_down_to_mono(tmp_path: Path) -> None:
    sr = 44100
    sine = tone(1.2, sr, amplitude=0.5)
    path = write_stereo_mp4(tmp_path / "stereo.mp4", smooth_frames(30), sine, -0.5 * sine, sr)
    assert probe(path).audio_channels == 2
    clip = read_clip(path)
    assert clip.sample_rate == sr
    assert corr(clip.audio, sine) > 0.99
    assert np.std(clip.audio) / np.std(sine) == pytest.approx(0.25, rel=0.05)


AUDIO_CODECS = [("wav", "wav", "pcm_s16le"), ("flac", "flac", "flac"), ("mp3", "mp3", "libmp3lame"),
                ("m4a", "ipod", "aac")]


@pytest.mark.parametrize(("ext", "fmt", "codec"), AUDIO_CODECS, ids=[c[0] for c in AUDIO_CODECS])
def test_read_audio_formats_and_rates(tmp_path: Path, ext: str, fmt: str, codec: str) -> None:
    if codec not in av.codecs_available:
        pytest.skip(f"PyAV's ffmpeg has no {codec} encoder")
    source = tone(1.0, 22050)
    path = write_av_audio(tmp_path / f"speech.{ext}", source, 22050, fmt, codec)
    native, native_sr = read_audio(path)
    assert native_sr == 22050
    assert native.dtype == np.float32 and native.ndim == 1
    for sr in (8000, 48000):
        audio, got_sr = read_audio(path, sr=sr)
        assert got_sr == sr
        assert audio.size == pytest.approx(sr, rel=0.01)
        assert corr(audio, resample_audio(source, 22050, sr)) > 0.99


def test_write_audio_wav_and_flac_are_lossless_to_16_bits(tmp_path: Path) -> None:
    source = tone(0.5, 16000)
    for name in ("a.wav", "a.flac"):
        audio, sr = read_audio(write_audio(tmp_path / name, source, 16000))
        assert sr == 16000
        np.testing.assert_allclose(audio, source, atol=1.0 / 32767 + 1e-6)
    with pytest.raises(InputFileError, match=r"\.wav or \.flac"):
        write_audio(tmp_path / "a.ogg", source, 16000)


def test_read_audio_of_a_video_track(indexed_clip) -> None:
    path, clip = indexed_clip
    audio, sr = read_audio(path)
    assert sr == 16000
    assert abs(audio.size - clip.audio.size) <= sr / FPS
    assert corr(audio, clip.audio) > 0.99
    part, _ = read_audio(path, start_s=0.5, end_s=1.0)
    assert part.size == 8000
    assert corr(part, clip.audio[8000:16000]) > 0.99


def test_read_audio_of_a_video_without_sound_is_an_audio_error(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "mute.mp4", Clip(frames=smooth_frames(5), fps=FPS, has_audio_track=False))
    with pytest.raises(AudioError, match="no audio track"):
        read_audio(path)


def test_check_speech_audio(speech_16k) -> None:
    speech, sr = speech_16k
    assert check_speech_audio(speech, sr) is None
    with pytest.raises(AudioError, match="silent"):
        check_speech_audio(np.zeros(sr, np.float32), sr)
    with pytest.raises(AudioError, match="silent"):
        check_speech_audio(np.full(sr, 1e-4, np.float32), sr)  # -80 dBFS hum
    with pytest.raises(AudioError, match="shorter than one video frame"):
        check_speech_audio(speech[: sr // 50], sr, fps=25)  # 20 ms < 40 ms


# ------------------------------------------------------------------------------------------- damage

def decodable_frames(path: Path) -> int:
    """How many frames libavcodec can get out of a damaged file: decode single-threaded until the
    first error, then drain the decoder (the frames it holds back for B-frame reordering)."""
    n = 0
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "NONE"
        try:
            for packet in c.demux(stream):
                n += len(packet.decode())
        except av.error.FFmpegError:
            pass
        try:
            n += len(stream.codec_context.decode(None))
        except av.error.FFmpegError:
            pass
    return n


@pytest.fixture(scope="module")
def noise_clip(tmp_path_factory) -> tuple[Path, Clip]:
    """50 frames of noise: bytes spread evenly over the frames, so a cut at x% keeps ~x% of them."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (50, 64, 64, 3), dtype=np.uint8)
    path = write_clip(tmp_path_factory.mktemp("noise") / "noise.mp4", clip_with_audio(frames, 16000))
    return path, read_clip(path)


@pytest.mark.parametrize("fraction", [0.3, 0.6])
def test_truncated_mp4_reads_what_is_decodable_and_warns(tmp_path: Path, noise_clip, fraction: float) -> None:
    """Chosen behaviour for a damaged file: read what is decodable, warn (TruncatedMediaWarning), and
    mark the clip ``truncated``. write_clip uses +faststart, so the index is at the front and a file
    cut at 30% or 60% still opens. Every frame the decoder can produce before the damage is kept,
    including those it held back for reordering when the damage struck."""
    full, complete = noise_clip
    assert complete.truncated is False and complete.n_frames == 50
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.warns(TruncatedMediaWarning, match="kept the decodable part"):
        clip = read_clip(cut)
    assert clip.truncated is True
    assert 2 <= clip.n_frames < 50
    assert clip.n_frames == decodable_frames(cut)
    assert clip.n_frames == pytest.approx(50 * fraction, abs=6)
    np.testing.assert_array_equal(clip.frames, complete.frames[: clip.n_frames])
    assert clip.audio.size < complete.audio.size


@pytest.mark.parametrize("fraction", [0.99, 0.97])
def test_a_few_frames_lost_at_the_end_still_say_truncated(tmp_path: Path, noise_clip, fraction: float) -> None:
    """A damaged end that costs only the last frames (no decoder error, just fewer frames than the index
    promises) is flagged too: before, anything above 90 % of the frames passed as complete."""
    full, complete = noise_clip
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * fraction)])
    with pytest.warns(TruncatedMediaWarning, match=r"of 50 frames could be decoded"):
        clip = read_clip(cut)
    assert clip.truncated is True and 40 <= clip.n_frames < 50
    np.testing.assert_array_equal(clip.frames, complete.frames[: clip.n_frames])


def test_promised_frames_follow_an_edit_list_that_shortens_the_stream() -> None:
    """A clip cut without re-encoding keeps all its samples (index: 265) but presents 5.06 s (151.7 frames at
    29.97 fps); decoders output only the presented ones, which is not truncation. No index (MPEG-PS): the
    duration says."""
    from types import SimpleNamespace

    from fakebench.media import _promised_frames

    def stream(frames, duration, time_base=Fraction(1, 90000)):
        return SimpleNamespace(frames=frames, duration=duration, time_base=time_base)

    assert _promised_frames(stream(265, 455580), 30000 / 1001) == 151
    assert _promised_frames(stream(50, 50 * 3600), 25.0) == 50
    assert _promised_frames(stream(0, 268200), 25.0) == 74  # 2.98 s
    assert _promised_frames(stream(0, None), 25.0) == 0


def test_mp4_cut_inside_the_second_frame_keeps_the_first(tmp_path: Path, noise_clip) -> None:
    full, complete = noise_clip
    with av.open(str(full)) as c:
        packets = sorted((p.pos, p.size) for p in c.demux(c.streams.video[0]) if p.size)
    second_pos, second_size = packets[1]
    assert second_size > 20
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: second_pos + 10])  # the 1st video packet whole, the 2nd cut
    with pytest.warns(TruncatedMediaWarning):
        chunks = list(iter_frames(cut))
    assert sum(len(c) for c in chunks) == 1
    np.testing.assert_array_equal(chunks[0][0], complete.frames[0])
    with pytest.warns(TruncatedMediaWarning), pytest.raises(MediaError, match="only 1 frame"):
        read_clip(cut)


def test_mp4_cut_to_200_bytes_is_a_media_error(tmp_path: Path, noise_clip) -> None:
    full, _ = noise_clip
    head = tmp_path / "head.mp4"
    head.write_bytes(full.read_bytes()[:200])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncatedMediaWarning)
        with pytest.raises(MediaError, match="truncated"):
            read_clip(head)


# ------------------------------------------------------------------------------------------- bad input

def test_missing_and_empty_files_are_input_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such file"):
        read_clip(tmp_path / "missing.mp4")
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(InputFileError, match="empty"):
        read_clip(empty)
    with pytest.raises(InputFileError, match="empty"):
        read_audio(empty)
    with pytest.raises(InputFileError, match="folder"):
        read_clip(tmp_path)


def test_text_file_named_mp4_is_a_media_error(tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is a shopping list, not a video\n" * 20)
    with pytest.raises(MediaError, match="not readable media"):
        read_clip(fake)


@pytest.mark.parametrize("name", ["photo.png", "photo.jpg"])
def test_image_passed_to_read_clip(tmp_path: Path, name: str) -> None:
    path = write_image(tmp_path / name, smooth_frames(1)[0])
    with pytest.raises(MediaError, match="image"):
        read_clip(path)
    assert probe(path).is_image


def test_video_passed_to_read_image(indexed_clip) -> None:
    path, _ = indexed_clip
    with pytest.raises(MediaError, match="video"):
        read_image(path)


def test_audio_only_file_passed_to_read_clip(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "voice.wav", tone(0.5, 16000), 16000)
    with pytest.raises(MediaError, match="no video stream"):
        read_clip(path)


def test_one_frame_video_is_a_media_error(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "one.mp4", Clip(frames=smooth_frames(1), fps=FPS, has_audio_track=False))
    with pytest.raises(MediaError, match="1 frame"):
        read_clip(path)
    assert read_clip(path, min_frames=1).n_frames == 1


def test_read_image_grey_and_rgba(tmp_path: Path) -> None:
    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((12, 10), 77, np.uint8), mode="L").save(grey)
    img = read_image(grey)
    assert img.shape == (12, 10, 3) and img.dtype == np.uint8
    assert (img == 77).all()

    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[0] = (255, 0, 0, 0)      # fully transparent red -> white
    rgba[1] = (0, 0, 255, 255)    # opaque blue stays blue
    rgba[2] = (0, 0, 0, 128)      # half-transparent black -> mid grey
    rgba[3] = (0, 200, 0, 255)
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    img = read_image(path)
    assert img.shape == (4, 6, 3) and img.dtype == np.uint8
    assert (img[0] == 255).all()
    assert (img[1] == (0, 0, 255)).all()
    assert np.abs(img[2].astype(int) - 127).max() <= 1
    assert (img[3] == (0, 200, 0)).all()


def test_read_image_of_text_is_a_media_error(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_text("not an image")
    with pytest.raises(MediaError, match="not a readable image"):
        read_image(path)


# ------------------------------------------------------------------------------------------- writing

def test_write_clip_to_unwritable_location_is_an_input_file_error(tmp_path: Path) -> None:
    clip = Clip(frames=smooth_frames(3), fps=FPS, has_audio_track=False)
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    with pytest.raises(InputFileError, match="not a folder"):
        write_clip(a_file / "out.mp4", clip)
    with pytest.raises(InputFileError):
        write_clip("/proc/fakebench-test-out.mp4", clip)
    with pytest.raises(InputFileError):
        write_audio(a_file / "out.wav", tone(0.1, 16000), 16000)
    with pytest.raises(InputFileError, match="folder"):
        write_clip(tmp_path, clip)


def test_write_clip_creates_missing_folders(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "a" / "b" / "c.mp4", Clip(frames=smooth_frames(3), fps=FPS,
                                                            has_audio_track=False))
    assert read_clip(path).n_frames == 3


def test_failed_encode_leaves_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    clip = clip_with_audio(smooth_frames(5), 16000)
    target = tmp_path / "out.mp4"
    with pytest.raises(ValueError):  # the encoder refuses to open (av.error.ArgumentError)
        write_clip(target, clip, preset="no-such-preset")
    assert not target.exists()
    assert os.listdir(tmp_path) == []

    target.write_bytes(b"previous version")
    with pytest.raises(ValueError):
        write_clip(target, clip, preset="no-such-preset")
    assert target.read_bytes() == b"previous version"  # an old file survives a failed rewrite
    assert os.listdir(tmp_path) == ["out.mp4"]

    import fakebench.media as media

    def half_written(tmp: str, *args, **kwargs) -> None:
        Path(tmp).write_bytes(b"\0" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(media, "_encode_mp4", half_written)
    other = tmp_path / "other.mp4"
    with pytest.raises(InputFileError, match="No space left"):
        write_clip(other, clip)
    assert not other.exists()
    assert os.listdir(tmp_path) == ["out.mp4"]


def test_constant_bitrate_encoding_gives_the_same_bytes_every_time(tmp_path):
    """x264's VBV rate control with frame threads depends on thread timing; corpora (which encode at a constant
    bitrate) must still be the same bytes for the same seed, so such encodes run one thread."""
    import hashlib

    from fakebench.media import Clip, write_clip

    rng = np.random.default_rng(0)
    frames = np.cumsum(rng.integers(0, 255, (50, 128, 128, 3)), axis=0).astype(np.uint8)  # hard to compress
    clip = Clip(frames=frames, fps=25.0, audio=(rng.standard_normal(32000) * 0.1).astype(np.float32),
                sample_rate=16000)
    digests = {hashlib.sha256(write_clip(tmp_path / f"{i}.mp4", clip, encoder_threads=2,
                                         bitrate=300_000).read_bytes()).hexdigest() for i in range(4)}
    assert len(digests) == 1
