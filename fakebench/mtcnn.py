"""MTCNN face detection (Zhang et al., 2016) in NumPy, with the weights facenet-pytorch ships, without torch.

Three cascaded networks: P-Net slides over an image pyramid and proposes face windows, R-Net rejects and
refines them on 24x24 crops, O-Net scores them on 48x48 crops and gives five points (eyes, nose, mouth
corners). The networks follow the published architecture; the conventions between the stages (the
pyramid, "area" resampling, the box arithmetic, non-maximum suppression) are the ones of facenet-pytorch's
MTCNN so that both give the same boxes and points with the same weights (tests/test_mtcnn.py checks).

Why not facenet-pytorch itself: importing it imports torch and torchvision (about 3 to 4 s of a process's
start), while the detector needs a few convolutions on small images. The weights are read from
facenet-pytorch's installed data folder (``pnet.pt``, ``rnet.pt``, ``onet.pt``) by a small reader of torch's
checkpoint formats that allows only tensors and ordered dicts; neither facenet_pytorch nor torch is imported.
"""

from __future__ import annotations

import collections
import contextlib
import pickle
import struct
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.lib.stride_tricks import as_strided

from fakebench.errors import WeightsError
from fakebench.weights import find_weight

WEIGHTS_NAME = "mtcnn"  # registered in fakebench.weights: facenet-pytorch's data folder
THRESHOLDS = (0.6, 0.7, 0.7)  # P-, R-, O-Net face probability thresholds
PYRAMID_FACTOR = 0.709  # scale step of the image pyramid
NMS_THRESHOLDS = (0.5, 0.7, 0.7, 0.7)  # P-Net per scale, P-Net across scales, R-Net, O-Net ("min" overlap)


# ---------------------------------------------------------------------------------------------- weights

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
    "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


@dataclass
class _Storage:
    key: str
    dtype: Any
    data: np.ndarray | None = None


@dataclass
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def array(self) -> np.ndarray:
        flat = self.storage.data
        if flat is None:
            raise WeightsError(f"checkpoint storage {self.storage.key} has no data")
        item = flat.itemsize
        if self.shape and self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride, strict=True)) \
                >= flat.size:
            raise WeightsError("checkpoint tensor reaches past its storage")
        return as_strided(flat[self.offset:], self.shape, [s * item for s in self.stride]).copy()


def _rebuild_tensor(storage, offset, shape, stride, *_ignored) -> _TensorRef:
    return _TensorRef(storage, int(offset), tuple(shape), tuple(stride))


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles a torch state dict into `_TensorRef`s; any other global is refused."""

    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a state dict of tensors")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        dtype, key = pid[1], str(pid[2])
        return self.storages.setdefault(key, _Storage(key, dtype))


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """A torch ``state_dict`` file (zip or legacy format) as NumPy arrays, without importing torch."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                pkl = next(n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl")
                prefix = pkl[: -len("data.pkl")]
                with z.open(pkl) as f:
                    up = _StateDictUnpickler(f)
                    state = up.load()
                for s in up.storages.values():
                    s.data = np.frombuffer(z.read(f"{prefix}data/{s.key}"), dtype=s.dtype)
        else:
            with open(path, "rb") as f:
                for _ in range(3):  # magic number, protocol version, system info
                    _StateDictUnpickler(f).load()
                up = _StateDictUnpickler(f)
                state = up.load()
                keys = _StateDictUnpickler(f).load()
                for key in keys:
                    (numel,) = struct.unpack("<q", f.read(8))
                    s = up.storages[str(key)]
                    nbytes = numel * np.dtype(s.dtype).itemsize
                    raw = f.read(nbytes)
                    if len(raw) != nbytes:
                        raise WeightsError(f"{path} is truncated")
                    s.data = np.frombuffer(raw, dtype=s.dtype)
        return {str(k): v.array() for k, v in state.items()}
    except (OSError, EOFError, pickle.UnpicklingError, StopIteration, KeyError, AttributeError, struct.error,
            ValueError, TypeError) as e:
        raise WeightsError(f"cannot read MTCNN weights {path}: {e}") from None


def load_networks(weights: str | Path | None = None) -> tuple[dict[str, np.ndarray], ...]:
    """P-, R- and O-Net's weights (read once per process); ``weights`` as in `MTCNN`."""
    folder = Path(weights) if weights is not None else find_weight(WEIGHTS_NAME, verify=False)
    return _networks(str(folder.resolve()))


