"""Fréchet Inception Distance (FID) and Kernel Inception Distance (KID) of a real and a fake set.

Computed exactly as pytorch-fid computes FID: its TensorFlow-ported InceptionV3
(``pt_inception-2015-12-05-6726825d.pth``), images in [0, 1] resized bilinearly to 299x299
(align_corners=False) and scaled to [-1, 1], the 2048-d pool3 features in float64, their mean and
covariance, and

    FID = ||mu_1 - mu_2||^2 + Tr(S_1) + Tr(S_2) - 2 Tr((S_1 S_2)^(1/2))

with the matrix square root taken as pytorch-fid takes it. KID (Binkowski et al. 2018) is the
unbiased MMD^2 with the kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets.

From clips, frames are sampled evenly from the frames where the clip's FaceTrack has a face and
cropped to the aligned face (default) or kept whole. Without the Inception weights (nothing is
downloaded), the offline substitute is the Fréchet distance of dlib's 128-d face descriptors,
reported as ``fd_dlib``, never as ``fid``. Numbers are only comparable at equal sample counts, crops
and sizes (FID is biased in 1/N); the output records all of them.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg
from torch import nn
from torchvision.models.inception import (
    BasicConv2d,
    InceptionA,
    InceptionB,
    InceptionC,
    InceptionD,
    InceptionE,
)

from fakebench.devices import resolve_device
from fakebench.errors import ConfigError, InputFileError, WeightsError
from fakebench.media import IMAGE_EXTENSIONS
from fakebench.metrics.registry import MetricContext, register_metric
from fakebench.weights import KNOWN_WEIGHTS, find_weight, load_checkpoint, locate, weights_verified

if TYPE_CHECKING:
    from fakebench.faces import FaceTrack
    from fakebench.media import Clip

FEATURE_DIM = 2048
INCEPTION_FEATURES = f"pytorch-fid InceptionV3 pool3 2048-d ({KNOWN_WEIGHTS['inception_fid'].filename})"
METRICS = ("fid", "kid", "fd_dlib")

Crop = Literal["face", "full"]
Images = np.ndarray | Sequence[np.ndarray]  # (N, H, W, 3) uint8, or a list of (H, W, 3) of any sizes
SetInput = Sequence[tuple["Clip", "FaceTrack"]] | Images | str | os.PathLike


# ---------------------------------------------------------------------------------------------- network
# torchvision's Inception blocks, with the pooling of TensorFlow's FID graph in their pool branches.
# Module and parameter names are torchvision's, which are those of the pytorch-fid checkpoint.


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """TensorFlow's 3x3 average pool: the zero padding is not counted in the average."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _max_pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


class _FIDInceptionA(InceptionA):
    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return [self.branch1x1(x), branch5x5, branch3x3dbl, self.branch_pool(_tf_avg_pool(x))]


class _FIDInceptionC(InceptionC):
    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = self.branch7x7dbl_1(x)
        for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            branch7x7dbl = conv(branch7x7dbl)
        return [self.branch1x1(x), branch7x7, branch7x7dbl, self.branch_pool(_tf_avg_pool(x))]


