"""Training-free talking photo: the photo's 68 landmarks driven by the audio, rendered by warping the photo.

Four steps, each a plain function:

1. `articulation`: per video frame, the mouth opening (speech envelope in dB relative to the clip's
   speech level, noise-gated, attack/release smoothed) and the mouth-width change (spectral centroid:
   rounded, dark sounds narrow the mouth, bright spread sounds widen it).
2. `draw_blinks`: blink onsets with log-normal inter-blink intervals at a human rate (17-26/min by
   default), 100-400 ms long, with a fast close and a slower reopening.
3. `FaceRig.deform`: the landmarks moved in the face's own frame (jaw, lips, mouth corners, eyelids),
   then `pose_transforms` adds small smooth head motion (translation, roll, scale) to the whole image.
4. `Warper`: a piecewise-affine inverse map over a Delaunay triangulation of the landmarks plus
   anchors round the face and on the frame border, so only the face deforms; pixels outside the
   deforming triangles follow the head motion alone. One `grid_sample` per batch of frames samples
   the photo; then the open mouth is filled with a dark cavity and a hint of upper teeth, and a
   closing eye's slit with shadowed lid skin.

An emotion (``emotion``, ``intensity``) adds FACS action units to the driven landmarks, combined as Ekman,
Friesen & Hager's prototypes combine them (`EMOTION_AUS`), each moving the landmarks as
`fakebench.metrics.expression.AU_MOTION` says, with an onset, an apex held through the speech and an offset
(`expression_envelope`). The AUs ride on the articulation: the lips keep opening and closing with the sound
under a smile, and a jaw drop (AU26) yields where the speech closes the lips. Neutral (or intensity 0) is
exactly the clip warp made before it had emotions.

The ground truth records what was driven: per frame the inner-lip opening and mouth width (inter-ocular
units, as `fakebench.faces` measures them), eye closure and eye aspect ratio, head pose, the blinks, the
driven landmarks themselves, and the emotion, its intensity and each action unit's activation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from fakebench.errors import AudioError, ConfigError, NoFaceError
from fakebench.faces import (
    Blink,
    _pixel_to_normalised,
    eye_aspect_ratio,
    inter_ocular,
    invert_transform,
    mouth_opening,
    photo_face,
)
from fakebench.generators.base import (
    FPS_OPTION,
    MAX_SIDE_OPTION,
    GeneratedClip,
    GeneratedStream,
    GeneratorBase,
    n_output_frames,
    register,
    size_photo,
)
from fakebench.media import check_speech_audio, ensure_rgb, resample_audio, to_mono
from fakebench.metrics.expression import AU26_FULL_IOD, AU_MOTION, EMOTIONS, SIDE, au_motion
from fakebench.pitch import PitchTrack, f0_track, is_singing, sung_fraction
from fakebench.registry import Option, check_seed

MIN_FACE_PX = 64  # narrowest face box (px) in the photo that gives a usable animation
MIN_RENDERED_FACE_PX = 48  # narrowest face box after `max_side` downscaling
LANDMARKS_STORED_MAX_FRAMES = 3000

# Articulation, in inter-ocular units (IOD) where it is a length.
OPENING_MAX = 0.32  # inner-lip gap at full voice
CLOSED_GAP = 0.006  # the gap left between closed lips, keeps the mouth triangles non-degenerate
GATE_DB = 30.0  # sound this far below the clip's speech level closes the mouth
FULL_OPEN_DB = 3.0  # ... and this far below (or louder) opens it fully
ATTACK_S, RELEASE_S = 0.015, 0.05
WIDTH_RANGE = 0.07  # the mouth widens or narrows by up to this fraction with the spectral centroid
WIDTH_OPEN_COUPLING = 0.25  # a wide-open mouth also gets narrower by this fraction per unit opening
ANALYSIS_SR, HOP, WINDOW = 16000, 160, 512  # 10 ms hops of 32 ms windows

# Blinks (Bentivoglio et al. 1997; Stern et al. 1984; see specs/metrics.md section 3.4).
BLINK_RATE_RANGE = (17.0, 26.0)
IBI_CV = 0.6
BLINK_MEDIAN_S, BLINK_SIGMA, BLINK_MIN_S, BLINK_MAX_S = 0.22, 0.3, 0.1, 0.4
BLINK_CLOSE_END, BLINK_OPEN_START = 0.3, 0.45  # fractions of the blink: closing, closed, reopening
CLOSED_EAR = 0.07

# Head motion amplitudes (`fakebench.synthetic.head_motion` draws smooth sums of sines).
HEAD_SHIFT_IOD, HEAD_SCALE, HEAD_ROLL_DEG = 0.06, 0.02, 2.0

RING_IOD = 0.8  # anchor ring this far outside the face outline: the deformation stays inside it

# The rig: the 68 landmarks plus four virtual inner-lip points (chord midpoints next to the mouth
# corners), so an open mouth is rounded rather than a triangle.
N_RIG = 72
VIRTUAL = {68: (60, 61), 69: (63, 64), 70: (60, 67), 71: (64, 65)}
INNER_UPPER = np.array([68, 61, 62, 63, 69])  # columns across the mouth, paired with INNER_LOWER
INNER_LOWER = np.array([70, 67, 66, 65, 71])
MIDDLE = 2  # the column of 62/66
UPPER_LIP_LINE = np.array([60, 68, 61, 62, 63, 69, 64])
LOWER_LIP_LINE = np.array([60, 70, 67, 66, 65, 71, 64])
OUTER_UPPER = np.array([49, 50, 51, 52, 53])
OUTER_LOWER = np.array([55, 56, 57, 58, 59])
CORNERS = np.array([48, 54, 60, 64])
MOUTH = np.array(list(range(48, 68)) + list(VIRTUAL))
CORNER_GAIN = 0.35  # mouth corners drop this fraction of the middle of the lower lip
OUTER_UPPER_GAIN = 0.85
LIP_INSET = 0.2  # inner-lip texture is taken this far (of the lip's thickness) inside the lip: no teeth smear
JAW_GAIN = {2: 0.06, 3: 0.18, 4: 0.38, 5: 0.6, 6: 0.8, 7: 0.95, 8: 1.0, 9: 0.95, 10: 0.8, 11: 0.6, 12: 0.38,
            13: 0.18, 14: 0.06}
EYELIDS = np.array([[37, 41], [38, 40], [43, 47], [44, 46]])  # (upper, lower) lid points
EYE_LINES = ((np.array([36, 37, 38, 39]), np.array([36, 41, 40, 39])),
             (np.array([42, 43, 44, 45]), np.array([42, 47, 46, 45])))
MOVING = np.array(sorted(set(JAW_GAIN) | set(MOUTH) | set(EYELIDS.ravel())))

# Emotions (specs/expression.md): each a combination of FACS action units as Ekman, Friesen & Hager's 2002
# prototypes (Table 10-1) combine them, each AU at the requested intensity, those the prototype marks B at 0.4 of
# it (FACS B = 2 of 5). The AUs move the landmarks as `fakebench.metrics.expression.AU_MOTION` says; AU26 (jaw
# drop) opens the mouth beyond the speech, at half the intensity so that the speech stays legible. Happiness
# 6+12; sadness 1+4+15; surprise 1+2+5B+26; fear 1+2+4+5+20+26; anger 4+5+7+23; disgust 9+10 ("AU9 and/or
# AU10").
EMOTION_AUS: dict[str, dict[int, float]] = {
    "neutral": {},
    "happy": {6: 1.0, 12: 1.0},
    "sad": {1: 1.0, 4: 1.0, 15: 1.0},
    "surprised": {1: 1.0, 2: 1.0, 5: 0.4, 26: 0.5},
    "fearful": {1: 1.0, 2: 1.0, 4: 1.0, 5: 1.0, 20: 1.0, 26: 0.5},
    "angry": {4: 1.0, 5: 1.0, 7: 1.0, 23: 1.0},
    "disgusted": {9: 1.0, 10: 1.0},
}
# Onset and offset ramps: a few hundred ms (spec section 3: 0.2-0.5 s; deliberate expressions have fast onsets
# and longer offsets, Schmidt et al. 2006); the apex is held through the speech between them.
EXPRESSION_ONSET_S, EXPRESSION_OFFSET_S = 0.3, 0.4
DEFAULT_INTENSITY = 0.6  # FACS C (3 of 5, "marked"): clearly visible, not extreme

# Pitch-driven motion (singing). Singers' brows and heads rise with the pitch they sing (Thompson, Russo & Quinto
# 2008; Thompson, Russo & Livingstone 2010: viewers read interval size from them), and speakers' brows and heads
# move with f0 too (Cave et al. 1996; Yehia, Kuratate & Vatikiotis-Bateson 2002), less tightly. Pitch in semitones
# from the clip's median voiced pitch, held across short unvoiced gaps and smoothed, saturates at PITCH_SPAN_ST:
# up to PITCH_BROW_MAX of AU1+2 above the median (the brows rest at and below it) and a head lift of PITCH_HEAD_IOD
# (and as much lowered below it): small, as the motion of a singer who is not acting.
PITCH_MOTION_MODES = ("auto", "on", "off")
PITCH_SPAN_ST = 7.0  # a fifth
PITCH_BROW_MAX = 0.5  # AU1+2 activation (FACS C is 0.6)
PITCH_HEAD_IOD = 0.04
PITCH_HOLD_S = 0.4  # an unvoiced gap relaxes the held pitch towards the median with this time constant
PITCH_SMOOTH_S = 0.08  # Gaussian smoothing (sigma) of the pitch curve


@register("warp")
class WarpGenerator(GeneratorBase):
    description = "training-free talking photo: audio-driven landmark warping with blinks and head motion"
    takes = "photo"
    options = (
        FPS_OPTION, MAX_SIDE_OPTION,
        Option("head_motion", bool, True, help="small smooth head motion (translation, roll, scale)"),
        Option("blink_rate_per_min", float, None, min=0.0, max=120.0,
               help="blinks per minute (default: drawn from the human 17-26)"),
        Option("emotion", str, "neutral", choices=EMOTIONS,
               help="facial expression held through the speech, made of FACS action units (EFH 2002 prototypes)"),
        Option("intensity", float, DEFAULT_INTENSITY, min=0.0, max=1.0,
               help="strength of the emotion's action units at their apex (0 none, 0.6 FACS C, 1 FACS E)"),
        Option("pitch_motion", str, "auto", choices=PITCH_MOTION_MODES,
               help="the voice's pitch raises the brows (AU1+2) and lifts the head a little, as singers' do: "
                    "auto = when the audio is sung (held notes; speech glides and is left as it was), on, off"),
    )
    min_audio_s = 0.1
    preload = ("fakebench.faces", "scipy.ndimage", "scipy.spatial")
    default_rank = 10  # the default photo generator: the best that works offline with no trained weights
    reference_ok = True  # human blink statistics and in-sync lips: the demo corpus's stand-in for real video

    def __init__(self, **options) -> None:
        o = self.check_options(options)
        self.fps = float(o["fps"])
        self.blink_rate_per_min = o["blink_rate_per_min"]
        self.head_motion = bool(o["head_motion"])
        self.max_side = o["max_side"]
        self.emotion = str(o["emotion"])
        self.intensity = float(o["intensity"])
        self.pitch_motion = str(o["pitch_motion"])

    def generate(self, image: np.ndarray, audio: np.ndarray, sample_rate: int, *,
                 seed: int = 0) -> GeneratedClip:
        return self.generate_stream(image, audio, sample_rate, seed=seed).collect()

    def generate_stream(self, image: np.ndarray, audio: np.ndarray, sample_rate: int, *,
                        seed: int = 0) -> GeneratedStream:
        """`generate`, its frames rendered batch by batch as the stream is read (see `GeneratedStream`)."""
        seed = check_seed(seed)
        mono = prepare_audio(audio, sample_rate, self.fps)
        self.check_audio_length(mono.size, int(sample_rate), "the driving audio")
        photo, landmarks = prepare_photo(ensure_rgb(image), self.max_side)
        n = n_output_frames(mono.size, int(sample_rate), self.fps)
        rate_rng, blink_rng, head_rng = (np.random.default_rng(s)
                                         for s in np.random.SeedSequence(int(seed)).spawn(3))

        rig = FaceRig(landmarks)
        opening, width = articulation(mono, int(sample_rate), n, self.fps)
        rate = float(rate_rng.uniform(*BLINK_RATE_RANGE)) if self.blink_rate_per_min is None \
            else float(self.blink_rate_per_min)
        blinks, closure = draw_blinks(n, self.fps, rate, blink_rng)
        pose = head_pose(n, self.fps, rig.iod, head_rng) if self.head_motion else np.zeros((n, 4))
        centre = landmarks.mean(0)
        transforms = pose_transforms(pose, centre)
        activations = au_activations(self.emotion, self.intensity, n, self.fps)
        pitch = f0_track(mono, int(sample_rate))
        singing = is_singing(pitch)
        moved = None
        if self.pitch_motion == "on" or (self.pitch_motion == "auto" and singing):
            moved = pitch_driven(pitch, n, self.fps)
            if moved.brow.any():  # rising pitch, raised brows: AU1 and AU2 together, on top of any emotion
                for au in (1, 2):
                    activations[au] = np.minimum(activations.get(au, 0.0) + moved.brow, 1.0)
            if self.head_motion:
                pose = pose + np.outer(-PITCH_HEAD_IOD * rig.iod * moved.lift, [0.0, 1.0, 0.0, 0.0])  # y grows down
                transforms = pose_transforms(pose, centre)
        if activations:  # speech and expression combine: the AUs ride on the articulation
            opening = opening + jaw_drop(activations.get(26), opening, self.fps)
            expression = rig.expression(activations)
            rig_points = rig.deform(opening, width, closure, expression=expression)
            warper = Warper(photo, rig, moving=expressive_points(activations),
                            apex=expression[int(np.argmax(np.abs(expression).sum((1, 2))))])
        else:  # neutral: exactly the clip warp made before it had emotions
            rig_points = rig.deform(opening, width, closure)
            warper = Warper(photo, rig)
        driven = apply_transforms(transforms, rig_points[:, :68])

        def truth() -> dict:  # after the last chunk: the render counts the fold-overs
            record = ground_truth(seed=int(seed), fps=self.fps, driven=driven, blinks=blinks, closure=closure,
                                  rate=rate, pose=pose, centre=centre, rig=rig, foldovers=warper.foldovers)
            record |= expression_truth(self.emotion, self.intensity, activations)
            record |= pitch_truth(self.pitch_motion, pitch, singing, moved, n, self.fps,
                                  rig.iod if self.head_motion else 0.0)
            return record

        chunks = warper.render_chunks(rig_points, transforms, closure)
        return GeneratedStream(n_frames=n, fps=self.fps, width=photo.shape[1], height=photo.shape[0], audio=mono,
                               sample_rate=int(sample_rate), chunks=chunks, ground_truth=truth)


# ---------------------------------------------------------------------------------------------- inputs

def prepare_audio(audio: np.ndarray, sample_rate: int, fps: float) -> np.ndarray:
    """Mono float32 audio, checked to be speech-like and at least one frame long."""
    if not isinstance(sample_rate, int | np.integer) or sample_rate <= 0:
        raise AudioError(f"sample_rate must be a positive whole number of Hz, got {sample_rate!r}")
    a = np.asarray(audio)
    if np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float32) / float(np.iinfo(a.dtype).max + 1)
    mono = np.ascontiguousarray(to_mono(a), dtype=np.float32)
    if not np.isfinite(mono).all():
        raise AudioError("the audio contains NaN or infinite samples; give decoded, finite audio")
    check_speech_audio(mono, int(sample_rate), fps=fps)
    return mono


def prepare_photo(rgb: np.ndarray, max_side: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The photo at output size and its 68 landmarks there; NoFaceError when the face is too small.

    The photo is shrunk first (`size_photo`): its face is found on a copy of at most 1024 px (or the output
    size when larger), never on a phone photo's full 12 million pixels."""
    sized = size_photo(rgb, max_side)
    face = photo_face(sized.analysis)
    face_px = float(face.box[2] - face.box[0]) / sized.scale(sized.original_size, sized.analysis_size)
    if face_px < MIN_FACE_PX:
        raise NoFaceError(f"the face in the photo is only {face_px:.0f} pixels wide; give a photo whose face "
                          f"is at least {MIN_FACE_PX} pixels wide")
    rendered_px = face_px * sized.scale(sized.original_size, sized.output_size)
    if rendered_px < MIN_RENDERED_FACE_PX:
        raise ConfigError(f"max_side={max_side} shrinks the face to {rendered_px:.0f} pixels; "
                          f"raise max_side so the face stays at least {MIN_RENDERED_FACE_PX} pixels wide")
    return sized.output(), sized.to_output(face.landmarks)