@cache
def _networks(folder: str) -> tuple[dict[str, np.ndarray], ...]:
    """The three state dicts, convolution kernels rearranged from torch's (out, in, kh, kw) to
    (kh, kw, in, out) for `_conv`."""
    nets = []
    for name in ("pnet", "rnet", "onet"):
        state = read_state_dict(Path(folder) / f"{name}.pt")
        nets.append({k: np.ascontiguousarray(v.transpose(2, 3, 1, 0)) if v.ndim == 4 else v
                     for k, v in state.items()})
    return tuple(nets)


# ---------------------------------------------------------------------------------------------- layers
# Activations are (N, H, W, C) float32; convolution kernels (kh, kw, in, out).

def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Valid convolution, stride 1. ``w`` as `_networks` keeps it: (kh, kw, in, out)."""
    kh, kw, _, out = w.shape
    n, h, wd, _ = x.shape
    ho, wo = h - kh + 1, wd - kw + 1
    if kh == kw == 1:
        return x @ w[0, 0] + b
    # Columns in (i, j, channel) order, made of kh * kw shifted copies: contiguous channels, fast to copy.
    cols = np.concatenate([x[:, i:i + ho, j:j + wo] for i in range(kh) for j in range(kw)], axis=-1)
    return (cols.reshape(n * ho * wo, -1) @ w.reshape(-1, out) + b).reshape(n, ho, wo, out)


def _prelu(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    """x where positive, a * x elsewhere (per channel); overwrites x, a layer's fresh output."""
    neg = np.minimum(x, 0)
    neg *= a - 1
    x += neg
    return x


def _max_pool(x: np.ndarray, k: int, s: int) -> np.ndarray:
    """k x k max pooling with stride s, rounding the output size up (a last, partial window counts)."""
    n, h, w, c = x.shape
    ho, wo = -(-(h - k) // s) + 1, -(-(w - k) // s) + 1
    ph, pw = (ho - 1) * s + k - h, (wo - 1) * s + k - w
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), constant_values=-np.inf)
    rows = x[:, 0:(ho - 1) * s + 1:s]
    for i in range(1, k):
        rows = np.maximum(rows, x[:, i:i + (ho - 1) * s + 1:s])
    out = rows[:, :, 0:(wo - 1) * s + 1:s]
    for j in range(1, k):
        out = np.maximum(out, rows[:, :, j:j + (wo - 1) * s + 1:s])
    return out


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _flatten(x: np.ndarray) -> np.ndarray:
    """The dense layers were trained on features flattened in (W, H, C) order."""
    return x.transpose(0, 2, 1, 3).reshape(len(x), -1)