class _FIDInceptionE(InceptionE):
    def __init__(self, in_channels: int, pool) -> None:
        super().__init__(in_channels)
        self.pool = pool

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat([self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1)
        return [self.branch1x1(x), branch3x3, branch3x3dbl, self.branch_pool(self.pool(x))]


class FIDInceptionV3(nn.Module):
    """The FID Inception network: images (N, 3, H, W) in [0, 1] -> pool3 features (N, 2048).

    InceptionV3 as in TensorFlow's FID graph (1008 classes, no auxiliary classifier): average pools
    exclude padding, and the last block (Mixed_7c) max-pools its pool branch.
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = _FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = _FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = _FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = _FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = _FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = _FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = _FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = _FIDInceptionE(1280, pool=_tf_avg_pool)
        self.Mixed_7c = _FIDInceptionE(2048, pool=_max_pool)
        self.fc = nn.Linear(2048, 1008)  # the classifier: unused, kept so the checkpoint loads strictly

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        blocks = (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                  self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c)
        for block in blocks:
            x = block(x)
        return F.adaptive_avg_pool2d(x, output_size=(1, 1)).flatten(1)


def load_inception(path: str | os.PathLike | None = None, *, device: str = "cpu",
                   verify: bool = True) -> FIDInceptionV3:
    """The FID Inception with pytorch-fid's weights, found by `fakebench.weights.find_weight`.

    ``verify`` checks the file's SHA-256 against the prefix in its name (6726825d); a file that
    fails is not the official weights and raises WeightsError.
    """
    found = find_weight("inception_fid", path, verify=verify, option="--inception-weights")
    stat = found.stat()
    return _load_inception(str(found.resolve()), stat.st_mtime_ns, stat.st_size, resolve_device(device))


@lru_cache(maxsize=2)
def _load_inception(path: str, mtime_ns: int, size: int, device: str) -> FIDInceptionV3:
    model = FIDInceptionV3()
    state = load_checkpoint(path, name="inception_fid")
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise WeightsError(f"{path} does not hold pytorch-fid's FID Inception weights "
                           f"({str(e).splitlines()[0]}); get {KNOWN_WEIGHTS['inception_fid'].source}"
                           ) from None
    return model.eval().requires_grad_(False).to(device)


# ---------------------------------------------------------------------------------------------- features


def inception_features(images: Images, model: FIDInceptionV3, batch_size: int = 50,
                       device: str | None = None) -> np.ndarray:
    """pool3 features (N, 2048) float64 of uint8 RGB images, as pytorch-fid's ``get_activations``.

    Images may differ in size (each batch holds images of one size); order is kept.
    """
    device = resolve_device(device) if device else next(model.parameters()).device.type
    out = np.empty((len(images), FEATURE_DIM), np.float64)
    for start, batch in _same_size_batches(images, batch_size):
        x = torch.from_numpy(batch).to(device).permute(0, 3, 1, 2).contiguous()
        with torch.inference_mode():
            out[start:start + len(batch)] = model(x.float().div(255)).cpu().numpy()
    return out


def _same_size_batches(images: Images, batch_size: int) -> Iterator[tuple[int, np.ndarray]]:
    """(index of the first image, uint8 (n, H, W, 3)) for runs of at most batch_size same-size images."""
    if isinstance(images, np.ndarray):
        _check_images(images)
        for start in range(0, len(images), batch_size):
            yield start, images[start:start + batch_size]
        return
    start = 0
    while start < len(images):
        shape = np.shape(images[start])
        end = start + 1
        while end < len(images) and end - start < batch_size and np.shape(images[end]) == shape:
            end += 1
        batch = np.stack(images[start:end])
        _check_images(batch)
        yield start, batch
        start = end


def _check_images(images: np.ndarray) -> None:
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 RGB (N, H, W, 3), got {images.dtype} {images.shape}")


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (N - 1 normalised) of the features, float64."""
    features = np.asarray(features, np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


# ---------------------------------------------------------------------------------------------- distances


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Fréchet distance of N(mu1, sigma1) and N(mu2, sigma2), as pytorch-fid computes it.

    d^2 = ||mu1 - mu2||^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr(sqrtm(sigma1 sigma2)). When the square
    root of the product is not finite, eps is added to both diagonals and it is taken again; an
    imaginary part on its diagonal above 1e-3 is an error, a smaller one is numerical noise. A squared distance
    is never negative: rounding below 0 (identical sets give about -1e-8) returns 0, where pytorch-fid would
    return the rounding.
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"the two sets' statistics differ in shape: {mu1.shape}/{sigma1.shape} "
                         f"vs {mu2.shape}/{sigma2.shape}")
    diff = mu1 - mu2
    covmean = _sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        warnings.warn(f"fid calculation produces singular product; adding {eps} to diagonal of cov estimates",
                      stacklevel=2)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    return max(0.0, float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)))


