"""Face analysis, once per clip: MTCNN detection on key frames, tracking between them, dlib 68 landmarks.

How a frame is analysed: the previous frame's landmarks (or, on a key frame, MTCNN's five points)
give a similarity transform that brings the face upright into a canonical crop where the face sits
in the box dlib's landmark model was trained on; dlib predicts there and the points are mapped back.
This makes landmarks follow rotation and scale of the head, not just translation. Each frame's
landmarks get a plausibility error (RMS distance to the mean face after similarity alignment, in
inter-ocular units); a high error or a lost face triggers a new detection.

`analyze()` caches the whole `FaceTrack` on disk keyed by the SHA-256 of the media bytes (or of
the decoded clip) plus `ANALYSIS_VERSION` and the options, under ``$FAKEBENCH_CACHE``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import threading
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from fakebench.errors import InputFileError, MediaError, NoFaceError, WeightsError
from fakebench.io import atomic_write
from fakebench.media import Clip, file_sha256, iter_frames, probe
from fakebench.weights import KNOWN_WEIGHTS, find_weight

# Part of every cache key: change it whenever the analysis can give different numbers for the same media, or
# tracks cached by the old code are served as if new. faces-2: the NumPy MTCNN (detections differ from
# facenet-pytorch's in the last digits, and so do the landmarks that start from them).
ANALYSIS_VERSION = "faces-2"

# iBUG 68-point index groups.
JAW = slice(0, 17)
RIGHT_EYE = slice(36, 42)  # the subject's right eye: on the left of the image
LEFT_EYE = slice(42, 48)
MOUTH = slice(48, 68)
NOSE_TIP = 30
RIGID_POINTS = np.array([27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 39, 42, 45])
MIRROR_68 = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48] + [59, 58, 57, 56, 55] + [64, 63, 62, 61, 60] + [67, 66, 65]
)

CANON_SIZE = 224  # canonical crop side in pixels
MIRROR_AVERAGE = True
CANON_BOX = (48.0, 48.0, 128.0)  # left, top, side of dlib's box inside the canonical crop


# ---------------------------------------------------------------------------------------------- models

def landmark_model_path() -> Path:
    return _face_models_dir() / "shape_predictor_68_face_landmarks.dat"


def _face_models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("dlib's landmark model is missing: install the package face_recognition_models "
                           "(pip install face_recognition_models)")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


_predictor: list = []  # dlib's shape predictor once loaded (one per process)
_predictor_lock = threading.Lock()


def _shape_predictor():
    """dlib's 68-landmark model, read once per process (about 0.5 s); thread-safe."""
    if not _predictor:
        with _predictor_lock:
            if not _predictor:
                import dlib

                path = landmark_model_path()
                if not path.is_file():
                    raise WeightsError(f"dlib 68-landmark model not found at {path}; "
                                       "reinstall face_recognition_models")
                _predictor.append(dlib.shape_predictor(str(path)))
    return _predictor[0]


def _new_predictor_lock() -> None:  # a child forked while the loader thread held the lock gets a free one
    global _predictor_lock
    _predictor_lock = threading.Lock()


os.register_at_fork(after_in_child=_new_predictor_lock)


def _start_loading_shape_predictor() -> None:
    """Read dlib's model in a background thread while the caller decodes frames and detects faces.

    dlib parses the file without holding the GIL, so on two cores this hides most of its half second.
    A failure is left to the caller's own `_shape_predictor()` call, which raises it.
    """
    if _predictor or _predictor_lock.locked():
        return

    def load() -> None:
        try:
            _shape_predictor()
        except Exception:  # noqa: BLE001, S110 - reported by the caller's own call
            pass

    threading.Thread(target=load, name="fakebench-dlib-model", daemon=True).start()


@cache
def _mtcnn(min_face_size: int):
    """fakebench's NumPy MTCNN with facenet-pytorch's weights: neither torch nor facenet_pytorch is imported."""
    from fakebench.mtcnn import MTCNN

    return MTCNN(min_face_size=min_face_size)


@cache
def mean_face() -> np.ndarray:
    """The 68-point mean face (float32 (68, 2)) in dlib-box coordinates: the box is [0, 1]^2."""
    return np.load(Path(__file__).parent / "data" / "mean_face_68.npy")


@cache
def _canonical_shape() -> np.ndarray:
    left, top, side = CANON_BOX
    return (mean_face().astype(np.float64) * side + [left, top]).astype(np.float64)


# ---------------------------------------------------------------------------------------------- geometry

def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) taking src points to dst: (2, 3)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var = (s**2).sum()
    if var <= 1e-12:
        raise ValueError("degenerate point set")
    a = (s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1]).sum() / var
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / var
    rot = np.array([[a, -b], [b, a]])
    return np.hstack([rot, (mu_d - rot @ mu_s)[:, None]])