def _pnet(p: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = _max_pool(_prelu(_conv(x, p["conv1.weight"], p["conv1.bias"]), p["prelu1.weight"]), 2, 2)
    x = _prelu(_conv(x, p["conv2.weight"], p["conv2.bias"]), p["prelu2.weight"])
    x = _prelu(_conv(x, p["conv3.weight"], p["conv3.bias"]), p["prelu3.weight"])
    prob = _softmax(_conv(x, p["conv4_1.weight"], p["conv4_1.bias"]))[..., 1]
    return _conv(x, p["conv4_2.weight"], p["conv4_2.bias"]), prob


def _rnet(p: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = _max_pool(_prelu(_conv(x, p["conv1.weight"], p["conv1.bias"]), p["prelu1.weight"]), 3, 2)
    x = _max_pool(_prelu(_conv(x, p["conv2.weight"], p["conv2.bias"]), p["prelu2.weight"]), 3, 2)
    x = _prelu(_conv(x, p["conv3.weight"], p["conv3.bias"]), p["prelu3.weight"])
    x = _prelu(_flatten(x) @ p["dense4.weight"].T + p["dense4.bias"], p["prelu4.weight"])
    prob = _softmax(x @ p["dense5_1.weight"].T + p["dense5_1.bias"])[:, 1]
    return x @ p["dense5_2.weight"].T + p["dense5_2.bias"], prob


def _onet(p: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = _max_pool(_prelu(_conv(x, p["conv1.weight"], p["conv1.bias"]), p["prelu1.weight"]), 3, 2)
    x = _max_pool(_prelu(_conv(x, p["conv2.weight"], p["conv2.bias"]), p["prelu2.weight"]), 3, 2)
    x = _max_pool(_prelu(_conv(x, p["conv3.weight"], p["conv3.bias"]), p["prelu3.weight"]), 2, 2)
    x = _prelu(_conv(x, p["conv4.weight"], p["conv4.bias"]), p["prelu4.weight"])
    x = _prelu(_flatten(x) @ p["dense5.weight"].T + p["dense5.bias"], p["prelu5.weight"])
    prob = _softmax(x @ p["dense6_1.weight"].T + p["dense6_1.bias"])[:, 1]
    return (x @ p["dense6_2.weight"].T + p["dense6_2.bias"], x @ p["dense6_3.weight"].T + p["dense6_3.bias"],
            prob)


# ---------------------------------------------------------------------------------------------- geometry

@cache
def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) averaging matrix of "area" resampling: output i averages inputs [i*n/m, (i+1)*n/m)."""
    m = np.zeros((n_out, n_in), np.float32)
    for i in range(n_out):
        lo, hi = i * n_in // n_out, -(-(i + 1) * n_in // n_out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


def resize_area(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resample (N, H, W, C) images to (N, height, width, C) by averaging the input pixels each output covers."""
    x = np.asarray(x, np.float32)
    rows = np.matmul(_area_weights(x.shape[1], height), x.reshape(len(x), x.shape[1], -1))
    n, _, w, c = x.shape
    cols = rows.reshape(n, height, w, c).transpose(0, 1, 3, 2).reshape(-1, w) @ _area_weights(w, width).T
    return cols.reshape(n, height, c, width).transpose(0, 1, 3, 2)


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x - np.float32(127.5)) * np.float32(0.0078125)


def _nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, *, minimum: bool = False) -> np.ndarray:
    """Greedy non-maximum suppression: indices kept, best first.

    Overlap is intersection over union of (x1, y1, x2, y2) boxes; with ``minimum`` it is intersection over
    the smaller box, with sides counted inclusively (+1), as in the original MTCNN's last stage.
    """
    one = np.float32(1.0 if minimum else 0.0)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1 + one) * (y2 - y1 + one)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + one, 0)
        h = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + one, 0)
        inter = w * h
        overlap = inter / (np.minimum(area[i], area[rest]) if minimum else area[i] + area[rest] - inter)
        order = rest[overlap <= threshold]
    return np.array(keep, np.int64)


