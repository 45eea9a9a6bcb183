"""Image quality of talking-face clips: PSNR, SSIM, CPBD and landmark distance (LMD).

- PSNR = 10 log10(255^2 / MSE) per frame over all RGB values, averaged over frames. A frame
  identical to its reference has PSNR inf, and so then has the mean.
- SSIM (Wang et al. 2004): 11x11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03, L 255, population
  covariances, on the BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B (as Wang's reference code on
  grey images), averaged over frames; scikit-image's `structural_similarity` with these settings
  is exactly that definition.
- CPBD (Narvekar & Karam, IEEE TIP 2011): no-reference sharpness, the share of edge pixels whose
  probability of blur detection is at most 63%. Written here after the reference MATLAB code (see
  `cpbd`).
- LMD (Chen et al. 2018): mean Euclidean distance between corresponding landmarks, over the
  points of a region (mouth 48-67: M-LMD; all 68: F-LMD) and the frames. Each frame's landmarks
  are first mapped by the least-squares similarity that puts its rigid points (nose, eye corners)
  on fakebench's mean-face template in a 128x128 crop, so the distance is in pixels of that
  aligned face (inter-ocular distance about 50 px), free of head position, size and roll.

`quality_metrics` compares a clip with its ground truth on similarity-aligned 128x128 face crops
by default, as the speech-driven animation GAN's evaluation compared aligned faces.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

import numpy as np
from scipy import ndimage
from skimage.feature import canny
from skimage.metrics import structural_similarity

from fakebench.errors import ConfigError, MediaError
from fakebench.faces import (
    MOUTH,
    RIGID_POINTS,
    FaceTrack,
    align_faces,
    analyze,
    apply_transform,
    default_template,
    similarity_transform,
)
from fakebench.media import Clip
from fakebench.metrics.registry import MetricContext, register_metric

if TYPE_CHECKING:
    from fakebench.samples import Sample

CROP_SIZE = (128, 128)  # aligned face crops for PSNR, SSIM, CPBD; LMD's unit is a pixel of this crop
LUMA = np.array([0.299, 0.587, 0.114])

# CPBD constants (Narvekar & Karam 2011)
BLOCK = 64
EDGE_BLOCK_FRACTION = 0.002  # a block is an edge block when more than 0.2% of its pixels are Canny edges
BETA = 3.6
P_BLUR_JND = 0.63


# ---------------------------------------------------------------------------------------------- PSNR, SSIM

def _as_frames(x: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 3) or (T, H, W, 3) -> (T, H, W, C), without copying."""
    x = np.asarray(x)
    if x.ndim == 2:
        return x[None, :, :, None]
    if x.ndim == 3 and x.shape[-1] == 3:
        return x[None]
    if x.ndim == 4:
        return x
    raise ValueError(f"expected an image (H, W[, 3]) or frames (T, H, W, 3), got shape {x.shape}")