def apply_transform(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def invert_transform(m: np.ndarray) -> np.ndarray:
    rot_inv = np.linalg.inv(m[:, :2])
    return np.hstack([rot_inv, (-rot_inv @ m[:, 2])[:, None]])


def inter_ocular(landmarks: np.ndarray) -> np.ndarray:
    """Distance between the two eye centres, for (68, 2) or (T, 68, 2) landmarks."""
    lm = np.asarray(landmarks)
    return np.linalg.norm(lm[..., RIGHT_EYE, :].mean(-2) - lm[..., LEFT_EYE, :].mean(-2), axis=-1)


def shape_error(landmarks: np.ndarray) -> float:
    """RMS distance of the landmarks to the mean face after similarity alignment, in inter-ocular units."""
    ref = _canonical_shape()
    m = similarity_transform(landmarks, ref)
    aligned = apply_transform(m, landmarks)
    iod = float(inter_ocular(ref))
    return float(np.sqrt(((aligned - ref) ** 2).sum(1).mean()) / iod)


def box_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """The face box (x0, y0, x1, y1) implied by the landmarks: dlib's box, mapped through the alignment."""
    m = invert_transform(similarity_transform(landmarks[RIGID_POINTS], _canonical_shape()[RIGID_POINTS]))
    left, top, side = CANON_BOX
    corners = apply_transform(m, np.array([[left, top], [left + side, top], [left, top + side],
                                           [left + side, top + side]]))
    return np.concatenate([corners.min(0), corners.max(0)]).astype(np.float32)


# ---------------------------------------------------------------------------------------------- landmarks

def _five_point_template() -> np.ndarray:
    c = _canonical_shape()
    return np.stack([c[RIGHT_EYE].mean(0), c[LEFT_EYE].mean(0), c[NOSE_TIP], c[48], c[54]])


def _predict_canonical(gray, to_canon: np.ndarray) -> np.ndarray:
    """Warp the face upright into the canonical crop, run dlib there, map the 68 points back."""
    import dlib
    from PIL import Image

    inv = invert_transform(to_canon)  # canonical index coords -> frame index coords
    a, b, c = inv[0]
    d, e, f = inv[1]
    # PIL samples input (x+0.5, y+0.5)-centred; shift so index coordinates map exactly.
    coeffs = (a, b, c + 0.5 * (a + b) - 0.5, d, e, f + 0.5 * (d + e) - 0.5)
    crop = np.asarray(gray.transform((CANON_SIZE, CANON_SIZE), Image.AFFINE, coeffs, resample=Image.BILINEAR))
    left, top, side = CANON_BOX
    rect = dlib.rectangle(int(left), int(top), int(left + side), int(top + side))
    pts = _dlib_points(crop, rect)
    if MIRROR_AVERAGE:
        # Averaging with the prediction on the mirrored crop cancels much of dlib's left/right bias.
        right = CANON_SIZE - 1 - int(left)
        mirrored_rect = dlib.rectangle(right - int(side), int(top), right, int(top + side))
        flipped = _dlib_points(np.ascontiguousarray(crop[:, ::-1]), mirrored_rect)[MIRROR_68]
        flipped[:, 0] = CANON_SIZE - 1 - flipped[:, 0]
        pts = (pts + flipped) / 2
    return apply_transform(inv, pts)


def _dlib_points(crop: np.ndarray, rect) -> np.ndarray:
    shape = _shape_predictor()(crop, rect)
    return np.array([(p.x, p.y) for p in shape.parts()], np.float64)


def landmarks_from_five_points(gray, five: np.ndarray, refine: int = 2) -> np.ndarray:
    m = similarity_transform(five, _five_point_template())
    lm = _predict_canonical(gray, m)
    for _ in range(refine):
        lm = refine_landmarks(gray, lm)
    return lm


def refine_landmarks(gray, previous: np.ndarray) -> np.ndarray:
    m = similarity_transform(previous[RIGID_POINTS], _canonical_shape()[RIGID_POINTS])
    return _predict_canonical(gray, m)


# ---------------------------------------------------------------------------------------------- the track

@dataclass
class FaceTrack:
    """One subject's face through a clip: per frame a box, score, 68 landmarks and a valid flag."""

    boxes: np.ndarray  # (T, 4) float32 x0, y0, x1, y1
    scores: np.ndarray  # (T,) float32 detection confidence of the face being tracked
    landmarks: np.ndarray  # (T, 68, 2) float32 (x, y), iBUG order; NaN where no face
    valid: np.ndarray  # (T,) bool
    n_faces: np.ndarray  # (T,) int16 faces seen by the latest detection
    detected: np.ndarray  # (T,) bool: MTCNN ran on this frame
    shape_errors: np.ndarray  # (T,) float32 landmark plausibility (see `shape_error`)
    fps: float
    width: int
    height: int
    meta: dict = field(default_factory=dict)

    ARRAYS = ("boxes", "scores", "landmarks", "valid", "n_faces", "detected", "shape_errors")

    @property
    def n_frames(self) -> int:
        return int(self.valid.shape[0])

    @property
    def face_frames(self) -> int:
        return int(self.valid.sum())

    @property
    def faces_max(self) -> int:
        return int(self.n_faces.max()) if self.n_frames else 0

    @property
    def landmark_ok_ratio(self) -> float:
        return float(self.valid.mean()) if self.n_frames else 0.0

    def require_face(self, what: str = "this step", min_ratio: float = 0.0) -> None:
        if self.face_frames == 0 or self.landmark_ok_ratio < min_ratio:
            src = self.meta.get("source", "the clip")
            raise NoFaceError(f"no usable face in {src} ({self.face_frames}/{self.n_frames} frames with a face); "
                              f"{what} needs a clearly visible frontal face")

    def summary(self) -> dict:
        return {
            "frames": self.n_frames,
            "fps": round(self.fps, 3),
            "width": self.width,
            "height": self.height,
            "face_frames": self.face_frames,
            "faces_max": self.faces_max,
            "landmark_ok_ratio": round(self.landmark_ok_ratio, 4),
            "mean_shape_error": round(float(np.nanmean(self.shape_errors[self.valid])), 4)
            if self.face_frames else None,
        }

    # -- crops ------------------------------------------------------------------------------------

    def aligned_faces(self, frames: np.ndarray, size: tuple[int, int] = (128, 128), *,
                      template: np.ndarray | None = None, start: int = 0) -> np.ndarray:
        """Similarity-aligned face crops (N, h, w, 3) for frames[start:start+N] (see `align_faces`)."""
        return align_faces(frames, self.landmarks[start:start + len(frames)], size, template=template)

    def mouth_crops(self, frames: np.ndarray, size: tuple[int, int] = (48, 96), *, start: int = 0) -> np.ndarray:
        return region_crops(frames, self.landmarks[start:start + len(frames)], MOUTH, size, margin=0.35)

    def eye_crops(self, frames: np.ndarray, size: tuple[int, int] = (32, 48), *,
                  start: int = 0) -> tuple[np.ndarray, np.ndarray]:
        lm = self.landmarks[start:start + len(frames)]
        return (region_crops(frames, lm, RIGHT_EYE, size, margin=0.6),
                region_crops(frames, lm, LEFT_EYE, size, margin=0.6))

    # -- storage ----------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        arrays = {k: getattr(self, k) for k in self.ARRAYS}
        header = {"fps": self.fps, "width": self.width, "height": self.height, "meta": self.meta,
                  "checksum": _arrays_checksum(arrays)}
        atomic_write(path, lambda f: np.savez(f, header=np.array(json.dumps(header)), **arrays))

    @classmethod
    def load(cls, path: str | os.PathLike) -> FaceTrack:
        """Load a saved track; raises ValueError if the file is damaged or inconsistent."""
        try:
            with np.load(path, allow_pickle=False) as z:
                header = json.loads(str(z["header"]))
                arrays = {k: z[k] for k in cls.ARRAYS}
        except (OSError, KeyError, ValueError, zipfile.BadZipFile, json.JSONDecodeError, EOFError) as e:
            raise ValueError(f"unreadable face track {path}: {e}") from e
        if header.get("checksum") != _arrays_checksum(arrays):
            raise ValueError(f"face track {path} fails its checksum")
        t = arrays["valid"].shape[0]
        if any(a.shape[0] != t for a in arrays.values()) or arrays["landmarks"].shape[1:] != (68, 2):
            raise ValueError(f"face track {path} has inconsistent shapes")
        return cls(**arrays, fps=header["fps"], width=header["width"], height=header["height"],
                   meta=header["meta"])


def _arrays_checksum(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}|{a.dtype.str}|{a.shape}".encode())
        h.update(a.data)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------- crops

def align_faces(frames: np.ndarray, landmarks: np.ndarray, size: tuple[int, int] = (128, 128), *,
                template: np.ndarray | None = None, points: np.ndarray | None = None) -> np.ndarray:
    """Warp each frame so its landmarks match `template` (68x2 pixel coords in the (h, w) output).

    The transform is the least-squares similarity on the stable points (default: nose tip and the
    eye corners, [33, 36, 39, 42, 45], as the speech-driven animation GAN aligns). The default
    template is fakebench's mean face filling the crop. Frames without landmarks come out black.
    One batched bilinear `grid_sample` does all frames.
    """
    import torch
    import torch.nn.functional as F

    h, w = size
    if template is None:
        template = default_template(size)
    points = np.array([33, 36, 39, 42, 45]) if points is None else points
    frames = np.asarray(frames)
    n = len(frames)
    if n == 0:
        return np.zeros((0, h, w, 3), np.uint8)
    theta = np.zeros((n, 2, 3), np.float64)
    ok = np.isfinite(landmarks[:, points]).all(axis=(1, 2))
    H, W = frames.shape[1:3]
    for i in np.flatnonzero(ok):
        inv = invert_transform(similarity_transform(landmarks[i, points], template[points]))
        theta[i] = _pixel_to_normalised(inv, (h, w), (H, W))
    src = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    grid = F.affine_grid(torch.from_numpy(theta).float(), [n, 3, h, w], align_corners=True)
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    out[~torch.from_numpy(ok)] = 0
    return out.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _pixel_to_normalised(inv: np.ndarray, out_hw: tuple[int, int], in_hw: tuple[int, int]) -> np.ndarray:
    """Turn an output-pixel -> input-pixel affine map into affine_grid's [-1, 1] convention."""
    (h, w), (H, W) = out_hw, in_hw
    to_pix = np.array([[(w - 1) / 2, 0, (w - 1) / 2], [0, (h - 1) / 2, (h - 1) / 2], [0, 0, 1]])
    to_norm = np.array([[2 / (W - 1), 0, -1], [0, 2 / (H - 1), -1], [0, 0, 1]])
    return (to_norm @ np.vstack([inv, [0, 0, 1]]) @ to_pix)[:2]


def default_template(size: tuple[int, int]) -> np.ndarray:
    """The mean face placed so the whole face (brows to chin) fills an (h, w) crop with a small margin."""
    h, w = size
    mf = mean_face().astype(np.float64)
    lo, hi = mf.min(0), mf.max(0)
    scale = 0.84 * min(w / (hi - lo)[0], h / (hi - lo)[1])
    centre = (lo + hi) / 2
    return (mf - centre) * scale + [(w - 1) / 2, (h - 1) / 2]


def region_crops(frames: np.ndarray, landmarks: np.ndarray, region: slice, size: tuple[int, int],
                 margin: float) -> np.ndarray:
    """Upright crops (N, h, w, 3) around a landmark region (mouth, an eye), rotation removed.

    The crop is centred on the region, its width is the region's width plus `margin` on each side,
    and its height follows the output aspect ratio.
    """
    h, w = size
    n = len(frames)
    templates = np.zeros((n, 68, 2))
    out = np.zeros((n, h, w, 3), np.uint8)
    for i in range(n):
        lm = landmarks[i]
        if not np.isfinite(lm).all():
            continue
        # A similarity map from the face's rigid points to an upright frame, then centre the region.
        m = similarity_transform(lm[RIGID_POINTS], _canonical_shape()[RIGID_POINTS])
        pts = apply_transform(m, lm[region])
        lo, hi = pts.min(0), pts.max(0)
        width = (hi - lo)[0] * (1 + 2 * margin)
        s = w / max(width, 1e-6)
        centre = (lo + hi) / 2
        templates[i] = (apply_transform(m, lm) - centre) * s + [(w - 1) / 2, (h - 1) / 2]
        out[i] = align_faces(frames[i:i + 1], lm[None], size, template=templates[i],
                             points=RIGID_POINTS)[0]
    return out


# ---------------------------------------------------------------------------------------------- analysis

@dataclass(frozen=True)
class AnalysisOptions:
    key_interval: int = 25  # frames between scheduled detections
    detect_max_side: int = 480  # frames are shrunk to this size for MTCNN only
    min_face_fraction: float = 0.12  # smallest face MTCNN looks for, as a fraction of the shorter side
    max_shape_error: float = 0.22  # above this the landmarks are not trusted (and trigger a re-detection)
    min_detection_score: float = 0.9
    device: str = "cpu"

    def key(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if k != "device"}, sort_keys=True)