# ---------------------------------------------------------------------------------------------- the mouth

def articulation(audio: np.ndarray, sample_rate: int, n_frames: int,
                 fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Per video frame: target inner-lip opening (IOD units) and relative mouth-width change.

    Loudness (dB below the clip's speech level, gated) sets how far the mouth opens; the balance of
    first-formant energy (400-1100 Hz against 100-400 Hz: open vowels against close ones) scales it;
    the spectral centroid (bright, spread sounds against dark, rounded ones) sets the width. Features
    come from 32 ms windows every 10 ms, are smoothed with a short attack and a longer release, and
    are read at the centre of each frame's time slot.
    """
    x = resample_audio(audio, sample_rate, ANALYSIS_SR)
    level_db, f1_balance_db, log_centroid = _frame_features(x)
    loud = level_db[level_db > level_db.max() - 45.0]
    speech_db = float(np.percentile(loud, 90))
    voice = np.clip((level_db - speech_db + GATE_DB) / (GATE_DB - FULL_OPEN_DB), 0.0, 1.0) ** 1.5
    voice[level_db < -60.0] = 0.0  # silence in absolute terms, whatever the clip's level
    voiced = voice > 0.3
    f1_ref = float(np.median(f1_balance_db[voiced])) if voiced.any() else 0.0
    vowel_open = 1.0 / (1.0 + np.exp(-(f1_balance_db - f1_ref) / 4.0))
    opening = _attack_release(voice * (0.5 + 0.5 * vowel_open), ATTACK_S, RELEASE_S)

    c_ref = float(np.median(log_centroid[voiced])) if voiced.any() else float(np.median(log_centroid))
    spread = np.tanh((log_centroid - c_ref) / 0.4)
    width = _attack_release(WIDTH_RANGE * spread * np.sqrt(voice), 0.03, 0.03)

    hop_times = np.arange(level_db.size) * HOP / ANALYSIS_SR
    frame_times = (np.arange(n_frames) + 0.5) / fps
    return OPENING_MAX * np.interp(frame_times, hop_times, opening), np.interp(frame_times, hop_times, width)


def _frame_features(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per Hann window centred every HOP samples: level (dB), first-formant balance (dB), log centroid."""
    n = 1 + x.size // HOP
    padded = np.pad(x.astype(np.float32), (WINDOW // 2, WINDOW // 2 + HOP))
    frames = np.lib.stride_tricks.sliding_window_view(padded, WINDOW)[::HOP][:n]
    window = np.hanning(WINDOW).astype(np.float32)
    freqs = np.fft.rfftfreq(WINDOW, 1.0 / ANALYSIS_SR)
    band = (freqs >= 150.0) & (freqs <= 5000.0)
    low, f1 = (freqs >= 100.0) & (freqs < 400.0), (freqs >= 400.0) & (freqs < 1100.0)
    level, balance, centroid = np.empty(n), np.empty(n), np.empty(n)
    for start in range(0, n, 2048):
        sl = slice(start, start + 2048)
        block = frames[sl] * window
        level[sl] = np.mean(block.astype(np.float64) ** 2, axis=1) / np.mean(window**2)
        power = np.abs(np.fft.rfft(block, axis=1)).astype(np.float64) ** 2
        balance[sl] = 10.0 * np.log10((power[:, f1].sum(1) + 1e-9) / (power[:, low].sum(1) + 1e-9))
        centroid[sl] = (power[:, band] @ freqs[band]) / (power[:, band].sum(1) + 1e-12)
    return 10.0 * np.log10(level + 1e-12), balance, np.log(np.maximum(centroid, 150.0))


def _attack_release(x: np.ndarray, attack_s: float, release_s: float) -> np.ndarray:
    dt = HOP / ANALYSIS_SR
    up, down = 1.0 - np.exp(-dt / attack_s), 1.0 - np.exp(-dt / release_s)
    out = np.empty(len(x))
    y = 0.0
    for i, v in enumerate(np.asarray(x, np.float64).tolist()):
        y += (up if v > y else down) * (v - y)
        out[i] = y
    return out


# ---------------------------------------------------------------------------------------------- blinks

def blink_profile(u: np.ndarray) -> np.ndarray:
    """Lid closure (0 open, 1 closed) over a blink's normalised time u in [0, 1]: fast close, slow reopen."""
    u = np.asarray(u, np.float64)
    c = np.zeros_like(u)
    closing = (u >= 0) & (u < BLINK_CLOSE_END)
    c[closing] = 0.5 - 0.5 * np.cos(np.pi * u[closing] / BLINK_CLOSE_END)
    c[(u >= BLINK_CLOSE_END) & (u < BLINK_OPEN_START)] = 1.0
    opening = (u >= BLINK_OPEN_START) & (u < 1)
    s = (u[opening] - BLINK_OPEN_START) / (1 - BLINK_OPEN_START)
    c[opening] = (0.5 + 0.5 * np.cos(np.pi * np.sqrt(s))) ** 1.5  # quick first half, long tail
    return c


def draw_blinks(n_frames: int, fps: float, rate_per_min: float,
                rng: np.random.Generator) -> tuple[list[Blink], np.ndarray]:
    """Blinks as a renewal process with log-normal intervals of mean 60/rate s, and per-frame closure (T,)."""
    closure = np.zeros(n_frames)
    if rate_per_min <= 0:
        return [], closure
    duration = n_frames / fps
    mean_ibi = 60.0 / rate_per_min
    sigma = np.sqrt(np.log1p(IBI_CV**2))
    mu = np.log(mean_ibi) - sigma**2 / 2
    frame_times = (np.arange(n_frames) + 0.5) / fps
    blinks: list[Blink] = []
    t = float(rng.uniform(0.0, 1.0)) * mean_ibi  # the clip starts at a random point of an interval
    while True:
        d = float(np.clip(rng.lognormal(np.log(BLINK_MEDIAN_S), BLINK_SIGMA), BLINK_MIN_S, BLINK_MAX_S))
        if t + d > duration:
            break
        c = blink_profile((frame_times - t) / d)
        peak = int(np.argmax(c)) if c.max() > 0 else int(np.clip((t + 0.375 * d) * fps, 0, n_frames - 1))
        c[peak] = 1.0  # the frame nearest full closure shows the eye shut
        shown = np.flatnonzero(c > 0.05)
        blinks.append(Blink(start=int(shown[0]), end=int(shown[-1]), peak=peak, duration_ms=d * 1000.0, onset_s=t))
        closure = np.maximum(closure, c)
        t += max(float(rng.lognormal(mu, sigma)), d + 0.25)
    return blinks, closure


# ---------------------------------------------------------------------------------------------- emotion

def expression_envelope(n_frames: int, fps: float, onset_s: float = EXPRESSION_ONSET_S,
                        offset_s: float = EXPRESSION_OFFSET_S) -> np.ndarray:
    """(T,) 0..1: onset from the first frame (0 there), apex held, offset ending at the last frame (0 there).

    Ramps are raised cosines; a clip shorter than both ramps gets them shortened in proportion, so its apex is
    reached only for a moment in the middle."""
    if n_frames < 3:
        return np.zeros(n_frames)
    t = np.arange(n_frames) / fps
    duration = (n_frames - 1) / fps
    shrink = min(1.0, duration / (onset_s + offset_s))
    ramp = np.minimum(np.clip(t / (onset_s * shrink), 0.0, 1.0),
                      np.clip((duration - t) / (offset_s * shrink), 0.0, 1.0))
    return 0.5 - 0.5 * np.cos(np.pi * ramp)


def au_activations(emotion: str, intensity: float, n_frames: int, fps: float) -> dict[int, np.ndarray]:
    """Per AU of the emotion, its per-frame activation (0..1): share x intensity x the onset/apex/offset envelope.
    Empty for neutral or intensity 0."""
    if emotion not in EMOTION_AUS:
        raise ConfigError(f"--emotion must be one of {', '.join(EMOTIONS)}, got {emotion!r}")
    if intensity <= 0 or not EMOTION_AUS[emotion]:
        return {}
    envelope = expression_envelope(n_frames, fps)
    return {au: share * float(intensity) * envelope for au, share in EMOTION_AUS[emotion].items()}


def jaw_drop(level: np.ndarray | None, opening: np.ndarray, fps: float) -> np.ndarray:
    """Extra inner-lip opening (IOD) for AU26 at `level`: the jaw stays dropped through the expression, but yields
    where speech closes the lips (bilabials), so the mouth still opens and closes with the sound.

    Speaking = some opening within 0.25 s; while speaking the extra follows the articulation's own opening
    (squared: next to nothing at a closure, all of it from a quarter of full voice up); in pauses it is held."""
    from scipy.ndimage import maximum_filter1d

    if level is None:
        return np.zeros_like(opening)
    reach = max(1, round(0.25 * fps))
    speaking = maximum_filter1d(opening, size=2 * reach + 1, mode="nearest") > 0.1 * OPENING_MAX
    follow = np.where(speaking, np.clip(opening / (0.25 * OPENING_MAX), 0.0, 1.0) ** 2, 1.0)
    return AU26_FULL_IOD * np.asarray(level) * follow


def expressive_points(activations: dict[int, np.ndarray]) -> np.ndarray:
    """The rig points that move: the speaking ones plus every landmark the active AUs move (brows, nose...)."""
    moved = {p for au in activations if au in AU_MOTION for p in np.flatnonzero(np.abs(au_motion(au)).sum(1))}
    return np.array(sorted(set(MOVING.tolist()) | {int(p) for p in moved}))


def expression_truth(emotion: str, intensity: float, activations: dict[int, np.ndarray]) -> dict:
    """Ground-truth keys of the expression: emotion, intensity, per-frame activations of each AU driven."""
    return {
        "emotion": emotion,
        "intensity": round(float(intensity), 4),
        "expression_onset_s": EXPRESSION_ONSET_S,
        "expression_offset_s": EXPRESSION_OFFSET_S,
        "au_activations": {f"au{au:02d}": np.round(a, 4).tolist() for au, a in sorted(activations.items())},
    }


# ---------------------------------------------------------------------------------------------- pitch

@dataclass(frozen=True, eq=False)
class PitchMotion:
    """Per video frame: the voice's f0 (Hz, NaN unvoiced), the smoothed pitch lift (-1 .. 1, 0 at the median
    voiced pitch) and the brow raise it drives (AU1+2 activation, 0 .. `PITCH_BROW_MAX`)."""

    f0: np.ndarray
    lift: np.ndarray
    brow: np.ndarray


def frame_f0(pitch: PitchTrack, n_frames: int, fps: float) -> np.ndarray:
    """(T,) the f0 (Hz) at each video frame's centre; NaN where the voice is unvoiced there."""
    at = np.clip(np.round((np.arange(n_frames) + 0.5) / fps / pitch.hop_s).astype(int), 0, max(pitch.f0.size - 1, 0))
    return pitch.f0[at] if pitch.f0.size else np.full(n_frames, np.nan)


def pitch_driven(pitch: PitchTrack, n_frames: int, fps: float) -> PitchMotion:
    """The pitch lift and brow raise per video frame (see `PITCH_SPAN_ST`): semitones from the median voiced pitch,
    held through unvoiced gaps (relaxing to 0 over `PITCH_HOLD_S`), Gaussian-smoothed, saturated by tanh."""
    from scipy.ndimage import gaussian_filter1d

    st = pitch.semitones()
    n = st.size
    held = np.zeros(n)
    if pitch.voiced.any():
        idx = np.arange(n)
        last = np.maximum.accumulate(np.where(pitch.voiced, idx, -1))
        seen = last >= 0
        gap = (idx - last) * pitch.hop_s
        held[seen] = st[last[seen]] * np.exp(-gap[seen] / PITCH_HOLD_S)
    smooth = gaussian_filter1d(held, PITCH_SMOOTH_S / pitch.hop_s, mode="nearest") if n else held
    lift_hops = np.tanh(smooth / PITCH_SPAN_ST)
    frame_times = (np.arange(n_frames) + 0.5) / fps
    lift = np.interp(frame_times, pitch.times, lift_hops) if n else np.zeros(n_frames)
    return PitchMotion(f0=frame_f0(pitch, n_frames, fps), lift=lift, brow=PITCH_BROW_MAX * np.maximum(lift, 0.0))


def pitch_truth(mode: str, pitch: PitchTrack, singing: bool, moved: PitchMotion | None, n_frames: int, fps: float,
                head_iod_px: float) -> dict:
    """Ground-truth keys of the voice's pitch and the motion it drove: per frame f0 (Hz, null unvoiced), and when
    the motion was on, the brow raise (AU1+2 activation) and the head lift (output px, up)."""
    f0 = frame_f0(pitch, n_frames, fps)
    median = pitch.median_f0()
    return {
        "pitch_motion": mode,
        "pitch_motion_on": moved is not None,
        "singing": bool(singing),
        "sung_fraction": round(sung_fraction(pitch), 4),
        "f0_median_hz": round(median, 2) if np.isfinite(median) else None,
        "f0_hz": [None if not np.isfinite(v) else round(float(v), 2) for v in f0],
        "pitch_lift": None if moved is None else np.round(moved.lift, 4).tolist(),
        "pitch_brow": None if moved is None else np.round(moved.brow, 4).tolist(),
        "pitch_head_lift_px": None if moved is None else np.round(PITCH_HEAD_IOD * head_iod_px * moved.lift,
                                                                  3).tolist(),
    }


# ---------------------------------------------------------------------------------------------- head motion

def head_pose(n_frames: int, fps: float, iod: float, rng: np.random.Generator) -> np.ndarray:
    """(T, 4): dx, dy (px), relative scale change, roll (degrees); small and smooth."""
    from fakebench.synthetic import head_motion

    return head_motion(n_frames, fps, seed=int(rng.integers(2**31)), shift_px=HEAD_SHIFT_IOD * iod,
                       scale=HEAD_SCALE, rotation_deg=HEAD_ROLL_DEG)


def pose_transforms(pose: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """(T, 2, 3) photo -> frame maps: rotate and scale about `centre`, then shift."""
    dx, dy, ds, deg = np.asarray(pose, np.float64).T
    a = np.deg2rad(deg)
    s = 1.0 + ds
    cos, sin = s * np.cos(a), s * np.sin(a)
    rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], 1)
    offset = centre + np.stack([dx, dy], -1) - rot @ centre
    return np.concatenate([rot, offset[:, :, None]], axis=2)


def apply_transforms(transforms: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(T, 2, 3) maps applied to (T, N, 2) points."""
    return np.einsum("tij,tnj->tni", transforms[:, :, :2], points) + transforms[:, None, :, 2]


# ---------------------------------------------------------------------------------------------- the rig


def _profile(x: np.ndarray) -> np.ndarray:
    """How far a point at x across the mouth (-1 one corner, 0 middle, 1 other) opens: a half-ellipse."""
    return np.sqrt(np.clip(1.0 - np.square(x), 0.0, 1.0))


class FaceRig:
    """The photo's landmarks, how they move, and the anchors that hold the rest of the image in place."""

    def __init__(self, landmarks: np.ndarray) -> None:
        lm = np.asarray(landmarks, np.float64)
        self.landmarks = lm
        self.points = np.concatenate([lm, [(lm[a] + lm[b]) / 2 for a, b in VIRTUAL.values()]])
        self.iod = float(inter_ocular(lm))
        across = lm[42:48].mean(0) - lm[36:42].mean(0)
        self.u = across / np.linalg.norm(across)  # along the eye line, towards the image's right
        self.v = np.array([-self.u[1], self.u[0]])  # down the face
        pu = self.points @ self.u
        pv = self.points @ self.v
        self.inner_gaps = pv[INNER_LOWER] - pv[INNER_UPPER]
        inner_centre, inner_half = (pu[60] + pu[64]) / 2, max(abs(pu[64] - pu[60]) / 2, 1e-6)
        columns = (pu[INNER_UPPER] + pu[INNER_LOWER]) / 2
        self.column_profile = _profile((columns - inner_centre) / inner_half)
        self.column_profile /= max(self.column_profile[MIDDLE], 1e-6)
        self.mouth_centre_u = (pu[48] + pu[54]) / 2
        outer_half = max(abs(pu[54] - pu[48]) / 2, 1e-6)
        self.outer_upper_profile = _profile((pu[OUTER_UPPER] - self.mouth_centre_u) / outer_half)
        self.outer_lower_profile = _profile((pu[OUTER_LOWER] - self.mouth_centre_u) / outer_half)
        self.closed_lid_gap = float(np.clip(CLOSED_EAR / max(float(eye_aspect_ratio(lm)), 1e-3), 0.1, 0.5))

    def texture_points(self) -> np.ndarray:
        """Where each rig point takes its texture from: inner-lip points a little inside the lips."""
        src = self.points.copy()
        pv = self.points @ self.v
        # only a mouth open in the photo has teeth at its inner lip line; a closed one keeps its seam
        inset = LIP_INSET * float(np.clip(self.inner_gaps[MIDDLE] / (0.06 * self.iod), 0.0, 1.0))
        upper_lip = max(pv[62] - pv[51], 0.0)
        lower_lip = max(pv[57] - pv[66], 0.0)
        src[INNER_UPPER] -= (inset * upper_lip * self.column_profile)[:, None] * self.v
        src[INNER_LOWER] += (inset * lower_lip * self.column_profile)[:, None] * self.v
        return src

    def anchors(self, height: int, width: int) -> np.ndarray:
        """Points that never deform: a ring round the face outline and points on the frame border."""
        lm = self.landmarks
        outline = lm[list(range(17)) + list(range(26, 16, -1))]
        out = outline - outline.mean(0)
        ring = outline + out / np.linalg.norm(out, axis=1, keepdims=True) * RING_IOD * self.iod
        xs, ys = np.linspace(0, width - 1, 6), np.linspace(0, height - 1, 6)
        border = np.concatenate([np.stack([xs, np.zeros(6)], 1), np.stack([xs, np.full(6, height - 1.0)], 1),
                                 np.stack([np.zeros(4), ys[1:-1]], 1),
                                 np.stack([np.full(4, width - 1.0), ys[1:-1]], 1)])
        return np.concatenate([ring, border])

    def expression(self, activations: dict[int, np.ndarray]) -> np.ndarray:
        """(T, 72, 2) photo-pixel displacements of the rig points for per-frame AU activations (AU26 excluded: it
        acts through the opening). The four virtual inner-lip points move as their chords' ends do."""
        t = len(next(iter(activations.values())))
        out = np.zeros((t, N_RIG, 2))
        for au, level in activations.items():
            if au not in AU_MOTION:
                continue
            m = au_motion(au)
            m = np.concatenate([m, [(m[a] + m[b]) / 2 for a, b in VIRTUAL.values()]])
            side = np.concatenate([SIDE, [SIDE[a] for a, _ in VIRTUAL.values()]])
            step = ((m[:, 0] * side)[:, None] * self.u + m[:, 1][:, None] * self.v) * self.iod  # (72, 2)
            out += np.asarray(level, np.float64)[:, None, None] * step
        return out

    def deform(self, opening: np.ndarray, width: np.ndarray, closure: np.ndarray, *,
               expression: np.ndarray | None = None) -> np.ndarray:
        """(T, 72, 2) rig points in photo coordinates for per-frame opening (IOD), width, lid closure, and an
        expression's displacements (T, 72, 2) added on top of the articulation (blinks close the moved lids)."""
        opening = np.asarray(opening, np.float64)
        t = len(opening)
        du = np.zeros((t, N_RIG))
        dv = np.zeros((t, N_RIG))
        target = np.maximum(opening[:, None] * self.column_profile, CLOSED_GAP) * self.iod
        up, down = _split_opening(target - self.inner_gaps)
        dv[:, INNER_UPPER] = -up
        dv[:, INNER_LOWER] = down
        mid_up, mid_down = up[:, MIDDLE:MIDDLE + 1], down[:, MIDDLE:MIDDLE + 1]
        dv[:, CORNERS] = CORNER_GAIN * mid_down
        dv[:, OUTER_UPPER] = -OUTER_UPPER_GAIN * mid_up * self.outer_upper_profile
        dv[:, OUTER_LOWER] = mid_down * (CORNER_GAIN + (1 - CORNER_GAIN) * self.outer_lower_profile)
        jaw = (np.where(mid_down > 0, 0.85, 0.6) * mid_down)[:, 0]
        for j, gain in JAW_GAIN.items():
            dv[:, j] = gain * jaw

        scale_w = 1.0 + np.asarray(width, np.float64) - WIDTH_OPEN_COUPLING * opening
        du[:, MOUTH] = (scale_w[:, None] - 1.0) * (self.points[MOUTH] @ self.u - self.mouth_centre_u)
        out = self.points + du[..., None] * self.u + dv[..., None] * self.v

        c = np.asarray(closure, np.float64)[:, None, None]
        if expression is None:
            upper, lower = self.points[EYELIDS[:, 0]], self.points[EYELIDS[:, 1]]
        else:
            out = out + expression
            upper, lower = out[:, EYELIDS[:, 0]], out[:, EYELIDS[:, 1]]
        meet = lower + 0.3 * (upper - lower)  # the upper lid does most of the travel
        half_gap = self.closed_lid_gap / 2 * (upper - lower)
        out[:, EYELIDS[:, 0]] = upper + c * (meet + half_gap - upper)
        out[:, EYELIDS[:, 1]] = lower + c * (meet - half_gap - lower)
        return out

    def reference_shape(self, expression: np.ndarray | None = None) -> np.ndarray:
        """The half-open mouth on which the triangulation is built (valid from closed to fully open), with an
        expression's displacements (72, 2) when given."""
        if expression is None:
            return self.deform(np.array([OPENING_MAX / 2]), np.zeros(1), np.zeros(1))[0]
        return self.deform(np.array([OPENING_MAX / 2]), np.zeros(1), np.zeros(1), expression=expression[None])[0]


def _split_opening(delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How far the upper lip rises and the lower lip drops for a gap change: opening is mostly the jaw."""
    up = np.where(delta > 0, 0.25, 0.5) * delta
    return up, delta - up


# ---------------------------------------------------------------------------------------------- rendering

class Warper:
    """Piecewise-affine warping of one photo to per-frame rig positions; mouth and closed lids painted."""

    def __init__(self, photo: np.ndarray, rig: FaceRig, max_batch_pixels: int = 1 << 22, *,
                 moving: np.ndarray = MOVING, apex: np.ndarray | None = None) -> None:
        """``moving``: the rig points that deform; ``apex``: an expression's displacements (72, 2) at its apex,
        the shape the triangulation is built on (with the half-open mouth)."""
        from scipy.spatial import Delaunay

        self.photo = photo
        self.rig = rig
        self.h, self.w = photo.shape[:2]
        self.anchors = rig.anchors(self.h, self.w)
        reference = np.concatenate([rig.reference_shape(apex), self.anchors])
        triangles = Delaunay(reference).simplices
        active = np.isin(triangles, moving).any(axis=1)  # the others move rigidly with the head
        self.triangles = triangles[active]
        self.orientation = np.sign(_signed_areas(reference[self.triangles]))
        src = np.concatenate([rig.texture_points(), self.anchors])
        self.tri_src = _to_normalised(src, self.h, self.w)[self.triangles]  # (K, 3, 2)
        self.batch = int(np.clip(max_batch_pixels // (self.h * self.w), 1, 64))
        self.colours = paint_colours(photo, rig.landmarks)
        self.foldovers = 0

    def render(self, rig_points: np.ndarray, transforms: np.ndarray, closure: np.ndarray) -> np.ndarray:
        """Frames (T, H, W, 3) uint8 for rig points (T, 72, 2, photo coordinates) moved by `transforms`."""
        frames = np.empty((len(rig_points), self.h, self.w, 3), np.uint8)
        at = 0
        for chunk in self.render_chunks(rig_points, transforms, closure):
            frames[at:at + len(chunk)] = chunk
            at += len(chunk)
        return frames

    def render_chunks(self, rig_points: np.ndarray, transforms: np.ndarray,
                      closure: np.ndarray) -> Iterator[np.ndarray]:
        """`render`, one batch of frames (b, H, W, 3) uint8 at a time."""
        import torch
        import torch.nn.functional as F

        t = len(rig_points)
        src = torch.from_numpy(np.array(self.photo, np.float32)).permute(2, 0, 1)[None]
        for start in range(0, t, self.batch):
            sl = slice(start, min(t, start + self.batch))
            b = sl.stop - sl.start  # the batch's points, placed in the frame (per batch: memory stays flat)
            points = np.concatenate([rig_points[sl], np.broadcast_to(self.anchors, (b, *self.anchors.shape))], axis=1)
            dest = apply_transforms(transforms[sl], points)
            grid = self._grid(dest, transforms[sl])
            out = F.grid_sample(src.expand(len(grid), -1, -1, -1), torch.from_numpy(grid), mode="bilinear",
                                padding_mode="border", align_corners=True)
            image = out.numpy()  # (B, 3, H, W) float32, painted in place
            self._paint_mouth(image, dest)
            self._paint_eyelids(image, dest, closure[sl])
            yield np.ascontiguousarray(out.add_(0.5).clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy())

    def _grid(self, dest: np.ndarray, transforms: np.ndarray) -> np.ndarray:
        """grid_sample's (B, H, W, 2) grid: the head motion's inverse, then each deforming triangle's map."""
        b = len(dest)
        theta = np.stack([_pixel_to_normalised(invert_transform(m), (self.h, self.w), (self.h, self.w))
                          for m in transforms]).astype(np.float32)
        xs = np.linspace(-1, 1, self.w, dtype=np.float32)[None, None, :]
        ys = np.linspace(-1, 1, self.h, dtype=np.float32)[None, :, None]
        grid = np.empty((b, self.h, self.w, 2), np.float32)
        for c in range(2):
            t = theta[:, c, :, None, None]
            np.add(t[:, 0] * xs, t[:, 1] * ys + t[:, 2], out=grid[..., c])
        tri_dest = dest[:, self.triangles]  # (B, K, 3, 2)
        areas = _signed_areas(tri_dest)
        ok = (np.sign(areas) == self.orientation) & (np.abs(areas) > 1e-6)
        self.foldovers += int((~ok).sum())
        for k in range(len(self.triangles)):
            _fill_triangle(grid, tri_dest[:, k], self.tri_src[k], ok[:, k])
        return grid

    def _paint_mouth(self, image: np.ndarray, dest: np.ndarray) -> None:
        """A dark cavity with a band of upper teeth inside the inner-lip polygon, soft-edged."""
        region = _bounding_region(dest[:, UPPER_LIP_LINE.tolist() + LOWER_LIP_LINE.tolist()], self.h, self.w)
        if region is None:
            return
        (y0, y1), (x0, x1) = region
        band = Band.of(dest, UPPER_LIP_LINE, LOWER_LIP_LINE, np.arange(x0, x1), np.arange(y0, y1))
        colour = mouth_colour(band, self.colours)
        _composite(image[:, :, y0:y1, x0:x1], band.alpha, colour)

    def _paint_eyelids(self, image: np.ndarray, dest: np.ndarray, closure: np.ndarray) -> None:
        """Over a closing eye's remaining slit, the lid's own shadowed skin: a closed eye shows no white."""
        strength = np.clip((closure - 0.35) / 0.5, 0.0, 1.0)
        frames = np.flatnonzero(strength > 0)
        if not len(frames):
            return
        for (upper, lower), skin in zip(EYE_LINES, self.colours.lids, strict=True):
            pts = dest[frames]
            region = _bounding_region(pts[:, np.concatenate([upper, lower])], self.h, self.w)
            if region is None:
                continue
            (y0, y1), (x0, x1) = region
            band = Band.of(pts, upper, lower, np.arange(x0, x1), np.arange(y0, y1))
            alpha = band.alpha * strength[frames, None, None]
            for i, f in enumerate(frames):
                _composite(image[f:f + 1, :, y0:y1, x0:x1], alpha[i:i + 1], skin)


def _composite(region: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> None:
    """Blend `colour` ((B, h, w, 3) or (3,)) over `region` (B, 3, h, w) in place, with coverage `alpha`."""
    a = alpha[:, None]
    colour = np.moveaxis(colour, -1, 1) if colour.ndim == 4 else colour[None, :, None, None]
    region *= 1.0 - a
    region += a * colour


def _bounding_region(points: np.ndarray, h: int, w: int) -> tuple[tuple[int, int], tuple[int, int]] | None:
    lo = np.floor(points.min(axis=(0, 1))).astype(int) - 2
    hi = np.ceil(points.max(axis=(0, 1))).astype(int) + 3
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], w), min(hi[1], h)
    if x1 <= x0 or y1 <= y0:
        return None
    return (y0, y1), (x0, x1)


def _signed_areas(tri: np.ndarray) -> np.ndarray:
    e1 = tri[..., 1, :] - tri[..., 0, :]
    e2 = tri[..., 2, :] - tri[..., 0, :]
    return 0.5 * (e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0])


def _to_normalised(points: np.ndarray, h: int, w: int) -> np.ndarray:
    return points * [2.0 / (w - 1), 2.0 / (h - 1)] - 1.0


def _fill_triangle(grid: np.ndarray, dest: np.ndarray, src: np.ndarray, ok: np.ndarray) -> None:
    """Write one triangle's inverse affine map into `grid` (B, H, W, 2) in every frame where it is `ok`.

    dest: (B, 3, 2) destination vertices in pixels; src: (3, 2) source vertices in grid_sample units.
    Barycentric and source coordinates are affine in (x, y), so each is a row term plus a column term.
    """
    h, w = grid.shape[1:3]
    live = dest[ok]
    if not len(live):
        return
    x0, y0 = np.maximum(np.floor(live.min(axis=(0, 1))).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(live.max(axis=(0, 1))).astype(int) + 1, [w, h])
    if x1 <= x0 or y1 <= y0:
        return
    a = dest[:, 0] - [x0, y0]  # coordinates relative to the box keep float32 exact enough
    e1, e2 = dest[:, 1] - dest[:, 0], dest[:, 2] - dest[:, 0]
    det = np.where(ok, e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0], 1.0)
    # l1 = cx x + cy y + c0 and l2 likewise, for x, y relative to (x0, y0)
    l1 = np.stack([e2[:, 1], -e2[:, 0], a[:, 1] * e2[:, 0] - a[:, 0] * e2[:, 1]], 1) / det[:, None]
    l2 = np.stack([-e1[:, 1], e1[:, 0], a[:, 0] * e1[:, 1] - a[:, 1] * e1[:, 0]], 1) / det[:, None]
    l1[~ok] = [0.0, 0.0, -1.0]  # outside everywhere
    source = (src[1] - src[0])[None, :, None] * l1[:, None] + (src[2] - src[0])[None, :, None] * l2[:, None]
    source[:, :, 2] += src[0]  # (B, 2, 3): source x and y as affine functions of the pixel
    xs = np.arange(x1 - x0, dtype=np.float32)
    ys = np.arange(y1 - y0, dtype=np.float32)

    def field(c: np.ndarray) -> np.ndarray:
        c = c.astype(np.float32)
        return (c[:, 0, None] * xs)[:, None, :] + (c[:, 1, None] * ys + c[:, 2, None])[:, :, None]

    eps = 1e-4  # pixels on a shared edge get the same value from both triangles
    b1, b2 = field(l1), field(l2)
    inside = (b1 >= -eps) & (b2 >= -eps) & (b1 + b2 <= 1 + eps)
    if not inside.any():
        return
    sub = grid[:, y0:y1, x0:x1]
    for c in range(2):
        np.copyto(sub[..., c], field(source[:, c]), where=inside)


# ---------------------------------------------------------------------------------------------- painting

@dataclass(frozen=True)
class PaintColours:
    cavity: np.ndarray  # (3,) RGB 0-255
    tongue: np.ndarray
    teeth: np.ndarray
    lids: tuple[np.ndarray, np.ndarray]  # shadowed lid skin over the subject's right and left eye


def paint_colours(photo: np.ndarray, landmarks: np.ndarray) -> PaintColours:
    """Mouth and lid colours matched to the photo's lips, skin and colourfulness (grey photos stay grey)."""
    lm = landmarks
    lip = _sample(photo, (lm[[50, 51, 52, 56, 57, 58]] + lm[[61, 62, 63, 65, 66, 67]]) / 2)
    lids = tuple(_sample(photo, lm[lid] + 0.4 * (lm[brow] - lm[lid])) * 0.62
                 for lid, brow in (([37, 38], [19, 20]), ([43, 44], [23, 24])))
    x0, y0 = np.maximum(lm.min(0).astype(int), 0)
    x1, y1 = lm.max(0).astype(int) + 1
    face = photo[y0:y1, x0:x1].reshape(-1, 3).astype(np.float64)
    colourful = float(np.clip(np.mean(face.max(1) - face.min(1)) / 15.0, 0.0, 1.0)) if face.size else 0.0

    def tint(rgb: np.ndarray) -> np.ndarray:
        return (rgb.mean() + colourful * (rgb - rgb.mean())).astype(np.float32)

    return PaintColours(cavity=tint(lip * [0.3, 0.16, 0.16]), tongue=tint(lip * [0.62, 0.4, 0.4]),
                        teeth=tint(np.array([218.0, 210.0, 192.0])), lids=(lids[0], lids[1]))


def _sample(photo: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Mean colour of the 3x3 patches round `points`."""
    h, w = photo.shape[:2]
    patches = [photo[max(y - 1, 0):min(y + 2, h), max(x - 1, 0):min(x + 2, w)].reshape(-1, 3)
               for x, y in np.round(points).astype(int)]
    pixels = np.concatenate(patches) if patches else np.zeros((0, 3))
    return pixels.astype(np.float64).mean(0) if len(pixels) else np.full(3, 128.0)


@dataclass(frozen=True)
class Band:
    """The region between an upper and a lower polyline sharing end points (the inner lips, the eyelids).

    Coordinates are per frame in the face's frame: u along the eye line, v down the face, so the
    region is { u between the end points, v_up(u) < v < v_low(u) }.
    """

    u: np.ndarray  # (B, h, w) pixel coordinates
    v: np.ndarray
    v_up: np.ndarray  # (B, h, w) the polylines at each pixel's u
    v_low: np.ndarray
    u_ends: np.ndarray  # (B, 2) u of the two end points
    iod: np.ndarray  # (B,)
    alpha: np.ndarray  # (B, h, w) soft coverage

    @classmethod
    def of(cls, points: np.ndarray, upper: np.ndarray, lower: np.ndarray, xs: np.ndarray,
           ys: np.ndarray) -> Band:
        iod = inter_ocular(points[:, :68])
        across = points[:, 42:48].mean(1) - points[:, 36:42].mean(1)
        u_axis = across / np.linalg.norm(across, axis=1, keepdims=True)
        v_axis = np.stack([-u_axis[:, 1], u_axis[:, 0]], 1)
        gx, gy = np.meshgrid(xs.astype(np.float64), ys.astype(np.float64))
        u = gx[None] * u_axis[:, 0, None, None] + gy[None] * u_axis[:, 1, None, None]
        v = gx[None] * v_axis[:, 0, None, None] + gy[None] * v_axis[:, 1, None, None]
        up_u, up_v = (np.einsum("bnk,bk->bn", points[:, upper], axis) for axis in (u_axis, v_axis))
        lo_u, lo_v = (np.einsum("bnk,bk->bn", points[:, lower], axis) for axis in (u_axis, v_axis))
        v_up = np.stack([_polyline_at(u[i], up_u[i], up_v[i]) for i in range(len(points))])
        v_low = np.stack([_polyline_at(u[i], lo_u[i], lo_v[i]) for i in range(len(points))])
        ends = np.sort(up_u[:, [0, -1]], axis=1)
        soft = np.maximum(0.6, 0.015 * iod)[:, None, None]
        alpha = np.clip(0.5 + np.minimum(v - v_up, v_low - v) / soft, 0.0, 1.0)
        alpha[(u < ends[:, :1, None]) | (u > ends[:, 1:, None])] = 0.0
        return cls(u, v, v_up, v_low, ends, iod, alpha.astype(np.float32))


def _polyline_at(u: np.ndarray, knots_u: np.ndarray, knots_v: np.ndarray) -> np.ndarray:
    order = np.argsort(knots_u)
    return np.interp(u, knots_u[order], knots_v[order])


def mouth_colour(band: Band, colours: PaintColours) -> np.ndarray:
    """(B, h, w, 3) colour inside the mouth: upper teeth under the upper lip, dark cavity, tongue below."""
    gap = np.maximum(band.v_low - band.v_up, 1e-6)
    centre = band.u_ends.mean(1)[:, None, None]
    half = np.maximum(np.diff(band.u_ends, axis=1)[:, 0] / 2, 1e-6)[:, None, None]
    across = np.clip(1.0 - ((band.u - centre) / (0.8 * half)) ** 2, 0.0, 1.0)  # 1 mid-mouth, 0 near corners
    teeth_h = np.minimum(0.4 * gap, 0.1 * band.iod[:, None, None]) * np.sqrt(across)
    soft = np.maximum(0.6, 0.015 * band.iod)[:, None, None]
    teeth = np.clip(0.5 + (band.v_up + teeth_h - band.v) / soft, 0.0, 1.0) * (teeth_h > 0.5)
    depth = np.clip((band.v - band.v_up) / gap, 0.0, 1.0) ** 2
    inside = colours.cavity + (colours.tongue - colours.cavity) * (0.7 * depth * across)[..., None]
    down_teeth = np.clip((band.v - band.v_up) / np.maximum(teeth_h, 1e-6), 0.0, 1.0)
    shade = ((0.7 + 0.3 * across) * (1.0 - 0.12 * down_teeth))[..., None]
    return (inside * (1.0 - teeth[..., None]) + colours.teeth * shade * teeth[..., None]).astype(np.float32)


# ---------------------------------------------------------------------------------------------- ground truth

def ground_truth(*, seed: int, fps: float, driven: np.ndarray, blinks: list[Blink], closure: np.ndarray,
                 rate: float, pose: np.ndarray, centre: np.ndarray, rig: FaceRig, foldovers: int) -> dict:
    """What the generator put in, per frame, as JSON-ready values (inter-ocular units for mouth sizes)."""
    t = len(driven)
    iod = inter_ocular(driven)
    closed = rig.deform(np.zeros(1), np.zeros(1), np.zeros(1))[:, :68]
    store = t <= LANDMARKS_STORED_MAX_FRAMES

    def r(x: np.ndarray, d: int = 5) -> list:
        return np.round(np.asarray(x, np.float64), d).tolist()

    return {
        "generator": "warp",
        "seed": seed,
        "fps": fps,
        "n_frames": t,
        "mouth_opening": r(mouth_opening(driven)),
        "mouth_opening_closed": round(float(mouth_opening(closed)[0]), 5),
        "mouth_width": r(np.linalg.norm(driven[:, 54] - driven[:, 48], axis=-1) / iod),
        "eye_closure": r(closure, 4),
        "eye_aspect_ratio": r(eye_aspect_ratio(driven)),
        "blinks": [b.as_dict() for b in blinks],
        "blink_rate_per_min": round(rate, 3),
        "head_pose_columns": ["dx_px", "dy_px", "scale", "roll_deg"],
        "head_pose": r(np.column_stack([pose[:, 0], pose[:, 1], 1.0 + pose[:, 2], pose[:, 3]])),
        "head_pose_centre": r(centre, 3),
        "landmarks_photo": r(rig.landmarks, 2),
        "landmarks_driven_stored": store,
        "landmarks_driven": r(driven, 2) if store else None,
        "warp_foldovers": foldovers,
        "units": {"mouth_opening": "inner-lip gap / inter-ocular distance (fakebench.faces.mouth_opening)",
                  "mouth_width": "|p54 - p48| / inter-ocular distance", "eye_closure": "0 open .. 1 closed",
                  "head_pose": "shift in output pixels, scale factor, roll in degrees (clockwise on screen) "
                               "about head_pose_centre",
                  "landmarks_driven": "output pixels (x, y), iBUG 68 order; null when n_frames > "
                                      f"{LANDMARKS_STORED_MAX_FRAMES}",
                  "au_activations": "per frame, 0 absent .. 1 FACS intensity E (OpenFace value / 5)"},
    }