def _frame_pairs(a: np.ndarray, b: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Corresponding frames as float64, one pair at a time (a clip as float64 would not fit in memory)."""
    a, b = _as_frames(a), _as_frames(b)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if len(a) == 0:
        raise ValueError("no frames to compare")
    for fa, fb in zip(a, b, strict=True):
        yield fa.astype(np.float64), fb.astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over frames of 10 log10(255^2 / MSE) for uint8 images or frames; inf where identical."""
    with np.errstate(divide="ignore"):
        return float(np.mean([10.0 * np.log10(255.0**2 / np.mean((fa - fb) ** 2)) for fa, fb in _frame_pairs(a, b)]))


def luma(x: np.ndarray) -> np.ndarray:
    """BT.601 luma of (..., 3) RGB values, float64; grey input (last axis 1) passes through."""
    x = np.asarray(x, np.float64)
    return x[..., 0] if x.shape[-1] == 1 else x @ LUMA


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over frames of SSIM (Wang et al. 2004) on luma: Gaussian 11x11, sigma 1.5, L 255."""
    return float(np.mean([
        structural_similarity(luma(fa), luma(fb), data_range=255.0, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False, K1=0.01, K2=0.03)
        for fa, fb in _frame_pairs(a, b)
    ]))


# ---------------------------------------------------------------------------------------------- CPBD

def cpbd(gray: np.ndarray) -> float:
    """Cumulative probability of blur detection of an 8-bit grey image (at least 64x64); higher is sharper.

    As the reference MATLAB code: Canny edges (MATLAB's defaults) pick the 64x64 edge blocks;
    vertical Sobel edges get Marziliano widths; each width w gives P_blur = 1 - exp(-|w / w_JNB|^3.6)
    with w_JNB = 5 in blocks of contrast (max - min) <= 50, else 3; CPBD is the share of those
    edges with P_blur <= 0.63 (on the 1% histogram bins of the reference).
    """
    img = np.asarray(gray)
    if img.ndim != 2 or img.dtype != np.uint8:
        raise ValueError(f"cpbd needs a 2-D uint8 grey image, got {img.dtype} {img.shape}")
    if min(img.shape) < BLOCK:
        raise ValueError(f"cpbd needs at least {BLOCK}x{BLOCK} pixels, got {img.shape[1]}x{img.shape[0]}")
    x = img.astype(np.float64)
    widths = marziliano_widths(x, sobel_vertical_edges(x))
    return _cumulative_probability(x, canny_edges(x), widths)


def canny_edges(x: np.ndarray) -> np.ndarray:
    """Canny with MATLAB edge()'s defaults: sigma sqrt(2); the high threshold is the top of the 64-bin
    magnitude histogram's bin that holds the 70th percentile, the low one 0.4 times that."""
    sigma = np.sqrt(2.0)
    smooth = ndimage.gaussian_filter(x, sigma, mode="nearest")
    magnitude = np.hypot(ndimage.sobel(smooth, axis=0), ndimage.sobel(smooth, axis=1))
    top = float(magnitude.max())
    if top <= 0:
        return np.zeros(x.shape, bool)
    high = top * max(np.ceil(64 * np.percentile(magnitude, 70) / top), 1) / 64
    return canny(x, sigma=sigma, low_threshold=0.4 * high, high_threshold=high)


def sobel_vertical_edges(x: np.ndarray) -> np.ndarray:
    """MATLAB edge(x, 'sobel', [], 'vertical'): Gx^2 above 4 times its mean, thinned to local maxima
    across the gradient (along rows where |Gx| >= |Gy|, else along columns)."""
    kernel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 8.0
    gx = ndimage.correlate(x, kernel, mode="nearest")
    gy = ndimage.correlate(x, kernel.T, mode="nearest")
    b = gx**2
    across_rows = (b > np.pad(b[:, :-1], ((0, 0), (1, 0)))) & (b >= np.pad(b[:, 1:], ((0, 0), (0, 1))))
    across_cols = (b > np.pad(b[:-1], ((1, 0), (0, 0)))) & (b >= np.pad(b[1:], ((0, 1), (0, 0))))
    return (b > 4.0 * b.mean()) & np.where(np.abs(gx) >= np.abs(gy), across_rows, across_cols)


def _runs_ending_at(steps: np.ndarray) -> np.ndarray:
    """For each position, how many consecutive True values end there (along the last axis)."""
    idx = np.arange(steps.shape[-1])
    last_false = np.maximum.accumulate(np.where(steps, -1, idx), axis=-1)
    return idx - last_false


def marziliano_widths(x: np.ndarray, edges: np.ndarray, max_run: int = 100) -> np.ndarray:
    """Edge widths (Marziliano et al. 2002) along rows at the edge pixels; 0 elsewhere.

    At an edge whose gradient points right (angle 0 after rounding to 45 degrees) the width counts
    the pixels over which the intensity keeps rising to the left and to the right of the edge's
    neighbours; pointing left (180 degrees), falling. Other directions have no width.
    """
    h, w = x.shape
    gy, gx = np.gradient(x)
    angle = 45.0 * np.round(np.degrees(np.arctan2(gy, gx)) / 45.0)
    inner = np.zeros_like(edges, dtype=bool)
    inner[1:-1, 1:-1] = edges[1:-1, 1:-1]
    widths = np.zeros((h, w))
    for mask, monotone in ((angle == 0, x[:, 1:] > x[:, :-1]), (np.abs(angle) == 180, x[:, 1:] < x[:, :-1])):
        # step k goes from column k to k + 1; the walk starts at step c - 2 (leftwards) and c + 1 (rightwards)
        left = np.zeros((h, w))
        left[:, 2:] = _runs_ending_at(monotone)[:, :w - 2]
        right = np.zeros((h, w))
        right[:, :w - 2] = _runs_ending_at(monotone[:, ::-1])[:, ::-1][:, 1:]
        total = np.minimum(left, max_run) + np.minimum(right, max_run) + 2
        widths = np.where(inner & mask, total, widths)
    return widths


def _cumulative_probability(x: np.ndarray, canny_map: np.ndarray, widths: np.ndarray) -> float:
    nby, nbx = x.shape[0] // BLOCK, x.shape[1] // BLOCK

    def blocks(a: np.ndarray) -> np.ndarray:  # (nby * nbx, BLOCK * BLOCK)
        a = a[:nby * BLOCK, :nbx * BLOCK].reshape(nby, BLOCK, nbx, BLOCK)
        return a.transpose(0, 2, 1, 3).reshape(nby * nbx, BLOCK * BLOCK)

    pix, edge, width = blocks(x), blocks(canny_map), blocks(widths)
    is_edge_block = edge.sum(1) > EDGE_BLOCK_FRACTION * BLOCK * BLOCK
    contrast = (pix.max(1) - pix.min(1)).astype(int)
    w_jnb = np.where(contrast <= 50, 5.0, 3.0)
    sharp = total = 0
    for k in np.flatnonzero(is_edge_block):
        w = width[k][width[k] > 0]
        p_blur = 1.0 - np.exp(-np.abs(w / w_jnb[k]) ** BETA)
        sharp += int((np.round(100 * p_blur) <= round(100 * P_BLUR_JND)).sum())
        total += w.size
    return sharp / total if total else 0.0


# ---------------------------------------------------------------------------------------------- LMD

def normalise_landmarks(landmarks: np.ndarray, size: tuple[int, int] = CROP_SIZE) -> np.ndarray:
    """Map each frame's 68 landmarks by the similarity putting its rigid points on the aligned-face template."""
    lm = np.asarray(landmarks, np.float64).reshape(-1, 68, 2)
    template = default_template(size)[RIGID_POINTS]
    out = np.full_like(lm, np.nan)
    for i in np.flatnonzero(np.isfinite(lm).all(axis=(1, 2))):
        out[i] = apply_transform(similarity_transform(lm[i, RIGID_POINTS], template), lm[i])
    return out


def lmd(landmarks_a: np.ndarray, landmarks_b: np.ndarray, region: Literal["mouth", "face"] = "mouth") -> float:
    """Mean landmark distance in pixels of the 128x128 aligned face, over the region's points and the
    frames (the first min(T_a, T_b)) where both have landmarks; NaN when there is no such frame."""
    if region not in ("mouth", "face"):
        raise ValueError(f"region must be 'mouth' or 'face', got {region!r}")
    a, b = normalise_landmarks(landmarks_a), normalise_landmarks(landmarks_b)
    n = min(len(a), len(b))
    points = MOUTH if region == "mouth" else slice(0, 68)
    dist = np.linalg.norm(a[:n, points] - b[:n, points], axis=-1)  # (n, P)
    ok = np.isfinite(dist).all(axis=1)
    return float(dist[ok].mean()) if ok.any() else float("nan")


# ---------------------------------------------------------------------------------------------- per clip

def _masked_landmarks(track: FaceTrack) -> np.ndarray:
    return np.where(track.valid[:, None, None], track.landmarks, np.nan)


def _face_crops(frames: np.ndarray, landmarks: np.ndarray, idx: np.ndarray, chunk: int = 32) -> np.ndarray:
    """Aligned crops of frames[idx], a chunk at a time (align_faces holds its input as float32)."""
    out = np.zeros((len(idx), *CROP_SIZE, 3), np.uint8)
    for s in range(0, len(idx), chunk):
        sel = idx[s:s + chunk]
        out[s:s + chunk] = align_faces(frames[sel], landmarks[sel], CROP_SIZE)
    return out


def _grey_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(np.round(luma(rgb)), 0, 255).astype(np.uint8)


def _none_if_nan(v: float) -> float | None:
    return None if np.isnan(v) else float(v)


def quality_metrics(clip: Clip, track: FaceTrack, *, reference: Clip | None = None,
                    reference_track: FaceTrack | None = None, crop: Literal["face", "full"] = "face",
                    cpbd_frames: int = 16) -> dict:
    """CPBD of the clip; with a ground-truth `reference` also PSNR, SSIM, M-LMD and F-LMD against it.

    CPBD is the mean over `cpbd_frames` frames spread evenly over the clip (its frames with a face
    when `crop="face"`). Reference comparisons use the first min(T, T_ref) frames; on face crops,
    only the frames where both clips have a face. Without `reference_track` the reference is
    analysed (`analyze`, cached on disk).
    """
    if crop not in ("face", "full"):
        raise ConfigError(f"crop must be 'face' or 'full', got {crop!r}")
    landmarks = _masked_landmarks(track)
    if crop == "face":
        track.require_face("quality metrics on face crops")
        candidates = np.flatnonzero(track.valid)
    else:
        candidates = np.arange(clip.n_frames)
    pick = candidates[np.unique(np.linspace(0, len(candidates) - 1, min(cpbd_frames, len(candidates)))
                                .round().astype(int))]
    sample = _face_crops(clip.frames, landmarks, pick) if crop == "face" else clip.frames[pick]
    out: dict = {"cpbd": float(np.mean([cpbd(_grey_uint8(f)) for f in sample])) if len(sample) else None}

    if reference is not None:
        if reference_track is None:
            reference_track = analyze(reference)
        ref_landmarks = _masked_landmarks(reference_track)
        n = min(clip.n_frames, reference.n_frames)
        if crop == "face":
            reference_track.require_face("quality metrics against the reference")
            idx = np.flatnonzero(track.valid[:n] & reference_track.valid[:n])
            a = _face_crops(clip.frames, landmarks, idx)
            b = _face_crops(reference.frames, ref_landmarks, idx)
        else:
            if clip.frames.shape[1:] != reference.frames.shape[1:]:
                raise MediaError(f"the clip is {clip.width}x{clip.height} but the reference is "
                                 f"{reference.width}x{reference.height}; compare with crop='face'")
            a, b = clip.frames[:n], reference.frames[:n]
        out["psnr"] = psnr(a, b) if len(a) else None
        out["ssim"] = ssim(a, b) if len(a) else None
        out["lmd_mouth"] = _none_if_nan(lmd(landmarks[:n], ref_landmarks[:n], "mouth"))
        out["lmd_face"] = _none_if_nan(lmd(landmarks[:n], ref_landmarks[:n], "face"))
    out["quality_model"] = _model_description(crop)
    return out


def _model_description(crop: str) -> str:
    where = "128x128 similarity-aligned face crops" if crop == "face" else "full frames"
    return (f"on {where}: PSNR (MAX 255, RGB, mean of per-frame values); SSIM (Wang et al. 2004, 11x11 "
            "Gaussian sigma 1.5, K1 0.01, K2 0.03, BT.601 luma, scikit-image); CPBD (Narvekar & Karam 2011, "
            "fakebench port of the reference MATLAB code); M-LMD/F-LMD (Chen et al. 2018) in pixels of the "
            "128x128 aligned face (inter-ocular ~50 px)")


@register_metric("quality", per="clip", reference="optional",
                 keys=("cpbd", "psnr", "ssim", "lmd_mouth", "lmd_face"),
                 description="sharpness (CPBD); with a reference clip also PSNR, SSIM and landmark distances "
                             "(LMD) against it, frame-aligned")
def _quality_metric(sample: Sample, ctx: MetricContext) -> dict:
    ref = ctx.reference
    if ref is not None and not ref.is_photo:
        return quality_metrics(sample.clip, sample.track, reference=ref.sample.clip,
                               reference_track=ref.sample.track)
    return quality_metrics(sample.clip, sample.track)
