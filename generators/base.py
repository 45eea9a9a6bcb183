"""The Generator protocol, its registry, and the generated clip with its ground truth.

A generator turns one photo and one audio signal into a talking clip (`generate`), or, for
video-driven generators such as `desync`, one real clip into a manipulated one (`from_clip`). Every
generated clip carries a ground-truth record of what the generator put in (mouth opening per frame,
blink intervals, head pose, audio offset: whatever applies), saved beside the video as JSON.

Generators register by name with `@register("name")`, as timm registers models: adding a generator
is adding one file.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from fakebench.errors import ConfigError
from fakebench.media import ENCODER_THREADS, Clip, check_output_path, write_clip


@dataclass(eq=False)
class GeneratedClip:
    clip: Clip
    ground_truth: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | os.PathLike, *, encoder_threads: int = ENCODER_THREADS) -> tuple[Path, Path]:
        """Write the mp4 and its ground truth next to it (same name, .json). Returns both paths."""
        video = check_output_path(path)
        truth = video.with_suffix(".json")
        write_clip(video, self.clip, encoder_threads=encoder_threads)
        write_json(truth, self.ground_truth)
        return video, truth


def write_json(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(to_jsonable(data), f, indent=1)
    os.replace(tmp, path)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, np.bool_):
        return bool(value)
    return value


@runtime_checkable
class Generator(Protocol):
    name: str
    description: str

    def generate(self, image: np.ndarray, audio: np.ndarray, sample_rate: int, *, seed: int = 0) -> GeneratedClip:
        """One photo (H, W, 3) uint8 RGB and mono audio -> a talking clip with the audio muxed."""
        ...


_REGISTRY: dict[str, Callable[..., Generator]] = {}


def register(name: str) -> Callable[[type], type]:
    def add(cls: type) -> type:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"generator {name!r} is registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return add


BUILTIN = ("sda", "warp", "static", "desync")


def _load_builtin() -> None:
    # Importing the modules fills the registry; kept lazy so `import fakebench` stays light.
    for module in BUILTIN:
        importlib.import_module(f"fakebench.generators.{module}")


def available() -> dict[str, str]:
    """Generator name -> one-line description."""
    _load_builtin()
    return {name: getattr(cls, "description", "") for name, cls in sorted(_REGISTRY.items())}


def create(name: str, **options: Any) -> Generator:
    _load_builtin()
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown generator {name!r}; choose one of {', '.join(sorted(_REGISTRY))}") from None
    return cls(**options)


def n_output_frames(n_samples: int, sample_rate: int, fps: float) -> int:
    """round(audio duration x fps): the frame count every photo-driven generator produces."""
    return max(1, int(round(n_samples / sample_rate * fps)))
