"""Facial expression of a clip: action-unit (FACS) intensities from the 68 landmarks, and the emotion they show.

Everything is geometric and in the open; there is no trained model. Facts and conventions are those of
specs/expression.md (FACS action units, Ekman, Friesen & Hager 2002 Table 10-1, iBUG-68 points: 17-21 and 36-41
are the SUBJECT's right, on the image's left).

1. A landmark model of the action units (`AU_MOTION`): how far each landmark moves when an AU is at its maximum
   (FACS intensity E, 1.0 on the 0-1 scale = OpenFace's value / 5), in inter-ocular units, as (outward, down).
   The directions are the spec's "68-point motion" column; the magnitudes are estimates (see the table). The
   `warp` generator animates emotions with this same model.
2. Features per frame (`expression_features`, spec section 4.1): the landmarks rotated so that the eye line is
   horizontal and divided by the inter-ocular distance (eye centres, as `fakebench.faces.inter_ocular`): inner
   and outer brow height above the eye corners, brow gap, upper-lid height and lower-lid depth about the eye
   corners' line, lip-corner elevation relative to the mouth centre, mouth width, upper-lip height below the
   nose, nose height, lip thickness, and the inner-lip opening.
3. Per clip (`clip_features`), each feature's median over the frames with a face (eye features without blink
   frames): a robust statistic that reads the apex of an expression held through most of the clip. Speech moves
   the mouth (AU25/26 follow articulation and are not emotion evidence), so mouth features are read at one
   opening, the neutral's, along the clip's own feature ~ opening line.
4. The neutral: the reference photo's (or reference clip's) own features when one is given (the photo a fake
   was animated from: a per-subject neutral), else population norms of real talking faces, against which an AU
   counts only by what lies beyond the spread between people (`fit_population_aus`). A clip's own quietest
   frames are never its neutral: a person may smile throughout.
5. AU intensities (`fit_aus`): the feature changes explained by the AU model, by bounded least squares (each AU
   in 0..1, a small ridge) of change = signatures x intensities, a signature being an AU's model motion applied
   to the neutral face. 68 points cannot tell AU6 (cheek raiser) from AU7 (lid tightener), which both raise the
   lower lid: one number is reported for both. AU26 is the median opening beyond the neutral's over
   `AU26_FULL_IOD`: speech as much as jaw drop, and not used for the emotion.
6. Emotion (`classify`): each emotion's EFH prototypes and major variants as AU vectors (`PROTOTYPES`); a
   prototype's score is the length of the AU vector's projection on the prototype's direction (a.p / |p|: how
   much of the face's AU activity is that prototype); an emotion takes its best prototype; neutral scores
   `NEUTRAL_SCORE`; the highest score wins, and the confidence is its softmax share at temperature
   `CONFIDENCE_TEMPERATURE`.

Measured (benchmarks/expression.py): dlib follows warp's brow raises and lowerings, lip corners and upper lip
well, the lids about half, and the brows' sideways (AU4 gathering) motion hardly at all; behind Grace Hopper's
glasses it barely sees the brows move. Limits (spec section 4.2): posed, frontal faces; yaw and pitch distort
2-D geometry; without a reference the norms cannot know a face's own shape (thin lips read as AU23 when thin
enough); the 68 points carry no wrinkles, so AU6, AU9 and AU10 are weak proxies; an expression held for less
than half the clip is missed by the median.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fakebench.errors import NoFaceError
from fakebench.metrics.registry import MetricContext, register_metric

if TYPE_CHECKING:
    from fakebench.faces import FaceTrack
    from fakebench.samples import Sample

EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised", "fearful", "disgusted")

EXPRESSION_MODEL = ("expression-v2: geometric FACS AUs from dlib's 68 landmarks (eye line horizontal, inter-ocular "
                    "units, per-clip medians, bounded least squares on fakebench's AU landmark model; without a "
                    "reference, population norms with a one-sided test per AU) and EFH 2002 prototypes "
                    "(projection length, softmax confidence)")

# ---------------------------------------------------------------------------------------------- the AU model

# The iBUG-68 mirror pairs: the subject's right point -> its left twin (midline points map to themselves).
_PAIRS = ([(i, 16 - i) for i in range(8)] + [(17 + i, 26 - i) for i in range(5)] + [(31, 35), (32, 34)]
          + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
          + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67)])
MIRROR = np.arange(68)
for _r, _l in _PAIRS:
    MIRROR[_r], MIRROR[_l] = _l, _r
# -1: the subject's right half (the image's left in an unmirrored photo), +1 the left half, 0 the midline
SIDE = np.zeros(68, np.int8)
for _r, _l in _PAIRS:
    if _r in (55, 56, 65):  # lower-lip points are numbered from the left corner back to the right
        _r, _l = _l, _r
    SIDE[_r], SIDE[_l] = -1, 1

# Landmark motion at FACS intensity E (1.0), (outward from the face's midline, down), inter-ocular units, given
# for the subject's right half and the midline; the left half mirrors it. Directions: spec section 1, "68-point
# motion (derived)". Magnitudes are estimates (derived, unverified): with an inter-ocular distance of about
# 6.3 cm, 0.1 is about 6 mm. A maximal brow raise lifts the brow about 9 mm; a broad smile lifts and draws out each
# lip corner about 7 mm; the brow lowerer pulls the inner brows 5 mm down and 4 mm together; the upper lid rises
# 3 mm; a lower-lid raise is 2 mm; a nose wrinkle lifts the nostril wings 4 mm, an upper-lip raise the lip 6 mm;
# the corner depressor pulls the corners 5 mm down, the stretcher 6 mm out, the tightener 2 mm in. Against real
# posed faces (dlib on shared/data/real_faces/video, 2nd to 98th percentile over the clips): brow height varied
# by 0.08-0.11, mouth width by up to 0.3 and lip-corner elevation by up to 0.25 (laughing), the upper lid by
# 0.03-0.04.
AU_MOTION: dict[int, dict[int, tuple[float, float]]] = {
    1: {21: (0.0, -0.14), 20: (0.0, -0.10), 19: (0.0, -0.06), 18: (0.0, -0.03)},  # inner brow raiser
    2: {17: (0.0, -0.14), 18: (0.0, -0.12), 19: (0.0, -0.08), 20: (0.0, -0.04)},  # outer brow raiser
    4: {21: (-0.06, 0.08), 20: (-0.045, 0.075), 19: (-0.025, 0.06), 18: (-0.01, 0.035), 17: (0.0, 0.015)},  # lowerer
    5: {37: (0.0, -0.05), 38: (0.0, -0.05)},  # upper lid raiser
    6: {40: (0.0, -0.03), 41: (0.0, -0.03)},  # cheek raiser: the lower lid pushed up from below
    7: {40: (0.0, -0.035), 41: (0.0, -0.035), 37: (0.0, 0.015), 38: (0.0, 0.015)},  # lid tightener
    9: {31: (0.0, -0.07), 32: (0.0, -0.06), 33: (0.0, -0.055), 30: (0.0, -0.02),  # nose wrinkler
        50: (0.0, -0.045), 51: (0.0, -0.045), 49: (0.0, -0.03), 61: (0.0, -0.04), 62: (0.0, -0.04)},
    10: {50: (0.0, -0.09), 51: (0.0, -0.09), 49: (0.0, -0.06), 61: (0.0, -0.07), 62: (0.0, -0.07)},  # upper lip
    12: {48: (0.12, -0.12), 60: (0.10, -0.10), 49: (0.05, -0.06), 59: (0.05, -0.05), 61: (0.02, -0.02),
         67: (0.02, -0.02)},  # lip corner puller
    15: {48: (0.0, 0.08), 60: (0.0, 0.07), 49: (0.0, 0.035), 59: (0.0, 0.04)},  # lip corner depressor
    20: {48: (0.10, 0.015), 60: (0.09, 0.015), 49: (0.045, 0.0), 59: (0.045, 0.0)},  # lip stretcher
    23: {48: (-0.035, 0.0), 60: (-0.035, 0.0), 49: (-0.035, 0.0), 59: (-0.035, 0.0), 61: (-0.02, 0.0),
         67: (-0.02, 0.0), 50: (-0.015, 0.02), 51: (0.0, 0.03), 58: (-0.015, -0.02), 57: (0.0, -0.03)},  # lip
    # tightener: the red lips narrowed and the mouth narrower
}
AU26_FULL_IOD = 0.25  # AU26 (jaw drop) at E: this much inner-lip opening beyond the neutral's (estimate)
AU_NAMES = {1: "inner brow raiser", 2: "outer brow raiser", 4: "brow lowerer", 5: "upper lid raiser",
            6: "cheek raiser", 7: "lid tightener", 9: "nose wrinkler", 10: "upper lip raiser",
            12: "lip corner puller", 15: "lip corner depressor", 20: "lip stretcher", 23: "lip tightener",
            26: "jaw drop"}


def au_motion(au: int) -> np.ndarray:
    """(68, 2) motion of every landmark at intensity E for one AU: (outward, down), inter-ocular units."""
    out = np.zeros((68, 2))
    for point, (outward, down) in AU_MOTION[au].items():
        out[point] = out[MIRROR[point]] = (outward, down)
    return out


def apply_aus(landmarks: np.ndarray, intensities: dict[int, float]) -> np.ndarray:
    """A (68, 2) face moved by AUs at the given intensities (0-1): the model's motions in the face's frame."""
    lm = np.asarray(landmarks, np.float64)
    u, v, _, iod = _frame(lm)
    moved = lm.copy()
    for au, level in intensities.items():
        if au in AU_MOTION and level:
            m = au_motion(au) * level * iod
            moved += (m[:, 0] * SIDE)[:, None] * u + m[:, 1][:, None] * v
    return moved


# ---------------------------------------------------------------------------------------------- features

FEATURES = ("brow_inner", "brow_outer", "brow_gap", "lid_upper", "lid_lower", "corner_elevation", "mouth_width",
            "upper_lip", "nose", "lip_thickness")
EYE_FEATURES = ("lid_upper", "lid_lower")
MOUTH_FEATURES = ("corner_elevation", "mouth_width", "upper_lip", "nose", "lip_thickness")
# Mouth features move with the inner-lip opening in speech (and dlib's nose points with them), each generator and
# each speaker in its own way, so each clip's mouth features are read at one opening (the neutral's: the reference
# photo's own, or 0 for the population norms) along the clip's own line feature ~ opening. That line's slope is
# fitted on the clip's frames and shrunk towards a population slope (`SLOPE_PRIOR`), which alone serves when the
# mouth hardly moves (a photo). Population slopes: the median over the 19 real speakers of shared/data/real_av
# (dlib landmarks; the quartiles in brackets): corner elevation 0.19 (0.09..0.28), mouth width 0.2 (-0.02..0.43),
# upper lip -0.15 (-0.19..-0.10), nose -0.07 (-0.12..0.02), lip thickness -0.03 (-0.10..0.24).
OPENING_SLOPES = {"corner_elevation": 0.19, "mouth_width": 0.2, "upper_lip": -0.15, "nose": -0.07,
                  "lip_thickness": -0.03}
SLOPE_PRIOR = 0.05  # the population slope counts as this much sum of squared opening deviations (IOD^2): about a
# second of speech at 25 fps with an opening spread of 0.045; a 2-s sentence weighs about 7 times more


def _frame(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per face: unit vectors along the eye line (u, towards the image's right) and down the face (v), the eye
    midpoint and the inter-ocular distance (eye centres)."""
    right, left = lm[..., 36:42, :].mean(-2), lm[..., 42:48, :].mean(-2)
    across = left - right
    iod = np.linalg.norm(across, axis=-1)
    u = across / np.maximum(iod, 1e-9)[..., None]
    v = np.stack([-u[..., 1], u[..., 0]], -1)
    return u, v, (left + right) / 2, iod