class _Tracker:
    """Streams frames through detection and landmark tracking; keeps one subject."""

    def __init__(self, options: AnalysisOptions) -> None:
        self.o = options
        self.prev: np.ndarray | None = None
        self.score = 0.0
        self.n_faces = 0
        self.rows: list[tuple] = []

    def _detect(self, frames: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """MTCNN on a batch of same-size frames -> per frame (boxes, probs, five points) at full scale.

        Detection runs on the CPU whatever ``options.device`` says (a few small convolutions on key frames),
        so a track does not depend on the device.
        """
        from fakebench.mtcnn import resize_area

        h, w = frames.shape[1:3]
        s = min(1.0, self.o.detect_max_side / max(h, w))
        if s < 1.0:
            small = np.clip(np.round(resize_area(frames, round(h * s), round(w * s))), 0, 255).astype(np.uint8)
        else:
            small = frames
        min_face = max(20, round(self.o.min_face_fraction * min(small.shape[1:3])))
        out = []
        for b, p, pt in _mtcnn(min_face).detect(small):
            keep = p >= self.o.min_detection_score
            out.append((b[keep] / s, p[keep], pt[keep] / s))
        return out

    def _choose(self, boxes: np.ndarray, probs: np.ndarray) -> int:
        """The detection continuing the current subject, else the largest face."""
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        if self.prev is not None:
            tb = box_from_landmarks(self.prev)
            centre = (tb[:2] + tb[2:]) / 2
            side = tb[2] - tb[0]
            dist = np.linalg.norm((boxes[:, :2] + boxes[:, 2:]) / 2 - centre, axis=1) / max(side, 1.0)
            close = dist < 0.5
            if close.any():
                return int(np.argmin(np.where(close, dist, np.inf)))
        return int(np.argmax(areas))

    def _start(self, gray, det, i_face: int) -> np.ndarray:
        boxes, probs, five = det
        self.score = float(probs[i_face])
        return landmarks_from_five_points(gray, five[i_face])

    def _record(self, lm: np.ndarray | None, detected: bool) -> None:
        if lm is None:
            self.rows.append((None, 0.0, False, self.n_faces, detected, np.nan))
            self.prev = None
            return
        err = shape_error(lm)
        ok = err <= self.o.max_shape_error
        self.rows.append((lm, self.score, ok, self.n_faces, detected, err))
        self.prev = lm if ok else None

    def process(self, frames: np.ndarray, first_index: int) -> None:
        from PIL import Image

        key_idx = [j for j in range(len(frames)) if (first_index + j) % self.o.key_interval == 0]
        detections = dict(zip(key_idx, self._detect(frames[key_idx]), strict=True)) if key_idx else {}
        for j, frame in enumerate(frames):
            gray = Image.fromarray(frame).convert("L")
            det = detections.get(j)
            if det is None and self.prev is None and first_index + j > 0 and self._lost_recently():
                det = self._detect(frame[None])[0]  # the face was lost: look again now
            if det is not None:
                self.n_faces = len(det[0])
                if self.n_faces == 0:
                    self._record(None, True)
                    continue
                lm = self._start(gray, det, self._choose(det[0], det[1]))
                self._record(lm, True)
                continue
            if self.prev is None:
                self._record(None, False)
                continue
            lm = refine_landmarks(gray, self.prev)
            if shape_error(lm) > self.o.max_shape_error:  # drifted: re-detect on this frame
                det = self._detect(frame[None])[0]
                self.n_faces = len(det[0])
                lm = self._start(gray, det, self._choose(det[0], det[1])) if self.n_faces else None
                self._record(lm, True)
                continue
            self._record(lm, False)

    def _lost_recently(self) -> bool:
        """Re-detect right after losing the face, then only on key frames (bounded cost on faceless video)."""
        return bool(self.rows) and self.rows[-1][0] is not None

    def track(self, fps: float, width: int, height: int, meta: dict) -> FaceTrack:
        t = len(self.rows)
        lms = np.full((t, 68, 2), np.nan, np.float32)
        for i, r in enumerate(self.rows):
            if r[0] is not None:
                lms[i] = r[0]
        valid = np.array([r[2] for r in self.rows], bool)
        boxes = np.zeros((t, 4), np.float32)
        for i in np.flatnonzero(np.isfinite(lms).all(axis=(1, 2))):
            boxes[i] = box_from_landmarks(lms[i].astype(np.float64))
        return FaceTrack(
            boxes=boxes,
            scores=np.array([r[1] for r in self.rows], np.float32),
            landmarks=lms,
            valid=valid,
            n_faces=np.array([r[3] for r in self.rows], np.int16),
            detected=np.array([r[4] for r in self.rows], bool),
            shape_errors=np.array([r[5] for r in self.rows], np.float32),
            fps=fps, width=width, height=height, meta=meta,
        )


def cache_dir() -> Path:
    return Path(os.environ.get("FAKEBENCH_CACHE", Path.home() / ".cache" / "fakebench"))


def _cache_path(content_key: str, options: AnalysisOptions) -> Path:
    key = hashlib.sha256(f"{content_key}|{ANALYSIS_VERSION}|{options.key()}".encode()).hexdigest()
    return cache_dir() / "faces" / key[:2] / f"{key}.npz"


def file_content_key(path: str | os.PathLike, *, max_side: int | None = None, sha256: str | None = None) -> str:
    """The analysis cache key of a video file: its bytes' SHA-256 (hashed here unless given) and the frame size."""
    return f"file:{sha256 or file_sha256(path)}|max_side={max_side}"


def cached_track(content_key: str, *, options: AnalysisOptions | None = None,
                 label: str | None = None) -> FaceTrack | None:
    """The cached track for a content key (see `file_content_key`), or None; a damaged entry is removed."""
    path = _cache_path(content_key, options or AnalysisOptions())
    if not path.is_file():
        return None
    try:
        track = FaceTrack.load(path)
    except ValueError:
        path.unlink(missing_ok=True)  # damaged entry: recompute, never trust it
        return None
    track.meta = {**track.meta, "source": label or track.meta.get("source"), "cache_hit": True}
    return track


def analyze(source: Clip | str | os.PathLike, *, options: AnalysisOptions | None = None,
            max_side: int | None = None, use_cache: bool = True, chunk_frames: int = 48,
            content_key: str | None = None, label: str | None = None) -> FaceTrack:
    """The face track of a clip (in memory) or a video file (streamed in chunks: bounded memory).

    A clip decoded from a file can pass that file's ``content_key`` (`file_content_key`; ``max_side`` must
    match the decoding) and ``label`` (its path): it then shares the file's cache entry, so a caller that
    decodes a file once for its own use analyses that one decoded clip instead of decoding the file again.
    ``track.meta`` records the source, the content hash, the analysis version and ``cache_hit``.
    """
    options = options or AnalysisOptions()
    if isinstance(source, Clip):
        content_key = content_key or "clip:" + source.content_hash()
        label = label or "clip in memory"
    else:
        info = probe(source)
        content_key = content_key or file_content_key(source, max_side=max_side)
        label = str(source)
        if info.is_image:
            raise MediaError(f"{source} is a still image, not a video; analyze needs a video clip")
    path = _cache_path(content_key, options)
    if use_cache:
        track = cached_track(content_key, options=options, label=label)
        if track is not None:
            return track

    _start_loading_shape_predictor()
    tracker = _Tracker(options)
    if isinstance(source, Clip):
        fps, (height, width) = source.fps, source.frames.shape[1:3]
        for start in range(0, source.n_frames, chunk_frames):
            tracker.process(source.frames[start:start + chunk_frames], start)
    else:
        fps_out: list[float] = []
        trunc: list[bool] = []
        start = 0
        width = height = 0
        for chunk in iter_frames(source, chunk_frames=chunk_frames, max_side=max_side, fps_out=fps_out,
                                 truncated_out=trunc):
            height, width = chunk.shape[1:3]
            tracker.process(chunk, start)
            start += len(chunk)
        fps = fps_out[0]
        if start < 2:
            raise MediaError(f"{source} has only {start} frame(s); a video clip needs at least 2. "
                             "If it is a still photo, pass it as an image")
    truncated = source.truncated if isinstance(source, Clip) else any(trunc)
    meta = {"source": label, "content_key": content_key, "analysis_version": ANALYSIS_VERSION,
            "media": _media_summary(source),
            "options": json.loads(options.key()), "cache_hit": False,
            "models": {"detector": "MTCNN (facenet-pytorch's weights)", "landmarks": "dlib shape_predictor_68"}}
    meta["media"]["truncated"] = bool(truncated)
    track = tracker.track(fps, width, height, meta)
    if use_cache:
        try:
            track.save(path)
        except (OSError, InputFileError):
            pass  # an unwritable cache costs time on the next run, never correctness
    return track


def _media_summary(source: Clip | str | os.PathLike) -> dict:
    """Container facts kept with the track, so a cached analysis needs no decoding at all."""
    from fakebench.media import read_audio, rms_dbfs

    if isinstance(source, Clip):
        audio, sr, has_audio, truncated = source.audio, source.sample_rate, source.has_audio, source.truncated
    else:
        info = probe(source)
        has_audio, truncated = info.has_audio, False
        audio, sr = read_audio(source) if has_audio else (np.zeros(0, np.float32), 0)
    level = rms_dbfs(audio)
    return {"has_audio": bool(has_audio), "sample_rate": int(sr) if has_audio else None,
            "audio_duration_s": round(audio.size / sr, 4) if has_audio and sr else 0.0,
            "audio_rms_dbfs": round(level, 2) if np.isfinite(level) else None,
            "truncated": bool(truncated)}


@dataclass(frozen=True)
class PhotoFace:
    """The face chosen in a still photo: its 68 landmarks, box, detection score and how many faces were seen."""

    landmarks: np.ndarray  # (68, 2) float64
    box: np.ndarray  # (4,) x0, y0, x1, y1
    score: float
    n_faces: int


def photo_face(image: np.ndarray, *, what: str = "the photo", options: AnalysisOptions | None = None) -> PhotoFace:
    """Landmarks of the largest face in a photo; NoFaceError when there is none, a warning when several.

    The photo is analysed exactly like a clip (a two-frame still clip), so its landmarks are
    consistent with every clip's FaceTrack.
    """
    import warnings

    from fakebench.media import ensure_rgb

    rgb = ensure_rgb(image)
    if min(rgb.shape[:2]) < 32:
        raise NoFaceError(f"{what} is only {rgb.shape[1]}x{rgb.shape[0]} pixels; give a photo whose face is "
                          "at least about 64 pixels wide")
    track = analyze(Clip(frames=np.stack([rgb, rgb]), fps=25.0), options=options)
    if not track.valid[0]:
        raise NoFaceError(f"no face found in {what}; give a photo with one clearly visible frontal face")
    if track.faces_max > 1:
        warnings.warn(f"{track.faces_max} faces in {what}; using the largest", stacklevel=2)
    return PhotoFace(landmarks=track.landmarks[0].astype(np.float64), box=track.boxes[0].astype(np.float64),
                     score=float(track.scores[0]), n_faces=track.faces_max)


def eye_aspect_ratio(landmarks: np.ndarray) -> np.ndarray:
    """Eye aspect ratio (Soukupova & Cech 2016) averaged over both eyes, for (..., 68, 2) landmarks.

    EAR = (|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|) with p1..p6 the six points of one eye.
    """
    lm = np.asarray(landmarks, np.float64)

    def one(eye: np.ndarray) -> np.ndarray:
        d = lambda a, b: np.linalg.norm(eye[..., a, :] - eye[..., b, :], axis=-1)  # noqa: E731
        return (d(1, 5) + d(2, 4)) / (2.0 * d(0, 3))

    return (one(lm[..., RIGHT_EYE, :]) + one(lm[..., LEFT_EYE, :])) / 2.0


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip opening (mean gap of points 61-67, 62-66, 63-65) in units of the inter-ocular distance."""
    lm = np.asarray(landmarks, np.float64)
    gap = np.linalg.norm(lm[..., [61, 62, 63], :] - lm[..., [67, 66, 65], :], axis=-1).mean(-1)
    return gap / inter_ocular(lm)


def subset_track(track: FaceTrack, indices: np.ndarray) -> FaceTrack:
    """The track restricted to the given frames (for clips reduced to sampled frames)."""
    idx = np.asarray(indices, dtype=np.int64)
    arrays = {k: getattr(track, k)[idx] for k in FaceTrack.ARRAYS}
    return FaceTrack(**arrays, fps=track.fps, width=track.width, height=track.height,
                     meta={**track.meta, "subset_of_frames": idx.tolist()})


# ---------------------------------------------------------------------------------------------- identity frame

CANDIDATE_FRAMES = 12  # frames scored when choosing the identity photo


def choose_identity_frame(clip: Clip) -> tuple[int, np.ndarray, float]:
    """The clip's best frame to animate: sharp (Laplacian variance of the aligned face), frontal (nose
    centred between the jaw ends), eyes open, confidently detected. Returns (index, frame, score)."""
    from scipy.ndimage import laplace

    candidates = np.unique(np.linspace(0, clip.n_frames - 1, min(CANDIDATE_FRAMES, clip.n_frames)).round()
                           ).astype(int)
    track = analyze(Clip(frames=np.ascontiguousarray(clip.frames[candidates]), fps=clip.fps))
    if not track.valid.any():
        raise NoFaceError(f"no face found in {len(candidates)} frames sampled from the clip; it cannot be animated")
    lm = track.landmarks.astype(np.float64)
    crops = align_faces(clip.frames[candidates], lm, size=(128, 128))
    grey = crops.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    sharpness = np.array([laplace(g).var() for g in grey])
    left = np.linalg.norm(lm[:, 30] - lm[:, 0], axis=1)
    right = np.linalg.norm(lm[:, 30] - lm[:, 16], axis=1)
    frontal = 1 - np.abs(left - right) / (left + right)
    eyes_open = np.clip(eye_aspect_ratio(lm) / 0.2, 0, 1)
    score = sharpness / max(np.nanmax(sharpness), 1e-9) * frontal ** 2 * eyes_open * track.scores
    score = np.where(track.valid, np.nan_to_num(score), -1.0)
    best = int(np.argmax(score))
    return int(candidates[best]), clip.frames[candidates[best]], float(score[best])


# ---------------------------------------------------------------------------------------------- face frames

def face_frame_indices(track: FaceTrack, n: int) -> np.ndarray:
    """Up to ``n`` frame indices spread evenly over the frames where the track has a face."""
    faces = np.flatnonzero(track.valid & np.isfinite(track.landmarks).all(axis=(1, 2)))
    if len(faces) <= n:
        return faces
    return faces[np.round(np.linspace(0, len(faces) - 1, n)).astype(int)]


# ---------------------------------------------------------------------------------------------- face descriptors
# dlib's face recognition network (dlib_face_recognition_resnet_model_v1.dat, shipped by the
# face_recognition_models package: a 29-layer ResNet, LFW accuracy 99.38%) turns a face, upright and scaled by
# its 68 landmarks into a 150x150 chip, into a 128-d descriptor. The landmarks are the FaceTrack's: nothing is
# detected again.

DLIB_DESCRIPTOR_MODEL = ("dlib face_recognition_resnet_model_v1 128-d "
                         f"({KNOWN_WEIGHTS['dlib_face_recognition'].filename})")

@cache
def _dlib_encoder(path: str):
    import dlib

    try:
        return dlib.face_recognition_model_v1(path)
    except RuntimeError as e:
        raise WeightsError(f"{path} is not dlib's face recognition model ({e}); reinstall "
                           "face_recognition_models (pip install --force-reinstall face-recognition-models)"
                           ) from None


def dlib_shape(landmarks: np.ndarray):
    """dlib's 68-point ``full_object_detection`` from (68, 2) landmarks (dlib points are integers)."""
    import dlib

    pts = np.round(landmarks).astype(np.int64)
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    return dlib.full_object_detection(dlib.rectangle(int(x0), int(y0), int(x1), int(y1)),
                                      [dlib.point(int(x), int(y)) for x, y in pts])


