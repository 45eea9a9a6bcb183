"""Phone-size photos (issue 15 section 3): generators shrink a large photo to `max_side` (1024 by default)
before any face analysis, and write H.264 at the level its frame size needs, one that browsers play."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from fakebench.generators.base import DEFAULT_MAX_SIDE, GENERATORS, size_photo
from fakebench.media import Clip, h264_level, write_clip

SR = 16000
BIG = (2400, 1800)  # a large photo that keeps the test quick; the benchmark uses 4000x3000


@pytest.fixture(scope="module")
def big_media(tmp_path_factory, astronaut) -> Path:
    from fakebench.media import resample_audio, write_audio
    from fakebench.speech import synthesize

    folder = tmp_path_factory.mktemp("photo-size")
    side = BIG[1]
    canvas = Image.new("RGB", BIG, (118, 120, 124))
    canvas.paste(Image.fromarray(astronaut).resize((side, side), Image.LANCZOS), ((BIG[0] - side) // 2, 0))
    canvas.save(folder / "big.jpg", quality=90)
    speech, rate, _ = synthesize("Place blue at F two now.", voice="en-us")
    write_audio(folder / "speech.wav", resample_audio(speech, rate, SR)[: SR], SR)
    return folder


def _generate(capsys, media: Path, out: Path, *args: str) -> dict:
    from fakebench.cli import main

    code = main(["generate", "--image", str(media / "big.jpg"), "--audio", str(media / "speech.wav"), "-o",
                 str(out), *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    with av.open(str(out)) as c:
        vs = c.streams.video[0]
        return {"width": vs.codec_context.width, "height": vs.codec_context.height,
                "profile": vs.codec_context.profile, "level": vs.codec_context.level,
                "fps": float(vs.average_rate)}


def test_photo_generators_default_to_1024_px():
    assert DEFAULT_MAX_SIDE == 1024
    for name in ("warp", "static"):
        option = next(o for o in GENERATORS.get(name).options if o.name == "max_side")
        assert option.default == 1024 and option.max >= 8192


@pytest.mark.parametrize("generator", ["warp", "static"])
def test_a_large_photo_is_shrunk_by_default_and_written_at_a_level_browsers_play(generator, big_media, tmp_path,
                                                                                capsys):
    info = _generate(capsys, big_media, tmp_path / "out.mp4", "-g", generator)
    assert (info["width"], info["height"]) == (1024, 768)
    assert info["profile"] == "High"
    assert info["level"] == h264_level(1024, 768, info["fps"]) == 31  # 3.1: what browsers and phones play
    assert info["level"] <= 41


def test_a_larger_max_side_keeps_more_of_the_photo(big_media, tmp_path, capsys):
    info = _generate(capsys, big_media, tmp_path / "full.mp4", "-g", "static", "--option", "max_side=8192")
    assert (info["width"], info["height"]) == BIG  # the photo's own size
    assert info["level"] == h264_level(*BIG, info["fps"]) == 50
    info = _generate(capsys, big_media, tmp_path / "mid.mp4", "-g", "warp", "--max-side", "1600")
    assert (info["width"], info["height"]) == (1600, 1200)


def test_the_face_is_analysed_on_a_shrunk_copy():
    photo = np.zeros((3000, 4000, 3), np.uint8)
    sized = size_photo(photo, 1024)
    assert sized.analysis_size == sized.output_size == (1024, 768)
    small = size_photo(photo, 200)  # analysed at 1024, rendered at 200
    assert small.analysis_size == (1024, 768) and small.output_size == (200, 150)
    assert size_photo(photo, None).analysis is photo  # None: the photo as given
    tiny = np.zeros((300, 400, 3), np.uint8)
    assert size_photo(tiny, 1024).analysis is tiny and size_photo(tiny, 1024).output() is tiny


@pytest.mark.parametrize(("size", "fps", "level"), [
    ((1024, 768), 25, 31), ((1280, 720), 30, 31), ((1920, 1080), 30, 40), ((1920, 1080), 60, 42),
    ((640, 480), 25, 30), ((4000, 3000), 25, 60), ((176, 144), 15, 10),
])
def test_h264_level_follows_the_standard_table(size, fps, level):
    assert h264_level(*size, fps) == level


def test_the_written_level_is_the_tables_and_the_bytes_stay_stable(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (4, 96, 160, 3), dtype=np.uint8)
    clip = Clip(frames=frames, fps=25.0)
    a, b = write_clip(tmp_path / "a.mp4", clip), write_clip(tmp_path / "b.mp4", clip)
    assert a.read_bytes() == b.read_bytes()
    with av.open(str(a)) as c:
        cc = c.streams.video[0].codec_context
        assert cc.profile == "High" and cc.level == h264_level(160, 96, 25.0) == 11


def test_a_corpus_fake_keeps_the_size_of_its_real_clip():
    real = Clip(frames=np.zeros((2, 1080, 1920, 3), np.uint8), fps=30.0)
    for name in ("warp", "static"):
        options = GENERATORS.get(name).source_options(real, {})
        assert options["max_side"] == 1920 and options["fps"] == 30.0
        assert GENERATORS.get(name).source_options(real, {"max_side": 512})["max_side"] == 512
