"""Streaming generation: frames encoded as they are made, the same video as the whole clip, no half-written files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fakebench.generators.base import GeneratedStream, generate_file
from fakebench.generators.warp import WarpGenerator
from fakebench.media import Clip, file_sha256, read_clip, write_audio, write_clip, write_frames, write_image


@pytest.fixture(scope="module")
def face_photo(astronaut) -> np.ndarray:
    return np.ascontiguousarray(astronaut[2:258, 97:353])


def frames_of(n: int, h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (1, h, w, 3))
    return np.clip(base + np.arange(n)[:, None, None, None] * 3, 0, 255).astype(np.uint8)


def test_write_frames_in_chunks_gives_the_bytes_of_write_clip(tmp_path):
    frames = frames_of(23, 47, 63)  # odd sizes: padded per chunk as the whole clip is
    audio = (0.1 * np.sin(np.arange(16000) / 5)).astype(np.float32)
    whole = write_clip(tmp_path / "whole.mp4", Clip(frames=frames, fps=25.0, audio=audio, sample_rate=16000))
    chunked = write_frames(tmp_path / "chunked.mp4", (frames[i:i + 5] for i in range(0, 23, 5)), fps=25.0,
                           audio=audio, sample_rate=16000)
    assert file_sha256(whole) == file_sha256(chunked)
    silent = write_frames(tmp_path / "silent.mp4", iter([frames[:10], frames[10:]]), fps=25.0)
    assert read_clip(silent).n_frames == 23 and not read_clip(silent).has_audio


class Broken(RuntimeError):
    pass


@pytest.mark.parametrize("error", [Broken, KeyboardInterrupt])
def test_an_error_midway_leaves_no_file(tmp_path, error):
    def chunks():
        yield frames_of(8)
        raise error("the generator failed halfway")

    target = tmp_path / "out.mp4"
    with pytest.raises(error):
        write_frames(target, chunks(), fps=25.0)
    assert list(tmp_path.iterdir()) == []  # no output, no temporary file


def test_a_chunk_of_another_size_is_refused(tmp_path):
    with pytest.raises(ValueError, match="chunk"):
        write_frames(tmp_path / "out.mp4", iter([frames_of(4), frames_of(4, 32, 32)]), fps=25.0)
    assert list(tmp_path.iterdir()) == []


def test_generated_stream_contract():
    frames = frames_of(6)
    made = {"calls": 0}

    def truth():
        made["calls"] += 1
        return {"n": 6}

    stream = GeneratedStream(n_frames=6, fps=25.0, width=64, height=48, audio=np.zeros(100, np.float32),
                             sample_rate=16000, chunks=iter([frames[:4], frames[4:]]), ground_truth=truth)
    with pytest.raises(RuntimeError, match="after its last chunk"):
        _ = stream.ground_truth
    clip = stream.collect()
    assert np.array_equal(clip.clip.frames, frames) and clip.ground_truth == {"n": 6} and made["calls"] == 1
    with pytest.raises(RuntimeError, match="only once"):
        next(stream.chunks())
    short = GeneratedStream(n_frames=7, fps=25.0, width=64, height=48, audio=np.zeros(0, np.float32),
                            sample_rate=16000, chunks=iter([frames]), ground_truth={})
    with pytest.raises(RuntimeError, match="6 of its 7 frames"):
        short.collect()


def test_warp_stream_is_generate_in_chunks(face_photo, speech_16k):
    speech, sr = speech_16k
    speech = np.tile(speech, 3)  # batches of 64 frames: three of them
    gen = WarpGenerator(max_side=128)
    whole = gen.generate(face_photo, speech, sr, seed=4)
    stream = gen.generate_stream(face_photo, speech, sr, seed=4)
    chunks = list(stream.chunks())
    assert len(chunks) > 1
    assert np.array_equal(np.concatenate(chunks), whole.clip.frames)
    assert json.dumps(stream.ground_truth) == json.dumps(whole.ground_truth)


def test_generate_file_streams_the_same_video(tmp_path, face_photo, speech_16k):
    speech, sr = speech_16k
    photo = write_image(tmp_path / "face.png", face_photo)
    audio = write_audio(tmp_path / "speech.wav", speech, sr)
    result = generate_file("warp", tmp_path / "out" / "fake.mp4", image=photo, audio=audio, seed=3)
    from fakebench.media import read_audio, read_image

    samples, rate = read_audio(audio)
    whole = WarpGenerator().generate(read_image(photo), samples, rate, seed=3)
    reference = whole.save(tmp_path / "whole.mp4")[0]
    assert file_sha256(result.video) == file_sha256(reference)
    assert np.array_equal(read_clip(result.video).frames, read_clip(reference).frames)
    truth = json.loads(result.ground_truth.read_text())
    assert truth["inputs"] == {"image": str(photo), "audio": str(audio)}
    assert truth["n_frames"] == result.n_frames == whole.clip.n_frames


def test_generate_file_error_midway_leaves_no_output(tmp_path, face_photo, speech_16k, monkeypatch):
    speech, sr = speech_16k
    photo = write_image(tmp_path / "face.png", face_photo)
    audio = write_audio(tmp_path / "speech.wav", np.tile(speech, 3), sr)
    original = WarpGenerator.generate_stream

    def failing(self, *args, **kwargs):
        stream = original(self, *args, **kwargs)
        source = stream._chunks

        def chunks():
            for i, chunk in enumerate(source):
                if i == 1:
                    raise Broken("render failed")
                yield chunk

        stream._chunks = chunks()
        return stream

    monkeypatch.setattr(WarpGenerator, "generate_stream", failing)
    out = tmp_path / "out"
    with pytest.raises(Broken):
        generate_file("warp", out / "fake.mp4", image=photo, audio=audio, seed=3)
    assert not (out / "fake.mp4").exists() and not (out / "fake.json").exists()
    assert list(out.iterdir()) == []