def face_descriptors(frames: Sequence[np.ndarray] | np.ndarray, landmarks: np.ndarray,
                     batch_size: int = 32) -> np.ndarray:
    """dlib 128-d descriptors (N, 128) float64 of the face with ``landmarks[i]`` (68, 2) in ``frames[i]``.

    dlib aligns each face to a 150x150 chip (padding 0.25) from the 68 points, as dlib's examples do.
    """
    import dlib

    landmarks = np.asarray(landmarks, np.float64)
    if len(frames) != len(landmarks) or landmarks.shape[1:] != (68, 2):
        raise ValueError(f"need one (68, 2) landmark set per frame, got {len(frames)} frames and landmarks "
                         f"{landmarks.shape}")
    if not np.isfinite(landmarks).all():
        raise ValueError("landmarks must be finite: sample only frames where the track has a face")
    encoder = _dlib_encoder(str(find_weight("dlib_face_recognition")))
    out = np.empty((len(frames), 128), np.float64)
    for start in range(0, len(frames), batch_size):
        images = [np.ascontiguousarray(f, dtype=np.uint8) for f in frames[start:start + batch_size]]
        faces = []
        for lm in landmarks[start:start + batch_size]:
            one = dlib.full_object_detections()
            one.append(dlib_shape(lm))
            faces.append(one)
        vectors = encoder.compute_face_descriptor(images, faces, num_jitters=0, padding=0.25)
        out[start:start + len(images)] = [np.asarray(v[0]) for v in vectors]
    return out


