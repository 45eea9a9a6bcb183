"""The Generator protocol, its registry, and the generated clip with its ground truth.

A generator turns one photo and one audio signal into a talking clip (`generate`), or, for
video-driven generators such as `desync`, one real clip into a manipulated one (`from_clip`). Every
generated clip carries a ground-truth record of what the generator put in (mouth opening per frame,
blink intervals, head pose, audio offset: whatever applies), saved beside the video as JSON.

Generators register by name with `@register("name")` in the `GENERATORS` registry, as timm registers
models: adding a generator is adding one file. Each declares its contract on the class (`GeneratorBase`):
what it takes (photo or clip), its options with their valid ranges, the shortest audio it accepts, the
weights it needs and the modules workers must preload. Nothing outside the plug-in knows a generator by
name; `generate_file` makes one fake from files for any of them.

Streaming (long audio in bounded memory). A photo generator may also offer
``generate_stream(image, audio, sample_rate, *, seed) -> GeneratedStream``: the same clip, but its frames come as
an iterator of uint8 chunks (t, H, W, 3) instead of one array. A `GeneratedStream` says up front what the clip
will be (``n_frames``, ``fps``, ``width``, ``height``, the driving ``audio`` and ``sample_rate``); its
``chunks()`` may be iterated once, in order, and must yield exactly ``n_frames`` frames of that size; its
``ground_truth`` is complete once the chunks are exhausted (a generator may count things while rendering) and
reading it earlier is an error. `GeneratedStream.save` encodes each chunk as it comes (`fakebench.media.
write_frames`: a temporary file renamed into place once complete, so an error or an interrupt midway leaves no
file at the output path) and then writes the ground truth; `GeneratedStream.collect` gathers the chunks into a
`GeneratedClip`, and a generator that streams builds its ``generate`` on that. `generate_file` (behind
``fakebench generate``) uses ``generate_stream`` whenever the generator has one, so memory holds the photo, the
per-frame arrays (landmarks, pose: bytes per frame, not pixels) and one chunk of frames, never the whole clip: a
ten-minute song takes what a ten-second one does, plus its audio. A generator adopts it by rendering in chunks
(a generator's batch loop already does) and moving what it computes after rendering into the ground-truth
callable; nothing else changes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from fakebench.errors import AudioError, ConfigError
from fakebench.io import to_jsonable, write_json_atomic  # noqa: F401  (to_jsonable re-exported)
from fakebench.media import ENCODER_THREADS, Clip, check_output_path, write_clip, write_frames
from fakebench.registry import Entry, Option, Registry, check_seed, validate_options


@dataclass(eq=False)
class GeneratedClip:
    clip: Clip
    ground_truth: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | os.PathLike, *, encoder_threads: int = ENCODER_THREADS,
             bitrate: int | None = None) -> tuple[Path, Path]:
        """Write the mp4 (constant ``bitrate`` when given, see `write_clip`) and its ground truth next to it (same
        name, .json). Returns both paths."""
        video = check_output_path(path)
        truth = video.with_suffix(".json")
        write_clip(video, self.clip, encoder_threads=encoder_threads, bitrate=bitrate)
        write_json(truth, self.ground_truth)
        return video, truth


class GeneratedStream:
    """A generated clip whose frames come in chunks (see the module's docstring, "Streaming").

    ``chunks``: an iterable of uint8 (t, H, W, 3) arrays, iterated once, ``n_frames`` frames in all.
    ``ground_truth``: the record, or a callable that makes it once the chunks are exhausted."""

    def __init__(self, *, n_frames: int, fps: float, width: int, height: int, audio: np.ndarray, sample_rate: int,
                 chunks: Iterable[np.ndarray], ground_truth: dict[str, Any] | Callable[[], dict[str, Any]]) -> None:
        self.n_frames, self.fps, self.width, self.height = int(n_frames), float(fps), int(width), int(height)
        self.audio = np.asarray(audio, np.float32).reshape(-1)
        self.sample_rate = int(sample_rate)
        self._chunks: Iterable[np.ndarray] | None = chunks
        self._truth = ground_truth
        self._done = False

    def chunks(self) -> Iterator[np.ndarray]:
        """The frames, chunk by chunk, each checked for size; once only. After the last one the ground truth is
        complete; a generator that yields more or fewer than ``n_frames`` frames is a RuntimeError."""
        if self._chunks is None:
            raise RuntimeError("a GeneratedStream's chunks can be iterated only once")
        source, self._chunks = self._chunks, None
        shown = 0
        for chunk in source:
            if chunk.dtype != np.uint8 or chunk.ndim != 4 or chunk.shape[1:] != (self.height, self.width, 3):
                raise RuntimeError(f"a chunk of {chunk.dtype} {chunk.shape} in a stream of "
                                   f"{self.height}x{self.width} uint8 frames")
            shown += len(chunk)
            if shown > self.n_frames:
                raise RuntimeError(f"the stream yielded more than its {self.n_frames} frames")
            yield chunk
        if shown != self.n_frames:
            raise RuntimeError(f"the stream yielded {shown} of its {self.n_frames} frames")
        if callable(self._truth):
            self._truth = self._truth()
        self._done = True

    @property
    def ground_truth(self) -> dict[str, Any]:
        if not self._done:
            raise RuntimeError("the ground truth of a GeneratedStream is complete only after its last chunk")
        assert isinstance(self._truth, dict)
        return self._truth

    def collect(self) -> GeneratedClip:
        """All the frames in one `GeneratedClip` (what ``generate`` returns)."""
        frames = np.empty((self.n_frames, self.height, self.width, 3), np.uint8)
        at = 0
        for chunk in self.chunks():
            frames[at:at + len(chunk)] = chunk
            at += len(chunk)
        clip = Clip(frames=frames, fps=self.fps, audio=self.audio, sample_rate=self.sample_rate)
        return GeneratedClip(clip=clip, ground_truth=self.ground_truth)

    def save(self, path: str | os.PathLike, *, encoder_threads: int = ENCODER_THREADS, bitrate: int | None = None,
             truth_defaults: Mapping[str, Any] | None = None) -> tuple[Path, Path]:
        """Encode the chunks as they come into the mp4 at `path` (the same bytes `GeneratedClip.save` writes for
        the same frames), then the ground truth beside it, with `truth_defaults` for keys it lacks."""
        video = check_output_path(path)
        truth = video.with_suffix(".json")
        write_frames(video, self.chunks(), fps=self.fps, audio=self.audio, sample_rate=self.sample_rate,
                     encoder_threads=encoder_threads, bitrate=bitrate)
        record = self.ground_truth
        for key, value in (truth_defaults or {}).items():
            record.setdefault(key, value)
        write_json(truth, record)
        return video, truth


def write_json(path: Path, data: dict) -> None:
    write_json_atomic(path, data, indent=1)


TAKES = ("photo", "clip")


@runtime_checkable
class Generator(Protocol):
    name: str
    description: str

    def generate(self, image: np.ndarray, audio: np.ndarray, sample_rate: int, *, seed: int = 0) -> GeneratedClip:
        """One photo (H, W, 3) uint8 RGB and mono audio -> a talking clip with the audio muxed."""
        ...


GENERATORS = Registry("generator", "fakebench.generators")
register = GENERATORS.register

# Options several photo generators share.
FPS_OPTION = Option("fps", float, 25.0, min=1.0, max=120.0, help="output frame rate")
# A phone photo is 4000x3000 or more: animated at that size it costs a minute and gigabytes and makes an H.264
# level (6.0) browsers do not play. Photos are shrunk to this longer side unless told otherwise (8192 keeps
# any photo up to 8192 px at its own size).
DEFAULT_MAX_SIDE = 1024
MAX_SIDE_OPTION = Option("max_side", int, DEFAULT_MAX_SIDE, min=64, max=8192,
                         help="shrink the photo so its longer side is at most this many pixels (8192 keeps "
                              "the photo's own size)")
# The face of a photo is analysed (landmarks) at no more than this longer side, or at the output size when
# that is larger: never at a phone photo's full size, never at less than a small `max_side` would leave.
ANALYSIS_MAX_SIDE = 1024


class GeneratorBase:
    """The generator contract, as data on the class; a generator subclasses this and overrides what applies.

    - ``takes``: "photo" (``generate(image, audio, sample_rate, *, seed)``) or "clip" (``from_clip(clip, *, seed,
      other_audio=None, other_sample_rate=None, audio_source=None)``: a real clip manipulated).
    - ``options``: the `Option` s its constructor takes, with their valid ranges; ``__init__(**options)`` checks
      them with `check_options` (the shared validator), once.
    - ``min_audio_s``: the shortest driving audio it accepts (`check_audio_length`).
    - ``weights``: names (in `fakebench.weights`) of the model weights it needs; ``check_available`` says
      whether they are found.
    - ``preload``: modules a worker process should import ahead of time (beside the generator's own module).
    - ``default_rank``: where it comes in default lists (lower first); ``reference_ok``: its clips may stand
      in for real ones where no real video exists (the offline demo corpus).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    takes: ClassVar[str] = "photo"
    options: ClassVar[tuple[Option, ...]] = ()
    min_audio_s: ClassVar[float] = 0.1
    weights: ClassVar[tuple[str, ...]] = ()
    preload: ClassVar[tuple[str, ...]] = ()
    default_rank: ClassVar[int] = 100
    reference_ok: ClassVar[bool] = False
    # The corpus build cuts a few frames from one end of each real clip; a generator that sets this gets, in
    # ``fake_from_source(..., surround=(uncut clip, first kept frame))``, the clip before that cut.
    uses_surround: ClassVar[bool] = False

    @classmethod
    def check_options(cls, values: Mapping[str, Any], *, flags: Mapping[str, str] | None = None) -> dict[str, Any]:
        """`values` checked against ``options``: every declared option, defaults filled in; ConfigError naming
        the flag otherwise (also for an option this generator does not take)."""
        return validate_options(cls.name, cls.options, values, flags=flags, flag_of=GENERATORS.flag_of)

    @classmethod
    def check_available(cls, **options: Any) -> str | None:
        """Why this generator cannot run with `options` now (e.g. missing weights), or None."""
        return None

    @classmethod
    def check_audio_length(cls, n_samples: int, sample_rate: int, what: str = "the audio") -> None:
        """AudioError unless the audio lasts at least ``min_audio_s``."""
        seconds = n_samples / sample_rate if sample_rate > 0 else 0.0
        if seconds < cls.min_audio_s:
            raise AudioError(f"{what} is {seconds * 1000:.0f} ms long, shorter than the {cls.min_audio_s:g} s "
                             f"{cls.name} needs; give at least {cls.min_audio_s:g} s of speech")

    @classmethod
    def source_options(cls, source: Clip, offered: Mapping[str, Any]) -> dict[str, Any]:
        """The options for making fakes from the real corpus clip `source`: those of `offered` (build-wide
        options such as a checkpoint or a device) that this generator declares, and, when it declares ``fps``,
        the source's frame rate, so that a fake has the frame rate of the real clip it imitates; when it declares
        ``max_side`` (and `offered` does not set it), the source's longer side, so that it has its size too."""
        declared = {o.name for o in cls.options}
        chosen = {k: v for k, v in offered.items() if k in declared}
        if "fps" in declared:
            chosen["fps"] = source.fps
        if "max_side" in declared and "max_side" not in chosen:  # a fake as large as the real clip it imitates
            chosen["max_side"] = min(max(source.width, source.height, 64), 8192)
        return chosen

    def fake_from_source(self, source: Clip, audio: np.ndarray, sample_rate: int, *, seed: int,
                         audio_source: str | None = None,
                         identity_frame: Callable[[], tuple[int, np.ndarray, float]] | None = None) -> GeneratedClip:
        """One fake of the real corpus clip `source`, driven by `audio` (the clip's own when ``audio_source`` is
        None, else that clip's). A photo generator animates the clip's best frame (``identity_frame()`` gives
        (index, photo, quality score); by default it is chosen from `source`); a clip generator overrides this."""
        if self.takes != "photo":
            raise NotImplementedError(f"{self.name} takes a {self.takes}: it must define fake_from_source")
        if identity_frame is None:
            from fakebench.faces import choose_identity_frame

            index, photo, score = choose_identity_frame(source)
        else:
            index, photo, score = identity_frame()
        self.check_audio_length(np.asarray(audio).shape[0], sample_rate, "the driving audio")
        made = self.generate(photo, audio, sample_rate, seed=seed)
        made.ground_truth["identity_frame"] = {"index": index, "quality_score": round(score, 4)}
        return made


def available(**options: Any) -> dict[str, Entry]:
    """Generator name -> its registry entry (description, ``unavailable`` reason or None), sorted by name.

    ``options`` (e.g. ``checkpoint=``) go to the generators that declare them, to check their weights."""
    return GENERATORS.available(**options)


def create(name: str, **options: Any) -> Generator:
    """The generator `name` made with `options` (validated by it); ConfigError for an unknown name."""
    return GENERATORS.create(name, **options)


def default_generator(takes: str = "photo") -> str:
    """The first generator in default order (``default_rank``) that takes `takes` and can run now."""
    names = [n for n in GENERATORS.names() if getattr(GENERATORS.get(n), "takes", "photo") == takes]
    for name in names:
        if GENERATORS.unavailable_reason(name) is None:
            return name
    raise ConfigError(f"no generator that takes a {takes} can run here: "
                      + "; ".join(f"{n}: {GENERATORS.unavailable_reason(n)}" for n in names))


def photo_generators() -> list[str]:
    """The registered generators that animate a photo, in default order."""
    return [n for n in GENERATORS.names() if getattr(GENERATORS.get(n), "takes", "photo") == "photo"]


# ---------------------------------------------------------------------------------------------- files

@dataclass(frozen=True)
class GenerationResult:
    video: Path
    ground_truth: Path
    n_frames: int
    fps: float
    width: int
    height: int
    seconds: float


def generate_file(name: str, output: str | os.PathLike, *, image: str | os.PathLike | None = None,
                  video: str | os.PathLike | None = None, audio: str | os.PathLike | None = None, seed: int = 0,
                  options: Mapping[str, Any] | None = None,
                  flags: Mapping[str, str] | None = None) -> GenerationResult:
    """Make one fake from files: the library call behind `fakebench generate`.

    A photo generator takes `image` and `audio`; a clip generator takes `video` (and, optionally, `audio` to
    replace the clip's own). Writes OUTPUT (mp4 with the driving audio muxed) and OUTPUT.json (ground truth).
    A generator with ``generate_stream`` has its frames encoded as they are made (bounded memory; the result's
    ``seconds`` then include the encoding).
    `options` go to the generator, which validates them before any file is read; ``flags`` names the
    command-line flag each option came from, for the error messages.
    """
    import time

    from fakebench.media import read_audio, read_clip, read_image

    plugin = GENERATORS.get(name)
    seed = check_seed(seed)
    options = dict(options or {})
    plugin.check_options(options, flags=flags)
    takes = getattr(plugin, "takes", "photo")
    if takes == "photo":
        if video is not None:
            raise ConfigError(f"--video does not apply to {name}: it animates a photo; give --image PHOTO and "
                              "--audio AUDIO")
        if image is None or audio is None:
            raise ConfigError(f"--generator {name} needs --image PHOTO and --audio AUDIO")
    elif takes == "clip":
        if image is not None:
            raise ConfigError(f"--image does not apply to {name}: it changes a real clip; give --video CLIP")
        if video is None:
            raise ConfigError(f"--generator {name} needs --video CLIP")
    else:
        raise ConfigError(f"generator {name} declares takes={takes!r}; a generator takes one of {', '.join(TAKES)}")
    out = check_output_path(output)
    if takes == "photo":
        photo = read_image(image)
        samples, rate = read_audio(audio)
        plugin.check_audio_length(samples.shape[0], rate)
        gen = plugin(**options)
        t0 = time.perf_counter()
        inputs = {"image": str(image), "audio": str(audio)}
        if hasattr(gen, "generate_stream"):  # frames encoded as they are made: memory bounded however long
            stream = gen.generate_stream(photo, samples, rate, seed=seed)
            del photo, samples
            path, truth = stream.save(out, truth_defaults={"inputs": inputs})
            return GenerationResult(path, truth, stream.n_frames, stream.fps, stream.width, stream.height,
                                    time.perf_counter() - t0)
        made = gen.generate(photo, samples, rate, seed=seed)
    else:
        clip = read_clip(video)
        other = {}
        if audio is not None:
            samples, rate = read_audio(audio)
            other = {"other_audio": samples, "other_sample_rate": rate, "audio_source": str(audio)}
        gen = plugin(**options)
        t0 = time.perf_counter()
        made = gen.from_clip(clip, seed=seed, **other)
        inputs = {"video": str(video)} if audio is None else {"video": str(video), "audio": str(audio)}
    seconds = time.perf_counter() - t0
    made.ground_truth.setdefault("inputs", inputs)
    path, truth = made.save(out)
    return GenerationResult(path, truth, made.clip.n_frames, made.clip.fps, made.clip.width, made.clip.height,
                            seconds)


@dataclass(frozen=True, eq=False)
class SizedPhoto:
    """A photo shrunk for a generator: the copy its face is analysed on, and the size its frames will have.

    ``analysis`` is the photo at ``analysis_size`` (the original array when that is its own size); the
    frames are ``output_size``. Both fit `ANALYSIS_MAX_SIDE` / ``max_side``: no work is done on a phone
    photo's 12 million pixels beyond the one resize."""

    original: np.ndarray
    analysis: np.ndarray
    output_size: tuple[int, int]  # (width, height)

    @property
    def original_size(self) -> tuple[int, int]:
        return self.original.shape[1], self.original.shape[0]

    @property
    def analysis_size(self) -> tuple[int, int]:
        return self.analysis.shape[1], self.analysis.shape[0]

    def scale(self, frm: tuple[int, int], to: tuple[int, int]) -> float:
        """How much a length shrinks from size `frm` to size `to` (the smaller of the two axes' factors)."""
        return min(to[0] / frm[0], to[1] / frm[1])

    def to_output(self, points: np.ndarray) -> np.ndarray:
        """Pixel coordinates (x, y) in the analysis copy -> the same points in the output frame."""
        if self.output_size == self.analysis_size:
            return np.asarray(points, np.float64)
        scale = np.array([self.output_size[0] / self.analysis_size[0], self.output_size[1] / self.analysis_size[1]])
        return (np.asarray(points, np.float64) + 0.5) * scale - 0.5

    def affine_to_output(self) -> np.ndarray:
        """(2, 3): analysis pixel (x, y, 1) -> output pixel (x, y), as `to_output`."""
        sx, sy = (self.output_size[i] / self.analysis_size[i] for i in (0, 1))
        return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]])

    def output(self) -> np.ndarray:
        """The photo at the output size (resized from the original, Lanczos)."""
        if self.output_size == self.analysis_size:
            return self.analysis
        return resize_photo(self.original, self.output_size)


def size_photo(rgb: np.ndarray, max_side: int | None) -> SizedPhoto:
    """`rgb` (H, W, 3) uint8 with its output size (longer side at most `max_side`; None keeps it) and the copy
    to analyse, at the larger of the output size and `ANALYSIS_MAX_SIDE` (never larger than the photo)."""
    from fakebench.media import scaled_size

    h, w = rgb.shape[:2]
    out = scaled_size(w, h, max_side)
    analysis = scaled_size(w, h, None if max_side is None else max(max_side, ANALYSIS_MAX_SIDE))
    return SizedPhoto(original=rgb, analysis=rgb if analysis == (w, h) else resize_photo(rgb, analysis),
                      output_size=out)


def resize_photo(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 resized to ``size`` = (width, height) with a Lanczos filter."""
    from PIL import Image

    return np.asarray(Image.fromarray(rgb).resize(size, Image.LANCZOS), dtype=np.uint8)


def n_output_frames(n_samples: int, sample_rate: int, fps: float) -> int:
    """round(audio duration x fps): the frame count every photo-driven generator produces."""
    return max(1, int(round(n_samples / sample_rate * fps)))
