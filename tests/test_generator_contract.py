"""The contract every registered generator keeps, checked through `fakebench generate` for each of them
(discovered from the registry, not listed here), and the registry and option validation themselves.

Bad inputs and bad options end in exit code 2 with one line naming what was wrong (the flag, for an option)
and no traceback; the same seed gives the same decoded frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fakebench.cli import main
from fakebench.errors import ConfigError
from fakebench.generators.base import GENERATORS
from fakebench.registry import Option, Registry, check_seed, check_value, validate_options

SR = 16000
SIDE = 192  # small photos and clips keep the end-to-end runs quick


def _out_of_range(option: Option) -> list:
    """Values outside the option's declared range or choices."""
    values = []
    step = 1 if option.type is int else 0.5
    if option.min is not None:
        values.append(option.type(option.min - step))
    if option.max is not None:
        values.append(option.type(option.max + step) if option.type is int else option.max * 10)
    if option.choices:
        values.append("not-a-choice")
    if option.nonzero:
        values.append(0)
    return values


NAMES = GENERATORS.names()
RANGE_CASES = [pytest.param(name, option, value, id=f"{name}-{option.name}={value}")
               for name in NAMES for option in GENERATORS.get(name).options for value in _out_of_range(option)]


# ---------------------------------------------------------------------------------------------- media


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """A photo, 1.5 s of speech, silence, audio below every generator's minimum, a fake photo, a real clip."""
    from PIL import Image

    from fakebench.assets import load_photo
    from fakebench.media import Clip, resample_audio, write_audio, write_clip
    from fakebench.speech import synthesize

    folder = tmp_path_factory.mktemp("contract")
    photo = np.ascontiguousarray(load_photo("astronaut")[20:276, 100:356])
    photo = np.asarray(Image.fromarray(photo).resize((SIDE, SIDE), Image.LANCZOS))
    Image.fromarray(photo).save(folder / "photo.png")
    speech, rate, _ = synthesize("Place blue at F two now.", voice="en-us")
    speech = resample_audio(speech, rate, SR)[: int(1.5 * SR)]
    write_audio(folder / "speech.wav", speech, SR)
    write_audio(folder / "silent.wav", np.zeros(SR, np.float32), SR)
    shortest = min(GENERATORS.get(n).min_audio_s for n in NAMES)
    write_audio(folder / "short.wav", speech[SR // 4: SR // 4 + int(shortest / 2 * SR)], SR)
    (folder / "not_a_photo.png").write_text("this is text, not an image\n")
    frames = np.broadcast_to(photo, (int(1.5 * 25), *photo.shape))
    write_clip(folder / "clip.mp4", Clip(frames=np.ascontiguousarray(frames), fps=25.0, audio=speech, sample_rate=SR))
    return folder


def _inputs(name: str, media: Path, *, audio: str = "speech.wav", photo: str = "photo.png") -> list[str]:
    plugin = GENERATORS.get(name)
    if plugin.takes == "photo":
        return ["--image", str(media / photo), "--audio", str(media / audio)]
    # a clip generator: the real clip, and the audio given replaces the clip's own
    return ["--video", str(media / "clip.mp4"), "--audio", str(media / audio)]


def _options(name: str) -> list[str]:
    """What a generator needs besides its inputs to run on the test machine."""
    plugin = GENERATORS.get(name)
    names = {o.name for o in plugin.options}
    return ["--device", "cpu"] if "device" in names else []


def _generate(capsys, *args) -> tuple[int, str, str]:
    code = main(["generate", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_user_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def _skip_unavailable(name: str) -> None:
    why = GENERATORS.unavailable_reason(name)
    if why:
        pytest.skip(f"{name} cannot run here: {why}")


# ---------------------------------------------------------------------------------------------- the contract

def test_every_generator_declares_its_contract():
    assert {"sda", "warp", "static", "desync"} <= set(NAMES)
    for name in NAMES:
        plugin = GENERATORS.get(name)
        assert plugin.name == name and plugin.description
        assert plugin.takes in ("photo", "clip")
        assert plugin.min_audio_s > 0
        assert all(isinstance(o, Option) for o in plugin.options)
        assert len({o.name for o in plugin.options}) == len(plugin.options)
        for option in plugin.options:  # the declared default is itself valid
            assert check_value(option, option.default) == option.default
        assert plugin.__module__ in GENERATORS.preload_modules([name])


@pytest.mark.slow
@pytest.mark.parametrize(("name", "option", "value"), RANGE_CASES)
def test_option_out_of_range_is_exit_2_naming_the_flag(name, option, value, media, tmp_path, capsys):
    flag = ["--option", f"{option.name}={value}"]
    shown = f"--option {option.name}"
    if option.name in ("fps", "shift_frames"):  # the options with a flag of their own
        flag, shown = [option.cli_flag, str(value)], option.cli_flag
    code, _, err = _generate(capsys, "-g", name, *_inputs(name, media), *flag, "-o", tmp_path / "out.mp4")
    _assert_user_error(code, err, shown)
    assert not (tmp_path / "out.mp4").exists()


def test_every_generator_refuses_a_negative_seed_and_options_it_does_not_take(media, tmp_path, capsys):
    for name in NAMES:
        code, _, err = _generate(capsys, "-g", name, *_inputs(name, media), "--seed", "-1", "-o", tmp_path / "o.mp4")
        _assert_user_error(code, err, "--seed")
        declared = {o.name for o in GENERATORS.get(name).options}
        for key, flag in (("fps", ["--fps", "25"]), ("shift_frames", ["--shift-frames", "3"])):
            if key not in declared:
                code, _, err = _generate(capsys, "-g", name, *_inputs(name, media), *flag, "-o", tmp_path / "o.mp4")
                _assert_user_error(code, err, flag[0], f"does not apply to {name}")
        code, _, err = _generate(capsys, "-g", name, *_inputs(name, media), "--option", "no_such_option=1",
                                 "-o", tmp_path / "o.mp4")
        _assert_user_error(code, err, "no_such_option", f"does not apply to {name}")
        assert not (tmp_path / "o.mp4").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_bad_photo_silent_and_short_audio_are_exit_2(name, media, tmp_path, capsys):
    plugin = GENERATORS.get(name)
    _skip_unavailable(name)
    out = tmp_path / "out.mp4"
    extra = _options(name)
    if plugin.takes == "photo":
        code, _, err = _generate(capsys, "-g", name, *_inputs(name, media, photo="not_a_photo.png"), *extra,
                                 "-o", out)
        _assert_user_error(code, err, "not_a_photo.png")
    else:  # a photo is refused by a clip generator, naming the flag
        code, _, err = _generate(capsys, "-g", name, "--image", media / "photo.png", "--video",
                                 media / "clip.mp4", *extra, "-o", out)
        _assert_user_error(code, err, "--image")
    code, _, err = _generate(capsys, "-g", name, *_inputs(name, media, audio="silent.wav"), *extra, "-o", out)
    _assert_user_error(code, err, "silent")
    code, _, err = _generate(capsys, "-g", name, *_inputs(name, media, audio="short.wav"), *extra, "-o", out)
    _assert_user_error(code, err, f"{plugin.min_audio_s:g} s")
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_decoded_frames(name, media, tmp_path, capsys):
    from fakebench.media import read_clip

    _skip_unavailable(name)
    plugin = GENERATORS.get(name)
    extra = _options(name)
    if plugin.takes == "clip":
        extra += ["--shift-frames", "3"] if "shift_frames" in {o.name for o in plugin.options} else []
    clips = []
    for k in range(2):
        code, out, err = _generate(capsys, "-g", name, *_inputs(name, media), *extra, "--seed", "7",
                                   "-o", tmp_path / f"run{k}.mp4")
        assert code == 0, err
        assert "wrote" in out and (tmp_path / f"run{k}.json").is_file()
        clips.append(read_clip(tmp_path / f"run{k}.mp4"))
    a, b = clips
    assert a.n_frames > 1 and abs(a.duration_s - 1.5) < 0.1
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.audio, b.audio)


# ---------------------------------------------------------------------------------------------- the registry

def test_registry_registers_creates_and_lists():
    things = Registry("thing", "fakebench.no_such_package_for_things")

    @things.register("one")
    class One:
        description = "the first"
        options = (Option("size", int, 3, min=1, max=9),)

        @classmethod
        def check_available(cls, size=3):
            return None if size < 5 else f"size {size} needs weights that are missing"

        def __init__(self, **options):
            self.size = validate_options("one", self.options, options)["size"]

    assert One.name == "one" and "one" in things and "two" not in things
    assert things.create("one", size=4).size == 4
    with pytest.raises(ConfigError, match="unknown thing 'two'; choose one of one"):
        things.create("two")
    with pytest.raises(ValueError, match="registered twice"):
        @things.register("one")
        class Other:
            pass
    assert things.register("one")(One) is One  # the same class again is fine (a module imported twice)
    entry = things.available()["one"]
    assert entry.is_available and entry.description == "the first" and entry.unavailable is None
    assert things.available(size=7, colour="red")["one"].unavailable == "size 7 needs weights that are missing"
    assert things.preload_modules(["one"]) == (One.__module__,)


def test_generator_registry_lazily_finds_the_built_ins_in_default_order():
    assert NAMES[:4] == ["warp", "sda", "static", "desync"]
    from fakebench.generators.base import default_generator

    assert default_generator("photo") == "warp" and default_generator("clip") == "desync"
    assert list(GENERATORS.available()) == sorted(NAMES)
    preload = GENERATORS.preload_modules(["warp", "desync"])
    assert preload[0] == "fakebench.generators.warp" and "fakebench.generators.desync" in preload
    assert "scipy.spatial" in preload
    with pytest.raises(ConfigError, match="unknown generator 'gan9'; choose one of .*desync.*warp"):
        GENERATORS.create("gan9")


def test_option_validation_messages():
    fps = Option("fps", float, 25.0, min=1.0, max=120.0)
    declared = (fps, Option("head_motion", bool, False), Option("max_side", int, None, min=64),
                Option("mode", str, "a", choices=("a", "b")), Option("shift_frames", int, 1, nonzero=True))
    assert validate_options("warp", declared, {}) == {"fps": 25.0, "head_motion": False, "max_side": None,
                                                      "mode": "a", "shift_frames": 1}
    ok = validate_options("warp", declared, {"fps": 30, "head_motion": "yes", "max_side": "128", "mode": "b"})
    assert ok["fps"] == 30.0 and isinstance(ok["fps"], float) and ok["head_motion"] is True and ok["max_side"] == 128
    cases = [({"fps": 0}, "--fps must be between 1 and 120, got 0"),
             ({"fps": 1000}, "--fps must be between 1 and 120, got 1000"),
             ({"fps": "fast"}, "--fps must be a number, got 'fast'"),
             ({"fps": float("nan")}, "--fps must be a number"),
             ({"fps": True}, "--fps must be a number"),
             ({"max_side": 10}, "--max-side must be at least 64, got 10"),
             ({"max_side": 100.5}, "--max-side must be a whole number"),
             ({"head_motion": 2}, "--head-motion must be true or false"),
             ({"mode": "c"}, "--mode must be one of a, b, got c"),
             ({"shift_frames": 0}, "--shift-frames must not be 0"),
             ({"shift": 3}, "--shift does not apply to warp")]
    for values, message in cases:
        with pytest.raises(ConfigError) as e:
            validate_options("warp", declared, values)
        assert str(e.value).startswith(message), (values, str(e.value))
    with pytest.raises(ConfigError, match="--no-paste-back does not apply to warp"):
        validate_options("warp", declared, {"paste_back": False}, flags={"paste_back": "--no-paste-back"})
    with pytest.raises(ConfigError, match="--option fps must be between"):
        validate_options("warp", declared, {"fps": "0"}, flags={"fps": "--option fps"})
    assert validate_options("warp", declared, {"max_side": None})["max_side"] is None  # None: not set
    assert check_seed(0) == 0 and check_seed(np.int64(5)) == 5
    for bad in (-1, 1.5, "3", None, True):
        with pytest.raises(ConfigError, match="--seed must be a whole number >= 0"):
            check_seed(bad)


def test_generators_refuse_bad_options_when_made_directly():
    with pytest.raises(ConfigError, match="--fps must be between 1 and 120"):
        GENERATORS.create("static", fps=0)
    with pytest.raises(ConfigError, match="--fps does not apply to desync"):
        GENERATORS.create("desync", fps=25)
    with pytest.raises(ConfigError, match="--shift-frames must be between"):
        GENERATORS.create("desync", shift_frames=10_000)