# ---------------------------------------------------------------------------------------------- blinks

@dataclass(frozen=True)
class Blink:
    """One blink, as a generator put it in (ground truth) or as `fakebench.metrics.blink` found it.

    ``start``..``end`` (inclusive) are the frames of the blink (for a detection: below half depth; for
    ground truth: the lid visibly lowered), ``peak`` the frame of fullest closure, ``duration_ms`` its
    length, ``depth`` how far it closed (detection: open-eye EAR minus the minimum EAR; ground truth:
    the lid closure at the peak, 1.0 for fully shut) and ``onset_s`` when it began, where known.
    """

    start: int
    end: int
    peak: int
    duration_ms: float
    depth: float | None = None
    onset_s: float | None = None

    @property
    def start_frame(self) -> int:
        return self.start

    @property
    def end_frame(self) -> int:
        return self.end

    @property
    def peak_frame(self) -> int:
        return self.peak

    @property
    def duration_s(self) -> float:
        return self.duration_ms / 1000.0

    def as_dict(self) -> dict:
        """The JSON form (ground-truth files): frames as ``*_frame``; depth and onset only when known."""
        out: dict = {"start_frame": self.start, "end_frame": self.end, "peak_frame": self.peak,
                     "duration_ms": round(self.duration_ms, 1)}
        if self.depth is not None:
            out["depth"] = round(self.depth, 4)
        if self.onset_s is not None:
            out["onset_s"] = round(self.onset_s, 4)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> Blink:
        return cls(start=int(d["start_frame"]), end=int(d["end_frame"]), peak=int(d["peak_frame"]),
                   duration_ms=float(d["duration_ms"]), depth=d.get("depth"), onset_s=d.get("onset_s"))


