"""fakebench: a benchmark suite for speech-driven talking-face deepfakes.

The curated Python API (everything else lives in the submodules)::

    import fakebench as fb

    clip = fb.read_clip("talk.mp4")                      # Clip: frames (T, H, W, 3) uint8, fps, audio, sample_rate
    track = fb.analyze(clip)                             # FaceTrack: boxes and 68 landmarks per frame (cached)
    fake = fb.GENERATORS.create("warp").generate(photo, audio, sample_rate, seed=0)
    corpus = fb.load_corpus("corpus/")                   # Corpus: manifest + media
    rows = fb.measure(["talk.mp4"], metrics=("sync", "blink"))
    print(fb.compare("real/", "fake/"))

Names are imported on first use, so ``import fakebench`` is quick and does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> (module, attribute)
_API: dict[str, tuple[str, str]] = {
    "Clip": ("fakebench.media", "Clip"),
    "read_clip": ("fakebench.media", "read_clip"),
    "write_clip": ("fakebench.media", "write_clip"),
    "read_audio": ("fakebench.media", "read_audio"),
    "FaceTrack": ("fakebench.faces", "FaceTrack"),
    "analyze": ("fakebench.faces", "analyze"),
    "Sample": ("fakebench.samples", "Sample"),
    "Corpus": ("fakebench.corpus.manifest", "Corpus"),
    "load_corpus": ("fakebench.corpus.manifest", "load_corpus"),
    "measure": ("fakebench.metrics.measure", "measure_clips"),
    "compare": ("fakebench.metrics.measure", "compare_sets"),
    "GENERATORS": ("fakebench.generators.base", "GENERATORS"),
    "available_metrics": ("fakebench.metrics.registry", "available"),
    "FakebenchError": ("fakebench.errors", "FakebenchError"),
}

__all__ = ["GENERATORS", "Clip", "Corpus", "FaceTrack", "FakebenchError", "Sample", "__version__", "analyze",
           "available_metrics", "compare", "load_corpus", "measure", "read_audio", "read_clip", "write_clip"]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fakebench")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value = _version()
    elif name in _API:
        module, attribute = _API[name]
        value = getattr(importlib.import_module(module), attribute)
    else:
        raise AttributeError(f"module 'fakebench' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily above
    from fakebench.corpus.manifest import Corpus, load_corpus
    from fakebench.errors import FakebenchError
    from fakebench.faces import FaceTrack, analyze
    from fakebench.generators.base import GENERATORS
    from fakebench.media import Clip, read_audio, read_clip, write_clip
    from fakebench.metrics.measure import compare_sets as compare
    from fakebench.metrics.measure import measure_clips as measure
    from fakebench.metrics.registry import available as available_metrics
    from fakebench.samples import Sample