def _sqrtm(a: np.ndarray) -> np.ndarray:
    # SciPy warns about singular input; pytorch-fid passes disp=False, which silences that warning
    # (and `disp` is gone in SciPy 1.18). Rank-deficient covariances are warned about by the caller.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        return linalg.sqrtm(a)


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two equal-size samples with the kernel k(a, b) = (a.b / d + 1)^3."""
    m, d = x.shape
    k_xx = (x @ x.T / d + 1) ** 3
    k_yy = (y @ y.T / d + 1) ** 3
    k_xy = (x @ y.T / d + 1) ** 3
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.mean())


def kid(features1: np.ndarray, features2: np.ndarray, *, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """KID: mean and standard deviation of the unbiased MMD^2 over random subsets.

    Each subset draws min(N1, N2, subset_size) features from each side without replacement.
    """
    m = min(len(features1), len(features2), subset_size)
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples per side, got {len(features1)} and {len(features2)}")
    rng = np.random.default_rng(seed)
    values = [mmd2_unbiased(features1[rng.choice(len(features1), m, replace=False)],
                            features2[rng.choice(len(features2), m, replace=False)]) for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))


# ---------------------------------------------------------------------------------------------- samples


@dataclass
class Samples:
    """One side of a comparison: the images the Inception sees, and faces for dlib when known."""

    images: Images
    frames: list[np.ndarray] | None  # the source frame of each image (None for plain images)
    landmarks: np.ndarray | None  # (N, 68, 2) in those frames
    source: str
    features: dict = field(default_factory=dict)  # computed once per side: "dlib", ("inception", weights path)

    def __len__(self) -> int:
        return len(self.images)

    def feature(self, key: Any, compute: Callable[[], np.ndarray]) -> np.ndarray:
        if key not in self.features:
            self.features[key] = compute()
        return self.features[key]


def sample_frames(clips: Sequence[tuple[Clip, FaceTrack]], frames_per_clip: int = 8, crop: Crop = "face",
                  size: int = 299) -> Images:
    """Frames sampled evenly from each clip's face frames: aligned face crops (size x size) or whole."""
    return _sample_clips(clips, frames_per_clip, crop, size).images


def _sample_clips(clips: Sequence[tuple[Clip, FaceTrack]], frames_per_clip: int, crop: Crop,
                  size: int) -> Samples:
    from fakebench.faces import align_faces, default_template, face_frame_indices

    if crop not in ("face", "full"):
        raise ConfigError(f"crop must be 'face' or 'full', got {crop!r}")
    images: list[np.ndarray] = []
    frames: list[np.ndarray] = []
    landmarks: list[np.ndarray] = []
    template = default_template((size, size))
    faceless = 0
    for clip, track in clips:
        idx = face_frame_indices(track, frames_per_clip)
        faceless += len(idx) == 0
        if crop == "face":
            images.extend(align_faces(clip.frames[idx], track.landmarks[idx], (size, size),
                                      template=template))
        else:
            images.extend(clip.frames[idx])
        frames.extend(clip.frames[idx])
        landmarks.extend(track.landmarks[idx].astype(np.float64))
    stacked: Images = np.stack(images) if images and len({im.shape for im in images}) == 1 else images
    source = f"{len(clips)} clips" + (f" ({faceless} without a face, left out)" if faceless else "")
    return Samples(stacked, frames, np.array(landmarks).reshape(-1, 68, 2), source)


def read_image_folder(path: str | os.PathLike) -> list[np.ndarray]:
    """The images of a folder as pytorch-fid reads them: its extensions, sorted, PIL ``convert("RGB")``."""
    from PIL import Image

    folder = Path(path)
    if not folder.is_dir():
        raise InputFileError(f"{folder} is not a folder of images; give a folder of png/jpg images")
    files = sorted(f for ext in IMAGE_EXTENSIONS for f in folder.glob(f"*{ext}"))
    if not files:
        raise InputFileError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {folder}")
    images = []
    for f in files:
        with Image.open(f) as im:
            images.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
    return images