def aligned(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of (..., 68, 2) landmarks with the eye line horizontal, the eye midpoint at 0, in inter-ocular
    units; y grows down the face."""
    lm = np.asarray(landmarks, np.float64)
    u, v, centre, iod = _frame(lm)
    p = lm - centre[..., None, :]
    scale = np.maximum(iod, 1e-9)[..., None]
    return np.einsum("...nk,...k->...n", p, u) / scale, np.einsum("...nk,...k->...n", p, v) / scale


def expression_features(landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """Geometric expression features of (..., 68, 2) landmarks (spec section 4.1), inter-ocular units; each side's
    value averaged over the two sides. Also the inner-lip ``opening`` and the eye aspect ratio ``ear``."""
    x, y = aligned(landmarks)

    def both(a: int, b: int) -> np.ndarray:  # the mean of a right point and its left twin, on y
        return (y[..., a] + y[..., b]) / 2

    corners_r, corners_l = (y[..., 36] + y[..., 39]) / 2, (y[..., 42] + y[..., 45]) / 2
    lid_up = ((corners_r - y[..., [37, 38]].mean(-1)) + (corners_l - y[..., [43, 44]].mean(-1))) / 2
    lid_low = ((y[..., [40, 41]].mean(-1) - corners_r) + (y[..., [46, 47]].mean(-1) - corners_l)) / 2

    def dist(a: list[int], b: list[int]) -> np.ndarray:
        return np.hypot(x[..., a] - x[..., b], y[..., a] - y[..., b])

    ear = (((dist([37, 38], [41, 40]).sum(-1)) / (2 * dist([36], [39])[..., 0]))
           + ((dist([43, 44], [47, 46]).sum(-1)) / (2 * dist([42], [45])[..., 0]))) / 2
    return {
        "brow_inner": both(39, 42) - both(21, 22),  # AU1 +, AU4 -
        "brow_outer": both(36, 45) - both(17, 26),  # AU2 +
        "brow_gap": x[..., 22] - x[..., 21],  # AU4 -
        "lid_upper": lid_up,  # AU5 +
        "lid_lower": lid_low,  # AU6/7 -
        "corner_elevation": both(51, 57) - both(48, 54),  # AU12 +, AU15 -
        "mouth_width": dist([48], [54])[..., 0],  # AU12, AU20 +; AU23 -
        "upper_lip": y[..., 51] - y[..., 33],  # AU10 -
        "nose": (y[..., 31] + y[..., 33] + y[..., 35]) / 3,  # AU9 -
        "lip_thickness": (y[..., 62] - y[..., 51]) + (y[..., 57] - y[..., 66]),  # AU23 -
        "opening": dist([61, 62, 63], [67, 66, 65]).mean(-1),  # AU25/26, speech
        "ear": ear,
    }


def _slope(opening: np.ndarray, values: np.ndarray, prior: float) -> float:
    """The clip's slope of a feature on the opening, shrunk towards the population's ``prior``."""
    dx = opening - opening.mean()
    return float((dx @ (values - values.mean()) + SLOPE_PRIOR * prior) / (dx @ dx + SLOPE_PRIOR))


def frame_features(landmarks: np.ndarray, valid: np.ndarray | None = None, *,
                   at_opening: float | None = None) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Per-frame features of the usable frames, mouth features moved to the opening ``at_opening`` (default: the
    clip's median opening) along the clip's feature ~ opening line (`OPENING_SLOPES`).

    Returns (features of the usable frames, their frame indices, which of them have open eyes: eye aspect ratio
    at least 75% of the clip's median, i.e. not in a blink)."""
    lm = np.asarray(landmarks, np.float64)
    ok = np.isfinite(lm).all(axis=(-1, -2))
    if valid is not None:
        ok &= np.asarray(valid, bool)
    if not ok.any():
        raise NoFaceError("no frame with a face; the expression metric needs a clearly visible frontal face")
    f = expression_features(lm[ok])
    opening = f["opening"]
    at = float(np.median(opening)) if at_opening is None else float(at_opening)
    for k in MOUTH_FEATURES:
        f[k] = f[k] - _slope(opening, f[k], OPENING_SLOPES[k]) * (opening - at)
    return f, np.flatnonzero(ok), f["ear"] >= 0.75 * np.median(f["ear"])


def clip_features(landmarks: np.ndarray, valid: np.ndarray | None = None, *,
                  at_opening: float | None = None) -> dict[str, float]:
    """Per-clip features: the medians of `frame_features` (eye features over the open-eye frames only)."""
    f, _, open_eyes = frame_features(landmarks, valid, at_opening=at_opening)
    return {k: float(np.median(v[open_eyes] if k in EYE_FEATURES else v)) for k, v in f.items()}


# Population norms (used without a reference): per-clip features, read at a closed mouth, of real people talking:
# the median over the 19 real speakers of shared/data/real_av (one clip each, dlib landmarks), and their spread
# (standard deviation over the speakers). Without a reference that spread is part of each feature's noise
# (`fit_population_aus`): a face whose brows sit within the normal range of brows is not raising or lowering them.
# Checked on other people (benchmarks/expression.py prints it): the five labelled-neutral photos of
# shared/data/real_faces (Bieber, audrey, cage2, walter2, obama4) have means within 1.4 spreads of every norm (lip
# corners +1.3: still faces sit a little higher than talking ones), each photo within 2.3 spreads except audrey's
# short upper lip (3.2). The neutral warp clips of the two bundled photos were the first candidate and were not
# used: both have brows set unusually wide apart (brow gap 0.48 against 0.37 for the real speakers and for the
# five neutral photos) and high noses (0.66 against 0.71 and 0.76), and the astronaut smiles in her photo
# (lip-corner elevation 0.19, as high as the labelled smiles).
POPULATION_NORMS = {
    "brow_inner": 0.333, "brow_outer": 0.225, "brow_gap": 0.371, "lid_upper": 0.081, "lid_lower": 0.041,
    "corner_elevation": 0.003, "mouth_width": 0.789, "upper_lip": 0.273, "nose": 0.706, "lip_thickness": 0.264,
    "opening": 0.0,
}
POPULATION_SPREAD = {
    "brow_inner": 0.057, "brow_outer": 0.057, "brow_gap": 0.063, "lid_upper": 0.015, "lid_lower": 0.011,
    "corner_elevation": 0.043, "mouth_width": 0.069, "upper_lip": 0.030, "nose": 0.074, "lip_thickness": 0.042,
}
# The jitter scale of each feature (inter-ocular units): about the within-clip standard deviation of dlib's
# features in neutral talking warp clips of the two bundled photos (brows 0.005-0.018, lids 0.003-0.011, mouth
# 0.005-0.027), the mouth width raised to 0.05 since speech alone moves it by 5-7 %. It weighs the features in
# the fit, so that no feature dominates by its noise.
FEATURE_NOISE = {"brow_inner": 0.01, "brow_outer": 0.01, "brow_gap": 0.01, "lid_upper": 0.008, "lid_lower": 0.005,
                 "corner_elevation": 0.02, "mouth_width": 0.05, "upper_lip": 0.02, "nose": 0.01,
                 "lip_thickness": 0.02}

# Without a reference a face's own shape is unknown: each feature deviates from the norms by the spread between
# people as well as by its jitter. The AUs are fitted with that larger noise per feature, and an AU counts only by
# what it has beyond what shape alone would give a neutral face: the fitted intensity less POPULATION_Z times its
# standard error, a one-sided test at 5 % per AU (`population_margin`). The evidence of an AU is pooled over all
# the features it moves: a smile lifts the lip corners and widens the mouth; one person's wide mouth does only the
# second. In the model (tests/test_expression.py), faces of random shape drawn from the norms and spreads read
# neutral 96 % of the time; with an emotion at full intensity on top they read it 92 % (happy), 82 (fearful), 78
# (angry), 62 (disgusted), 48 (surprised), 26 % (sad). Measured (benchmarks/expression.py): of the 19 real speakers
# of shared/data/real_av 18 read neutral, of the 7 labelled real photos of shared/data/real_faces 6 read right; a
# deadzone of 2 spreads on each feature instead read 18 and 5, and missed a labelled teeth smile; z = 2 read no
# surprise or sadness at all in the model.
POPULATION_Z = 1.645

# ---------------------------------------------------------------------------------------------- AUs

# The AUs fitted (6 and 7 share one column: the 68 points see only the lower lid rise of either).
FITTED = (1, 2, 4, 5, 6, 9, 10, 12, 15, 20, 23)
RIDGE = 0.01  # small: it only keeps the fit well posed
# Parsimony, as a FACS coder codes the fewest AUs that explain a face: each unit of AU intensity costs this much
# (in squared noise units). Without it, lip stretch (AU20) was read as a mix of AU12 and AU15, which move the
# features the same way between them.
SPARSITY = 0.5
REPORTED = (1, 2, 4, 5, 6, 7, 9, 10, 12, 15, 20, 23, 26)


def _neutral_face() -> np.ndarray:
    from fakebench.faces import mean_face

    return mean_face().astype(np.float64) * 200.0


def signatures(neutral_landmarks: np.ndarray | None = None) -> np.ndarray:
    """(features, FITTED AUs): how each feature changes per unit intensity of each AU, on a neutral face."""
    face = _neutral_face() if neutral_landmarks is None else np.asarray(neutral_landmarks, np.float64)
    base = expression_features(face)
    cols = []
    for au in FITTED:
        levels = {6: 0.5, 7: 0.5} if au == 6 else {au: 1.0}  # the shared column: the mean of the two
        moved = expression_features(apply_aus(face, levels))
        cols.append([float(moved[f] - base[f]) for f in FEATURES])
    return np.array(cols).T


def fit_aus(delta: np.ndarray, sig: np.ndarray, *, noise: np.ndarray | None = None,
            iterations: int = 3000) -> np.ndarray:
    """Intensities a in [0, 1] minimising sum_f ((sig a - delta)_f / noise_f)^2 + mu |a|^2 + lambda sum(a).

    ``delta``: (..., F) feature changes; returns (..., K). ``noise``: (F,), default `FEATURE_NOISE`. mu = (RIDGE x
    the largest weighted signature norm)^2; lambda = SPARSITY. The objective is convex, so the result does not
    depend on the start; accelerated projected gradient steps (FISTA, step 1/L) converge well within
    ``iterations``."""
    w = 1.0 / (_feature_noise() if noise is None else np.asarray(noise, np.float64))
    a_mat = sig * w[:, None]
    b = np.asarray(delta, np.float64) * w
    gram = a_mat.T @ a_mat + (RIDGE * np.linalg.norm(a_mat, axis=0).max()) ** 2 * np.eye(a_mat.shape[1])
    rhs = b @ a_mat - SPARSITY / 2
    step = 1.0 / np.linalg.eigvalsh(gram).max()
    x = np.zeros(b.shape[:-1] + (a_mat.shape[1],))
    y, t = x.copy(), 1.0
    for _ in range(iterations):
        x_new = np.clip(y - step * (y @ gram - rhs), 0.0, 1.0)
        t_new = (1 + np.sqrt(1 + 4 * t * t)) / 2
        y = x_new + (t - 1) / t_new * (x_new - x)
        x, t = x_new, t_new
    return x


def _feature_noise(population: bool = False) -> np.ndarray:
    """(F,) noise per feature: the jitter, and with ``population`` the spread between people as well."""
    jitter = np.array([FEATURE_NOISE[f] for f in FEATURES])
    return np.hypot(jitter, [POPULATION_SPREAD[f] for f in FEATURES]) if population else jitter


def fit_population_aus(delta: np.ndarray, sig: np.ndarray, *, iterations: int = 3000) -> np.ndarray:
    """AU intensities of feature changes from the population norms: fitted with the between-people noise, each
    less its `population_margin` and at least 0: a lower confidence bound of the intensity."""
    fitted = fit_aus(delta, sig, noise=_feature_noise(population=True), iterations=iterations)
    return np.maximum(fitted - population_margin(sig), 0.0)


def population_margin(sig: np.ndarray | None = None) -> np.ndarray:
    """(K,) what each fitted AU loses without a reference: `POPULATION_Z` standard errors, a standard error being 1 /
    the AU's signature norm weighted by the between-people noise. 1 less it is the most an AU can read without a
    reference: AU12 0.57, the brows' AU1, 2 and 4 about 0.31, AU15 0.02, AU23 0.06 and AU9 0 (nose height, lip
    corners and lip thickness vary more between people than a maximal nose wrinkle, corner depressor or lip
    tightening moves them)."""
    sig = signatures() if sig is None else sig
    return POPULATION_Z / np.linalg.norm(sig / _feature_noise(population=True)[:, None], axis=0)


def _fit(delta: np.ndarray, sig: np.ndarray, population: bool, iterations: int = 3000) -> np.ndarray:
    return (fit_population_aus if population else fit_aus)(delta, sig, iterations=iterations)


# ---------------------------------------------------------------------------------------------- emotions

# EFH 2002 Table 10-1 prototypes and major variants (spec section 2.1) as AU sets, restricted to the AUs estimated
# here (AU25/26/27 left out: speech moves them; AU11, 16, 17, 22, 24 are not estimated). Weights: 1 for an AU
# at any intensity, 0.4 for one marked B (FACS B = 2 of 5). Happiness: 6+12, 12C/D; sadness: 1+4+15, 6+15;
# surprise: 1+2+5B(+26), 1+2; fear: 1+2+4+5+20(+25..27), 1+2+4+5, 1+2+5, 5+20 (the last two are major variants:
# fear's 1+2+5 differs from surprise's by AU5 above B); anger: 4+5+7+23, 4+5+7 (a prototype missing one of 4, 5, 7,
# 10); disgust: AU9 and/or AU10 (Pochedly et al. on Table 10-1; CK+'s rule is 9 or 10).
PROTOTYPES: dict[str, tuple[dict[int, float], ...]] = {
    "happy": ({6: 1.0, 12: 1.0}, {12: 1.0}),
    "sad": ({1: 1.0, 4: 1.0, 15: 1.0}, {6: 1.0, 15: 1.0}),
    "surprised": ({1: 1.0, 2: 1.0, 5: 0.4}, {1: 1.0, 2: 1.0}),
    "fearful": ({1: 1.0, 2: 1.0, 4: 1.0, 5: 1.0, 20: 1.0}, {1: 1.0, 2: 1.0, 4: 1.0, 5: 1.0}, {1: 1.0, 2: 1.0, 5: 1.0},
                {5: 1.0, 20: 1.0}),
    "angry": ({4: 1.0, 5: 1.0, 7: 1.0, 23: 1.0}, {4: 1.0, 5: 1.0, 7: 1.0}),
    "disgusted": ({9: 1.0, 10: 1.0}, {9: 1.0}, {10: 1.0}),
}
NEUTRAL_SCORE = 0.25  # about a prototype's AUs at a trace each (FACS A = 0.2: 0.2 for one AU, 0.28 for two)
CONFIDENCE_TEMPERATURE = 0.1  # a lead of 0.1 in score (half a FACS letter) is e:1 odds


def _prototype_vector(proto: dict[int, float]) -> np.ndarray:
    p = np.zeros(len(FITTED))
    for au, w in proto.items():
        p[FITTED.index(6 if au == 7 else au)] += w  # AU6 and AU7 share one column
    return p


def emotion_scores(aus: dict[int, float]) -> dict[str, float]:
    """Each emotion's score: the longest projection of the AU vector on one of its prototypes' directions.

    With a = the fitted AUs and p a prototype, the score is a.p / |p| = |a| cos(a, p): as long as the AU activity
    along the prototype. For a face showing exactly the prototype at intensity s it is s |p|; for a face whose AUs
    point elsewhere it shrinks with the cosine. Neutral scores `NEUTRAL_SCORE`."""
    a = np.array([aus.get(au, 0.0) for au in FITTED])
    scores = {"neutral": NEUTRAL_SCORE}
    for emotion, variants in PROTOTYPES.items():
        scores[emotion] = max(max(float(a @ p) / float(np.linalg.norm(p)), 0.0)
                              for p in map(_prototype_vector, variants))
    return scores


def classify(aus: dict[int, float]) -> tuple[str, float, dict[str, float]]:
    """(emotion, confidence, scores): the best-scoring emotion and its softmax share."""
    scores = emotion_scores(aus)
    names = list(scores)
    s = np.array([scores[n] for n in names]) / CONFIDENCE_TEMPERATURE
    p = np.exp(s - s.max())
    p /= p.sum()
    best = int(np.argmax(s))
    return names[best], float(p[best]), scores


# ---------------------------------------------------------------------------------------------- the metric

REFERENCE_RESCALE = 1.15  # a reference photo whose face is more than this factor larger or smaller than the clip's is
# resized to the clip's face size before its landmarks are taken: dlib's points shift with image detail (the bundled
# photos, full size against their 256-px warp clips: mean feature difference 0.016 -> 0.013 inter-ocular units)


def reference_neutral(reference, face_iod_px: float | None = None) \
        -> tuple[dict[str, float] | None, np.ndarray | None, str]:
    """(neutral features, neutral landmarks for the signatures, what it is) of a metric `Reference` or None.

    Without a reference: (None, None, "population norms"), which `expression_metrics` reads as the population
    norms with their spread as noise (`fit_population_aus`). A photo is measured at the clip's face size
    (``face_iod_px``: the clip's median inter-ocular distance in pixels); a clip by its per-clip features and
    median landmarks."""
    if reference is None:
        return None, None, "population norms"
    if reference.is_photo:
        lm = _photo_landmarks(reference.path, reference.photo, face_iod_px)
        return clip_features(lm[None]), lm, "reference photo"
    track = reference.sample.track
    track.require_face("the expression reference clip")
    lm = track.landmarks[track.valid]
    return clip_features(lm), np.median(lm, axis=0), "reference clip"


_PHOTO_CACHE: dict[tuple, np.ndarray] = {}


def _photo_landmarks(key: str, photo: np.ndarray, face_iod_px: float | None) -> np.ndarray:
    """The photo's 68 landmarks, taken at the clip's face size (kept for the next clip with the same reference)."""
    import hashlib

    from fakebench.faces import inter_ocular, photo_face

    what = f"the reference photo {key}"
    full = (hashlib.blake2b(np.ascontiguousarray(photo).tobytes(), digest_size=16).hexdigest(), photo.shape)
    if full not in _PHOTO_CACHE:
        _PHOTO_CACHE[full] = photo_face(photo, what=what).landmarks
    lm = _PHOTO_CACHE[full]
    scale = 1.0 if not face_iod_px else float(face_iod_px / inter_ocular(lm))
    if abs(np.log(scale)) <= np.log(REFERENCE_RESCALE):
        return lm
    scale = round(float(np.clip(scale, 0.25, 2.0)), 2)
    sized = (*full, scale)
    if sized not in _PHOTO_CACHE:
        from PIL import Image

        h, w = photo.shape[:2]
        size = (max(32, round(w * scale)), max(32, round(h * scale)))
        resized = np.asarray(Image.fromarray(np.ascontiguousarray(photo)).resize(size, Image.LANCZOS))
        _PHOTO_CACHE[sized] = photo_face(resized, what=what).landmarks / scale  # in the photo's own pixels
    while len(_PHOTO_CACHE) > 16:
        _PHOTO_CACHE.pop(next(iter(_PHOTO_CACHE)))
    return _PHOTO_CACHE[sized]


def _changes(feats: dict, base: dict[str, float]) -> np.ndarray:
    """(..., F) feature changes from the neutral."""
    return np.stack([np.asarray(feats[f], np.float64) - base[f] for f in FEATURES], axis=-1)


def expression_metrics(track: FaceTrack, *, neutral: dict[str, float] | None = None,
                       neutral_landmarks: np.ndarray | None = None, neutral_source: str = "population norms",
                       detail: bool = False) -> dict:
    """The expression of a face track: ``expression_emotion``, ``expression_confidence`` and ``auNN`` intensities.

    ``neutral``: the neutral's per-clip features (`clip_features` of the reference), default the population
    norms; ``neutral_landmarks``: the neutral face the AU signatures are computed on (default fakebench's mean
    face). ``detail`` adds the features, their changes and the emotion scores."""
    track.require_face("the expression metric")
    base = dict(POPULATION_NORMS) if neutral is None else neutral
    feats = clip_features(track.landmarks, track.valid, at_opening=base["opening"])
    delta = _changes(feats, base)
    fitted = _fit(delta, signatures(neutral_landmarks), population=neutral is None)
    aus = {au: float(fitted[FITTED.index(au)]) for au in FITTED}
    aus[7] = aus[6]
    aus[26] = float(np.clip((feats["opening"] - base["opening"]) / AU26_FULL_IOD, 0.0, 1.0))
    emotion, confidence, scores = classify(aus)
    out = {"expression_emotion": emotion, "expression_confidence": round(confidence, 4)}
    out |= {f"au{au:02d}": round(aus[au], 4) for au in REPORTED}
    out |= {"expression_neutral": neutral_source, "expression_model": EXPRESSION_MODEL}
    if detail:
        out |= {"expression_scores": {k: round(v, 4) for k, v in scores.items()},
                "expression_features": {k: round(feats[k], 4) for k in (*FEATURES, "opening")},
                "expression_feature_changes": {f: round(float(d), 4) for f, d in zip(FEATURES, delta, strict=True)}}
    return out


def frame_aus(track: FaceTrack, *, neutral: dict[str, float] | None = None,
              neutral_landmarks: np.ndarray | None = None, iterations: int = 500) -> dict[int, np.ndarray]:
    """Per-frame AU intensities (T,) by AU number (NaN where there is no face), fitted as the clip's are: a time
    course to look at (onset, apex, offset). Blink frames make AU6/7 and AU5 jump; the per-clip values are the
    robust summary."""
    base = dict(POPULATION_NORMS) if neutral is None else neutral
    feats, frames, _ = frame_features(track.landmarks, track.valid, at_opening=base["opening"])
    fitted = _fit(_changes(feats, base), signatures(neutral_landmarks), population=neutral is None,
                  iterations=iterations)
    out = {}
    for au in FITTED:
        a = np.full(track.n_frames, np.nan)
        a[frames] = fitted[:, FITTED.index(au)]
        out[au] = a
    out[7] = out[6].copy()
    opening = np.full(track.n_frames, np.nan)
    opening[frames] = np.clip((feats["opening"] - base["opening"]) / AU26_FULL_IOD, 0.0, 1.0)
    out[26] = opening
    return dict(sorted(out.items()))


def photo_expression(photo: np.ndarray, *, reference: np.ndarray | None = None, detail: bool = False) -> dict:
    """The expression metric on a still photo (its face's landmarks as a one-frame clip)."""
    from fakebench.faces import FaceTrack, photo_face

    face = photo_face(photo)
    track = FaceTrack(boxes=face.box[None].astype(np.float32), scores=np.array([face.score], np.float32),
                      landmarks=face.landmarks[None].astype(np.float32), valid=np.array([True]),
                      n_faces=np.array([face.n_faces], np.int16), detected=np.array([True]),
                      shape_errors=np.zeros(1, np.float32), fps=25.0, width=photo.shape[1], height=photo.shape[0])
    kwargs = {}
    if reference is not None:
        lm = photo_face(reference).landmarks
        kwargs = {"neutral": clip_features(lm[None]), "neutral_landmarks": lm, "neutral_source": "reference photo"}
    return expression_metrics(track, detail=detail, **kwargs)


# A corpus run measures every clip against the population norms (source_reference=False): its real clips have no
# reference and may show emotions of their own, so a fake read against its source clip would measure the
# difference, not its expression, and would not compare with the real column.
@register_metric("expression", per="clip", reference="optional",
                 keys=("expression_emotion", "expression_confidence", *(f"au{au:02d}" for au in REPORTED)),
                 description="facial action units (FACS, 0-1 = OpenFace value/5) from the 68 landmarks and the "
                             "emotion they show (neutral, happy, sad, angry, surprised, fearful, disgusted; EFH "
                             "2002 prototypes) with its confidence; the reference's face is the neutral, else "
                             "population norms",
                 source_reference=False)
def _expression_metric(sample: Sample, ctx: MetricContext) -> dict:
    track = sample.track
    track.require_face("the expression metric")
    from fakebench.faces import inter_ocular

    face_iod = float(np.median(inter_ocular(track.landmarks[track.valid])))
    neutral, landmarks, source = reference_neutral(ctx.reference, face_iod)
    return expression_metrics(track, neutral=neutral, neutral_landmarks=landmarks, neutral_source=source)
