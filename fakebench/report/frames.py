"""Sample frames for the report: one decoded frame of a corpus clip (its middle one by default), shrunk."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fakebench.errors import FakebenchError

MAX_SIDE = 224


def clip_frame(path: Path, *, fps: float | None = None, duration_s: float | None = None,
               frame: int | None = None, max_side: int = MAX_SIDE) -> np.ndarray | None:
    """Frame ``frame`` (default: the middle one) of the clip at ``path`` as RGB uint8, at most ``max_side``
    pixels on its longer side; None when the file is missing or cannot be decoded."""
    from fakebench.media import iter_frames, probe

    try:
        if fps is None or duration_s is None or not fps > 0 or not duration_s > 0:
            info = probe(path)
            fps = fps if fps and fps > 0 else info.fps
            duration_s = duration_s if duration_s and duration_s > 0 else info.duration_s
        fps = float(fps or 25.0)
        start = frame / fps if frame is not None else max(0.0, float(duration_s or 0.0) / 2.0)
        for chunk in iter_frames(path, start_s=start, duration_s=2.0 / fps, max_side=max_side, chunk_frames=2):
            if len(chunk):
                return np.ascontiguousarray(chunk[0])
        if start > 0:  # past the end (a frame index beyond the clip): its first frame instead
            for chunk in iter_frames(path, duration_s=2.0 / fps, max_side=max_side, chunk_frames=2):
                if len(chunk):
                    return np.ascontiguousarray(chunk[0])
    except (FakebenchError, OSError, ValueError):
        return None
    return None