def score_blinks(detected: Sequence[Blink], truth: Sequence[Blink], *, tolerance: int = 1) -> dict:
    """Detected blinks against ground-truth ones: precision, recall, F1 and onset error.

    A detection matches a true blink when their frame ranges overlap (widened by ``tolerance`` frames on
    each side); each blink matches at most once, pairs taken greedily by largest overlap, then nearest
    peaks. ``onset_error_frames`` is the mean of detected start minus true start over the matches (None
    without a match); ``onset_abs_error_frames`` its mean absolute value. With no blinks on a side, its
    ratio is 1.0 when the other side is empty too (nothing to find, nothing false), else 0.0.
    """
    pairs = []
    for i, d in enumerate(detected):
        for j, t in enumerate(truth):
            overlap = min(d.end, t.end + tolerance) - max(d.start, t.start - tolerance) + 1
            if overlap > 0:
                pairs.append((-overlap, abs(d.peak - t.peak), i, j))
    used_d: set[int] = set()
    used_t: set[int] = set()
    matches: list[tuple[int, int]] = []
    for _, _, i, j in sorted(pairs):
        if i not in used_d and j not in used_t:
            used_d.add(i)
            used_t.add(j)
            matches.append((i, j))
    n_match = len(matches)
    precision = n_match / len(detected) if detected else float(not truth)
    recall = n_match / len(truth) if truth else float(not detected)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    errors = np.array([detected[i].start - truth[j].start for i, j in matches], np.float64)
    return {"blinks_detected": len(detected), "blinks_true": len(truth), "blinks_matched": n_match,
            "precision": float(precision), "recall": float(recall), "f1": float(f1),
            "onset_error_frames": float(errors.mean()) if n_match else None,
            "onset_abs_error_frames": float(np.abs(errors).mean()) if n_match else None,
            "matches": sorted(matches)}