def _samples(side: SetInput | Samples, frames_per_clip: int, crop: Crop, size: int) -> Samples:
    if isinstance(side, Samples):
        return side
    if isinstance(side, str | os.PathLike):
        return Samples(read_image_folder(side), None, None, f"folder {side}")
    if isinstance(side, np.ndarray):
        return Samples(side, None, None, "images")
    if len(side) and isinstance(side[0], tuple):
        return _sample_clips(side, frames_per_clip, crop, size)  # type: ignore[arg-type]
    return Samples(list(side), None, None, "images")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- the metric


def set_metrics(real: SetInput, fake: SetInput, *, metrics: Sequence[str] = METRICS, frames_per_clip: int = 8,
                crop: Crop = "face", size: int = 299, inception_weights: str | os.PathLike | None = None,
                batch_size: int = 50, device: str = "cpu", kid_subsets: int = 100,
                kid_subset_size: int = 1000, seed: int = 0) -> dict:
    """FID, KID and the dlib-descriptor Fréchet distance between a real and a fake set.

    ``real`` and ``fake`` are lists of (Clip, FaceTrack) pairs (``frames_per_clip`` frames sampled
    evenly from each clip's face frames, cropped per ``crop``), image arrays, or image folders.
    Missing Inception weights skip ``fid`` and ``kid`` (the output says why) and add ``fd_dlib`` in
    their place; a weights file that is present but damaged or not the official one raises.
    """
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise ConfigError(f"unknown set metrics {unknown}; choose from {', '.join(METRICS)}")
    a = _samples(real, frames_per_clip, crop, size)
    b = _samples(fake, frames_per_clip, crop, size)
    if len(a) < 2 or len(b) < 2:
        raise ConfigError(f"set metrics need at least 2 samples per side, got {len(a)} real and "
                          f"{len(b)} fake")
    out: dict = {"samples_real": len(a), "samples_fake": len(b), "input_real": a.source,
                 "input_fake": b.source}
    if a.frames is not None or b.frames is not None:
        out |= {"frames_per_clip": frames_per_clip, "crop": crop,
                "crop_size": f"{size}x{size} aligned face" if crop == "face" else "native frame"}
    notes: list[str] = []
    wanted = set(metrics)
    if wanted & {"fid", "kid"}:
        out |= _inception_metrics(a, b, wanted, notes, weights=inception_weights, batch_size=batch_size,
                                  device=device, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size,
                                  seed=seed)
        if "fid_substitute" in out:
            wanted.add("fd_dlib")
    if "fd_dlib" in wanted:
        out |= _fd_dlib(a, b, notes)
    for note in notes:
        warnings.warn(note, stacklevel=2)
    out["warnings"] = notes
    return out


