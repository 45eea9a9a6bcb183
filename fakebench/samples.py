"""Sample: one clip with its labels, whose decoded `Clip` and `FaceTrack` come from ONE decode of the file.

``sample.clip`` decodes the file once (`fakebench.media.read_clip`: one container open for the video, the
audio and the container facts); ``sample.track`` is the face analysis of that decoded clip, cached on disk
under the file's content hash (`fakebench.faces.file_content_key`), the same entry ``analyze(path)`` uses.
A corpus clip whose dataset keeps the audio apart (its manifest's ``audio_path``) carries that audio. The
file is hashed once per Sample. With a warm cache ``sample.track`` needs no decoding at all, so code that
only needs tracks (or needs the track first, to choose frames) decodes nothing it does not use.

Both are computed lazily and kept on the Sample; a Sample is otherwise a value (frozen). Metrics, detectors and
perturbations take Samples. Build them with `Sample.from_path`, `samples_from_paths`, `Sample.from_clip` (a
clip in memory) or `fakebench.corpus.manifest.Corpus.samples`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fakebench.faces import AnalysisOptions, FaceTrack, analyze, cached_track, file_content_key
from fakebench.media import Clip, read_audio, read_clip


@dataclass(frozen=True, eq=False)
class Sample:
    """One clip: ``clip_id``, ``path`` (None for a clip in memory), ``label`` (real|fake or ""), ``identity``,
    ``split`` and free ``meta``; ``clip`` and ``track`` decoded and analysed on first use, once."""

    clip_id: str
    path: Path | None
    label: str = ""
    identity: str = ""
    split: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)
    options: AnalysisOptions | None = field(default=None, repr=False)
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def from_path(cls, path: str | os.PathLike, *, clip_id: str | None = None, label: str = "",
                  identity: str = "", split: str = "", meta: Mapping[str, Any] | None = None,
                  options: AnalysisOptions | None = None) -> Sample:
        p = Path(path)
        return cls(clip_id=clip_id or p.stem, path=p, label=label, identity=identity, split=split,
                   meta=dict(meta or {}), options=options)

    @classmethod
    def from_clip(cls, clip: Clip, *, clip_id: str = "clip", track: FaceTrack | None = None, label: str = "",
                  identity: str = "", split: str = "", meta: Mapping[str, Any] | None = None,
                  options: AnalysisOptions | None = None) -> Sample:
        """A Sample of a clip in memory (its track given, or analysed on first use by its content hash)."""
        sample = cls(clip_id=clip_id, path=None, label=label, identity=identity, split=split,
                     meta=dict(meta or {}), options=options)
        sample._cache["clip"] = clip
        if track is not None:
            sample._cache["track"] = track
        return sample

    @property
    def name(self) -> str:
        """The path as given (for messages and result rows), else the clip id."""
        return str(self.path) if self.path is not None else self.clip_id

    @property
    def content_key(self) -> str | None:
        """The file's analysis cache key (its SHA-256, hashed once per Sample); None for a clip in memory."""
        if self.path is None:
            return None
        if "key" not in self._cache:
            self._cache["key"] = file_content_key(self.path)
        return self._cache["key"]

    @property
    def clip(self) -> Clip:
        """The decoded clip: frames at a constant rate and mono audio (decoded once, then kept). A corpus clip
        whose audio is a separate file (``meta["audio_path"]``) carries that file's audio."""
        if "clip" not in self._cache:
            clip = read_clip(self.path)
            audio_path = self.meta.get("audio_path")
            if isinstance(audio_path, str | os.PathLike) and str(audio_path):
                clip = clip.with_audio(*read_audio(audio_path))
            self._cache["clip"] = clip
        return self._cache["clip"]

    @property
    def track(self) -> FaceTrack:
        """The face track: from the disk cache when there is one (no decoding), else analysed from ``clip``."""
        if "track" not in self._cache:
            key = self.content_key
            track = None
            if key is not None and "clip" not in self._cache:
                track = cached_track(key, options=self.options, label=self.name)
            if track is None:
                track = analyze(self.clip, options=self.options, content_key=key,
                                label=self.name if key is not None else None)
            self._cache["track"] = track
        return self._cache["track"]

    @property
    def is_loaded(self) -> bool:
        return "clip" in self._cache

    @property
    def has_track(self) -> bool:
        """Whether the face track is already known (given or computed), so reading ``track`` costs nothing."""
        return "track" in self._cache

    def release(self, *, track: bool = False) -> None:
        """Forget the decoded clip, to bound memory over a long list of Samples. With ``track`` also the face track
        when it can be had again (a file's track comes back from the analysis cache); a track given with an
        in-memory clip is kept."""
        self._cache.pop("clip", None)
        if track and self.path is not None:
            self._cache.pop("track", None)


def samples_from_paths(paths: Iterable[str | os.PathLike], **fields: Any) -> list[Sample]:
    """One Sample per path (``clip_id`` the file's stem); ``fields`` (label, identity, split, …) apply to all."""
    return [Sample.from_path(p, **fields) for p in paths]