def _nms_per_image(boxes: np.ndarray, image: np.ndarray, threshold: float, *, minimum: bool = False) -> np.ndarray:
    keep = [np.flatnonzero(image == i)[_nms(boxes[image == i, :4], boxes[image == i, 4], threshold,
                                             minimum=minimum)] for i in np.unique(image)]
    return np.concatenate(keep) if keep else np.zeros(0, np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Boxes grown to squares about their centres (side: the longer side)."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2:4] = out[:, :2] + side[:, None]
    return out


def _calibrate(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Apply a network's box regression (offsets in units of the inclusive box size)."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out[:, :4] = boxes[:, :4] + reg * np.stack([w, h, w, h], axis=1)
    return out


def _crops(images: np.ndarray, boxes: np.ndarray, image: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """The part of each box inside its image, resampled to side x side; and which boxes had one.

    Coordinates are 1-based and inclusive after truncation (the convention the weights were trained with);
    the part outside the image is cut off, not padded.
    """
    _, h, w, _ = images.shape
    b = np.trunc(boxes[:, :4]).astype(np.int64)
    x0, y0 = np.maximum(b[:, 0], 1) - 1, np.maximum(b[:, 1], 1) - 1
    x1, y1 = np.minimum(b[:, 2], w), np.minimum(b[:, 3], h)
    ok = (x1 > x0) & (y1 > y0)
    out = np.zeros((int(ok.sum()), side, side, 3), np.float32)
    for j, k in enumerate(np.flatnonzero(ok)):
        out[j] = resize_area(images[image[k], y0[k]:y1[k], x0[k]:x1[k]][None], side, side)[0]
    return out, ok


# ---------------------------------------------------------------------------------------------- detector

@cache
def _blas_threads():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # scikit-learn's dependency; without it BLAS keeps its own thread count
        return None
    return ThreadpoolController()


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """BLAS on one thread: the matrices here are small, and OpenBLAS's threads spin-waiting for a busy core
    made detection 10x slower on a loaded 2-core machine (0.6 s instead of 0.05 s for a 176x144 frame)."""
    controller = _blas_threads()
    return controller.limit(limits=1, user_api="blas") if controller is not None else contextlib.nullcontext()


class MTCNN:
    """Face boxes, probabilities and five points for batches of same-size RGB images.

    ``weights``: the folder holding ``pnet.pt``, ``rnet.pt`` and ``onet.pt`` (default: found by
    `fakebench.weights.find_weight("mtcnn")`, i.e. facenet-pytorch's installed data folder).
    """

    def __init__(self, weights: str | Path | None = None, *, min_face_size: int = 20,
                 thresholds: tuple[float, float, float] = THRESHOLDS, factor: float = PYRAMID_FACTOR) -> None:
        self.pnet, self.rnet, self.onet = load_networks(weights)
        self.min_face_size = min_face_size
        self.thresholds = thresholds
        self.factor = factor

    def _scales(self, h: int, w: int) -> list[float]:
        m = 12.0 / self.min_face_size
        scales, short = [], min(h, w) * m
        while short >= 12:
            scales.append(m)
            m *= self.factor
            short *= self.factor
        return scales

    def _propose(self, imgs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P-Net over the pyramid: candidate boxes (x1, y1, x2, y2, score, 4 offsets) and their image."""
        n, h, w, _ = imgs.shape
        boxes, image = [np.zeros((0, 9), np.float32)], [np.zeros(0, np.int64)]
        for scale in self._scales(h, w):
            small = _normalise(resize_area(imgs, int(h * scale + 1), int(w * scale + 1)))
            reg, prob = _pnet(self.pnet, small)
            img, row, col = np.nonzero(prob >= self.thresholds[0])
            cell = np.stack([col, row], axis=1).astype(np.float32)
            s = np.float32(scale)
            found = np.concatenate([np.floor((2 * cell + 1) / s), np.floor((2 * cell + 12) / s),
                                    prob[img, row, col][:, None], reg[img, row, col]], axis=1)
            keep = _nms_per_image(found, img, NMS_THRESHOLDS[0])
            boxes.append(found[keep])
            image.append(img[keep])
        found, img = np.concatenate(boxes), np.concatenate(image)
        keep = _nms_per_image(found, img, NMS_THRESHOLDS[1])
        found, img = found[keep], img[keep]
        w_, h_ = found[:, 2] - found[:, 0], found[:, 3] - found[:, 1]
        found[:, :4] += found[:, 5:9] * np.stack([w_, h_, w_, h_], axis=1)
        return _square(found[:, :5]), img

    def detect(self, images: np.ndarray | list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per image: boxes (n, 4) x1, y1, x2, y2; probabilities (n,); points (n, 5, 2) as x, y of the
        right eye, left eye, nose, right and left mouth corner (image left to right). Largest box first."""
        imgs = np.asarray(np.stack(list(images)) if isinstance(images, list) else images, np.float32)
        if imgs.ndim == 3:
            imgs = imgs[None]
        if imgs.ndim != 4 or imgs.shape[-1] != 3:
            raise ValueError(f"expected (N, H, W, 3) RGB images, got shape {imgs.shape}")
        with _one_blas_thread():
            return self._detect(imgs)

    def _detect(self, imgs: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        boxes, image = self._propose(imgs)
        points = np.zeros((0, 5, 2), np.float32)
        if len(boxes):  # R-Net
            crops, ok = _crops(imgs, boxes, image, 24)
            boxes, image = boxes[ok], image[ok]
            reg, prob = _rnet(self.rnet, _normalise(crops))
            keep = prob > self.thresholds[1]
            boxes, image, reg = np.concatenate([boxes[keep, :4], prob[keep, None]], axis=1), image[keep], reg[keep]
            pick = _nms_per_image(boxes, image, NMS_THRESHOLDS[2])
            boxes = _square(_calibrate(boxes[pick], reg[pick]))
            image = image[pick]
        if len(boxes):  # O-Net
            crops, ok = _crops(imgs, boxes, image, 48)
            boxes, image = boxes[ok], image[ok]
            reg, marks, prob = _onet(self.onet, _normalise(crops))
            keep = prob > self.thresholds[2]
            boxes, image, reg, marks = boxes[keep], image[keep], reg[keep], marks[keep]
            boxes[:, 4] = prob[keep]
            w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
            h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
            points = np.stack([w * marks[:, :5] + boxes[:, :1] - 1, h * marks[:, 5:] + boxes[:, 1:2] - 1], axis=2)
            boxes = _calibrate(boxes, reg)
            pick = _nms_per_image(boxes, image, NMS_THRESHOLDS[3], minimum=True)
            boxes, image, points = boxes[pick], image[pick], points[pick]
        out = []
        for i in range(len(imgs)):
            b, p = boxes[image == i].astype(np.float64), points[image == i].astype(np.float64)
            order = np.argsort(-(b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), kind="stable")
            out.append((b[order, :4], b[order, 4], p[order]))
        return out