def _inception_metrics(a: Samples, b: Samples, wanted: set[str], notes: list[str], *,
                       weights: str | os.PathLike | None, batch_size: int, device: str, kid_subsets: int,
                       kid_subset_size: int, seed: int) -> dict:
    found, reason = _inception_weights(weights)
    if found is None:
        out = {f"{name}_skipped": reason for name in ("fid", "kid") if name in wanted}
        return out | ({"fid_substitute": "fd_dlib"} if "fid" in wanted else {})
    model = load_inception(found, device=device)
    fa, fb = (s.feature(("inception", str(found)), lambda s=s: inception_features(s.images, model, batch_size))
              for s in (a, b))
    out: dict = {"inception_weights": str(found), "weights_verified": weights_verified(["inception_fid"])}
    if "fid" in wanted:
        out |= _frechet("fid", fa, fb, INCEPTION_FEATURES, notes)
    if "kid" in wanted:
        mean, std = kid(fa, fb, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
        out |= {"kid": mean, "kid_std": std, "kid_subsets": kid_subsets,
                "kid_subset_size": min(len(a), len(b), kid_subset_size), "kid_features": INCEPTION_FEATURES}
    return out


def _frechet(name: str, fa: np.ndarray, fb: np.ndarray, features: str, notes: list[str]) -> dict:
    notes += _sample_size_notes(name, len(fa), len(fb), fa.shape[1])
    try:
        value = frechet_distance(*statistics(fa), *statistics(fb))
    except ValueError as e:  # a covariance product without a real square root: too few samples
        return {f"{name}_skipped": f"the Fréchet distance is undefined for these samples ({e}); "
                                   f"use at least {fa.shape[1]} samples per side"}
    return {name: value, f"{name}_features": features}


def _inception_weights(path: str | os.PathLike | None) -> tuple[Path | None, str]:
    """(the verified weights path, "") or, when they are nowhere to be found, (None, why)."""
    if path is None and not locate("inception_fid", verify=False).found:
        try:
            find_weight("inception_fid", option="--inception-weights")
        except WeightsError as e:
            return None, f"inception weights not found: {e.one_line()}"
    return find_weight("inception_fid", path, option="--inception-weights"), ""


def _fd_dlib(a: Samples, b: Samples, notes: list[str]) -> dict:
    from fakebench.faces import DLIB_DESCRIPTOR_MODEL, face_descriptors

    if a.landmarks is None or b.landmarks is None:
        return {"fd_dlib_skipped": "needs face landmarks: pass (Clip, FaceTrack) pairs, not images"}
    da, db = (s.feature("dlib", lambda s=s: face_descriptors(s.frames, s.landmarks)) for s in (a, b))
    return _frechet("fd_dlib", da, db, DLIB_DESCRIPTOR_MODEL, notes)


def _sample_size_notes(name: str, n_real: int, n_fake: int, dim: int) -> list[str]:
    if min(n_real, n_fake) >= dim:
        return []
    return [f"{name} from {n_real} real and {n_fake} fake samples: fewer than the {dim} feature "
            f"dimensions, so the covariances are rank-deficient and the value is biased; compare only at "
            f"equal sample counts and use at least {dim} samples per side (10,000+ for publishable FID)"]


_SET_KEYS = {"fid": ("fid", "fid_skipped", "fid_substitute"), "kid": ("kid", "kid_std", "kid_skipped"),
             "fd_dlib": ("fd_dlib",)}


def _distribution_metrics(real: SetInput, fake: SetInput, names: Sequence[str], ctx: MetricContext) -> dict:
    """FID, KID and fd_dlib in one pass (they share the sampled frames and the Inception features)."""
    options = {} if ctx.device is None else {"device": ctx.device}
    if ctx.shared.get("fid_real_input") is real:  # the same real set as the last call: its samples and features
        real = ctx.shared["fid_real_samples"]
    else:
        samples = _samples(real, ctx.frames_per_clip, ctx.crop, 299)  # type: ignore[arg-type]
        ctx.shared.update(fid_real_input=real, fid_real_samples=samples)
        real = samples
    return set_metrics(real, fake, metrics=list(names), frames_per_clip=ctx.frames_per_clip, crop=ctx.crop,
                       inception_weights=ctx.weight("inception_fid"), seed=ctx.seed, **options)


register_metric("fid", per="set", weights=("inception_fid",), keys=_SET_KEYS["fid"],
                description="Frechet Inception Distance (pytorch-fid's InceptionV3); without its weights not "
                            "computed, fd_dlib given in its place")(_distribution_metrics)
register_metric("kid", per="set", weights=("inception_fid",), keys=_SET_KEYS["kid"],
                description="Kernel Inception Distance (unbiased MMD^2, cubic kernel, random subsets)"
                )(_distribution_metrics)
register_metric("fd_dlib", per="set", weights=("dlib_face_recognition",), keys=_SET_KEYS["fd_dlib"],
                description="Frechet distance of dlib's 128-d face descriptors (offline; needs clips)"
                )(_distribution_metrics)
