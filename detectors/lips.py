"""``lips``: does the mouth move like a speaking mouth, and with this speech? A small temporal CNN over grey mouth
crops, read together with the speech envelope, trained here on CPU.

LipForensics (Haliassos et al., CVPR 2021) reads 25-frame grey mouth clips with a lip-reading network and scores a
video by the mean clip logit; this is a small network of that shape trained from scratch, with the speech as a
second, optional input, so it can judge whether lips and speech agree (the cue that catches a desynchronised or
dubbed clip) as well as whether the lips move at all (the cue that catches a still photo made to talk).

Input, per clip (cached on the Sample):

- **mouth crops**: every frame warped by the least-squares similarity from its rigid landmarks (nose, eye corners;
  landmarks smoothed over 5 frames, gaps interpolated) onto fakebench's mean face placed so the mean mouth sits in
  the middle of a 40 x 48 crop 1.7 mouth widths wide: the upper face fixes position, scale (the inter-ocular
  distance) and rotation, so an opening mouth moves inside a steady crop. Grey; the network sees each window's
  motion: every pixel minus its mean over the window, divided by the window's pixel spread. What stays still
  drops out (identity, skin, lighting, teeth that never move, a photo): unlike LipForensics (its crops as they
  are, fixed mean 0.421 / std 0.165, a front end pre-trained on lip reading) this network learns from scratch on
  few people, and with the still appearance in view it learnt the generators' looks as much as the movement (on
  the test corpus, a real clip's frame held still with its speech scored P 0.2-0.6; the photos made to talk,
  0.97 and up).
- **speech**: the 24 log-mel band levels of each video frame's time slot (`fakebench.avsync.mel_levels`, floored
  40 dB under the loud level), each band standardised over the clip, plus a 25th channel that says whether there
  is audio. A clip without audio is scored from the lips alone (zeros, flag 0): ``lips`` is a visual detector that
  uses the speech when there is some, and training drops the speech from a fraction of the windows
  (``audio_dropout``) so it has learnt to do so. It needs a face ("no face" otherwise), never audio.

Network (`build_network`, 59,658 trainable parameters), on windows of ``window`` frames (N, 1, T, 40, 48):

- front end: Conv3d 1->8 (3x5x5, stride 1x2x2) + BatchNorm + ReLU; then per frame Conv2d 8->16 (3x3) + BN + ReLU +
  MaxPool 2 and Conv2d 16->24 (3x3) + BN + ReLU + MaxPool 2 -> 24 x 5 x 6 -> Linear 720->32 + ReLU: a 32-d
  embedding per frame; a temporal Conv1d 32->32 (5) + BN + ReLU over the frames;
- speech: Conv1d 25->32 (5) + BN + ReLU, Conv1d 32->32 (5) + BN + ReLU;
- fusion: the two streams side by side, Conv1d 64->32 (5) + BN + ReLU, Conv1d 32->32 (5) + BN + ReLU, pooled by
  mean and max over time (64);
- agreement: both streams projected (1x1) to 16 channels each and correlated over the window, channel by channel
  (16 learnt lip-speech correlations at lag 0, 0 when there is no audio), and the log spread of the 16 lip
  channels over time (how much the mouth moves);
- head: the 64 + 16 + 16 numbers and the audio flag -> Dropout 0.3 -> Linear 97->1: the logit of P(fake).

Training (CPU, seeded, deterministic): each epoch draws ``windows_per_clip`` random windows from every training
clip (a clip shorter than ``window`` gives one window of all its frames, batched with windows of its length),
flips a random half left-right, and drops the speech from ``audio_dropout`` of them; Adam lr 1e-3 on the binary
cross-entropy with label 1 = fake, the fake windows weighted by n_real / n_fake. After each epoch the VALIDATION
split's clips are scored and the epoch with the best validation AUC is kept (ties to the lower validation log
loss); training stops after ``patience`` epochs without improvement. The test split never reaches ``fit``.

A clip's score: windows of ``window`` frames every half window (the last one ending on the last frame), and
P(fake) = sigmoid of the mean window logit, as LipForensics pools its clips.

torch is imported only when a network is built, so discovering the detectors stays light.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from fakebench.detectors.base import (
    DetectorBase,
    Finding,
    Scored,
    labels_of,
    register,
    score_each,
    train_by_validation,
)
from fakebench.errors import ConfigError, FakebenchError, WeightsError
from fakebench.registry import Option
from fakebench.samples import Sample

CROP = (40, 48)  # (height, width) of a mouth crop, pixels
MOUTH_SPAN = 1.7  # the crop is this many (mean-face) mouth widths wide
SMOOTH_FRAMES = 5  # landmarks averaged over this many frames before aligning (LipForensics: 12)
AUDIO_CHANNELS = 25  # 24 log-mel bands and the audio-present flag
MIN_FRAMES = 8  # a clip needs this many frames to be scored
MAX_LAG = 10  # frames searched for the best mouth-speech lag in `explain`
CHUNK = 64  # frames aligned, or windows scored, at a time
LR = 1e-3
PARAMETERS = 59_658  # trainable parameters of `build_network`
STATS_PREFIX = "stats."  # state keys that are not network weights: training references for `explain`
STATS = ("opening_std_real", "opening_std_fake")  # mean std of the mouth opening of the real / fake training clips


# ---------------------------------------------------------------------------------------------------- network
def build_network():
    """A fresh lips network: crops (N, 1, T, 40, 48) and speech (N, 25, T) -> (N,) logits of P(fake)."""
    import torch
    from torch import nn

    def temporal(c_in: int, c_out: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv1d(c_in, c_out, 5, padding=2), nn.BatchNorm1d(c_out), nn.ReLU())

    class LipsNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv3d(1, 8, (3, 5, 5), stride=(1, 2, 2), padding=(1, 2, 2)),
                                      nn.BatchNorm3d(8), nn.ReLU())
            self.frame = nn.Sequential(
                nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 24, 3, padding=1), nn.BatchNorm2d(24), nn.ReLU(), nn.MaxPool2d(2),
                nn.Flatten(), nn.Linear(24 * (CROP[0] // 8) * (CROP[1] // 8), 32), nn.ReLU())
            self.lips = temporal(32, 32)
            self.speech = nn.Sequential(temporal(AUDIO_CHANNELS, 32), temporal(32, 32))
            self.fusion = nn.Sequential(temporal(64, 32), temporal(32, 32))
            self.lips_projection = nn.Conv1d(32, 16, 1)
            self.speech_projection = nn.Conv1d(32, 16, 1)
            self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(32 + 32 + 16 + 16 + 1, 1))

        def forward(self, crops, speech):
            n, _, t, h, w = crops.shape
            x = self.stem(crops)  # (n, 8, t, h/2, w/2)
            x = x.permute(0, 2, 1, 3, 4).reshape(n * t, 8, h // 2, w // 2)
            lips = self.lips(self.frame(x).reshape(n, t, -1).permute(0, 2, 1))  # (n, 32, t)
            heard = self.speech(speech)  # (n, 32, t)
            fused = self.fusion(torch.cat([lips, heard], dim=1))
            v = self.lips_projection(lips)
            a = self.speech_projection(heard)
            v = v - v.mean(-1, keepdim=True)
            a = a - a.mean(-1, keepdim=True)
            agreement = (v * a).sum(-1) / torch.sqrt((v * v).sum(-1) * (a * a).sum(-1) + 1e-2)
            motion = 0.5 * torch.log((v * v).mean(-1) + 1e-4)
            flag = speech[:, -1].mean(-1, keepdim=True)
            pooled = torch.cat([fused.mean(-1), fused.amax(-1), agreement, motion, flag], dim=1)
            return self.head(pooled).squeeze(1)

    return LipsNet()


def count_parameters(network) -> int:
    return sum(p.numel() for p in network.parameters() if p.requires_grad)


# ---------------------------------------------------------------------------------------------------- clip input
@dataclass
class LipsInput:
    """What the network and `explain` read from one clip, one row per video frame."""

    crops: np.ndarray  # (T, 40, 48) uint8 grey mouth crops
    speech: np.ndarray  # (T, 25) float32: standardised log-mel bands, then 1.0 / 0.0 audio present
    opening: np.ndarray  # (T,) inner-lip opening in inter-ocular units (`fakebench.faces.mouth_opening`)
    level_db: np.ndarray  # (T,) overall speech level (dB) of each frame's slot; NaN without audio
    face: np.ndarray  # (T,) bool: a face was found on the frame (the others are interpolated)
    fps: float

    @property
    def has_audio(self) -> bool:
        return bool(self.speech[0, -1] > 0) if len(self.speech) else False

    @property
    def n_frames(self) -> int:
        return len(self.crops)


def mouth_template() -> np.ndarray:
    """The mean face (68 x 2) placed in crop pixels: its mouth centred, MOUTH_SPAN mouth widths across the crop."""
    from fakebench.faces import MOUTH, mean_face

    face = mean_face().astype(np.float64)
    h, w = CROP
    scale = w / (MOUTH_SPAN * np.linalg.norm(face[54] - face[48]))
    return (face - face[MOUTH].mean(0)) * scale + [(w - 1) / 2, (h - 1) / 2]


def _filled_landmarks(track) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T, 68, 2) landmarks with faceless frames interpolated (ends held); the same smoothed over SMOOTH_FRAMES
    (to align by); the face mask. Raises FakebenchError when no frame has a face."""
    landmarks = np.asarray(track.landmarks, np.float64)
    face = np.asarray(track.valid, bool) & np.isfinite(landmarks).all(axis=(1, 2))
    if not face.any():
        raise FakebenchError("no face in any frame")
    t = np.arange(len(landmarks))
    flat = landmarks.reshape(len(landmarks), -1)
    filled = np.stack([np.interp(t, t[face], flat[face, j]) for j in range(flat.shape[1])], axis=1)
    smooth = filled
    if len(filled) >= SMOOTH_FRAMES:
        from scipy.ndimage import uniform_filter1d

        smooth = uniform_filter1d(filled, SMOOTH_FRAMES, axis=0, mode="nearest")
    return filled.reshape(landmarks.shape), smooth.reshape(landmarks.shape), face


def clip_input(sample: Sample) -> LipsInput:
    """The mouth crops, speech features and mouth/speech traces of a clip, computed once per Sample."""
    key = f"detector:lips:{CROP[0]}x{CROP[1]}"
    cache = sample._cache
    if key in cache:
        return cache[key]
    from fakebench.avsync import mel_levels
    from fakebench.faces import RIGID_POINTS, align_faces, mouth_opening

    track = sample.track
    clip = sample.clip
    n = min(clip.n_frames, track.n_frames)
    if n < MIN_FRAMES:
        raise FakebenchError(f"{n} frames; lips reads windows of at least {MIN_FRAMES} frames")
    landmarks, smooth, face = (a[:n] for a in _filled_landmarks(track))
    if not face.any():
        raise FakebenchError("no face in any frame")
    template = mouth_template()
    crops = np.zeros((n, *CROP), np.uint8)
    for first in range(0, n, CHUNK):  # align_faces holds its frames as float: a long clip goes in chunks
        rgb = align_faces(clip.frames[first:first + CHUNK], smooth[first:first + CHUNK], CROP, template=template,
                          points=RIGID_POINTS)
        grey = np.round(rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
        crops[first:first + CHUNK] = np.clip(grey, 0, 255).astype(np.uint8)
    speech = np.zeros((n, AUDIO_CHANNELS), np.float32)
    level = np.full(n, np.nan)
    if clip.has_audio_track and clip.has_audio:
        bands = mel_levels(clip.audio, clip.sample_rate, n, clip.fps)
        level = 10.0 * np.log10(np.sum(10.0 ** (bands / 10.0), axis=1))
        centred = bands - bands.mean(0)
        spread = centred.std(0)
        speech[:, :-1] = centred / np.where(spread > 1e-6, spread, 1.0)
        speech[:, -1] = 1.0
    cache[key] = LipsInput(crops=crops, speech=speech, opening=mouth_opening(landmarks), level_db=level,
                           face=face, fps=float(clip.fps))
    return cache[key]


def window_starts(n_frames: int, window: int) -> np.ndarray:
    """Where the scoring windows start: every half window, the last one ending on the last frame."""
    if n_frames <= window:
        return np.zeros(1, np.int64)
    starts = list(range(0, n_frames - window + 1, max(1, window // 2)))
    if starts[-1] != n_frames - window:
        starts.append(n_frames - window)
    return np.array(starts, np.int64)


def _as_inputs(crops: np.ndarray, speech: np.ndarray):
    """Batch tensors from (N, T, 40, 48) uint8 crops and (N, T, 25) speech. The crops of each window become their
    motion: minus each pixel's mean over the window, over the window's pixel spread."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(crops)).float().div_(255.0).unsqueeze(1)
    spread = x.std(dim=(1, 2, 3, 4), keepdim=True)
    x = (x - x.mean(dim=2, keepdim=True)) / (spread + 1e-3)
    s = torch.from_numpy(np.ascontiguousarray(speech, np.float32)).permute(0, 2, 1)
    return x, s


def correlation_at_lags(opening: np.ndarray, level: np.ndarray, max_lag: int) -> dict[int, float]:
    """Pearson correlation of the mouth opening at frame t with the speech level at frame t + lag (+: the speech
    comes later than the lips), for lags whose overlap keeps at least half the frames."""
    out = {}
    n = len(opening)
    for lag in range(-max_lag, max_lag + 1):
        if n - abs(lag) < max(MIN_FRAMES, n // 2):
            continue
        a = opening[max(0, -lag):n - max(0, lag)]
        b = level[max(0, lag):n - max(0, -lag)]
        if a.std() > 1e-9 and b.std() > 1e-9:
            out[lag] = float(np.corrcoef(a, b)[0, 1])
    return out


# ---------------------------------------------------------------------------------------------------- detector
@register("lips")
class LipsDetector(DetectorBase):
    description: ClassVar[str] = ("visual (audio-aware): a small temporal CNN over 40x48 grey mouth-crop windows "
                                  "with the speech's log-mel envelope when there is audio, trained here; clip "
                                  "score = sigmoid of the mean window logit")
    needs: ClassVar[tuple[str, ...]] = ("face",)
    options: ClassVar[tuple[Option, ...]] = (
        Option("epochs", int, 40, min=1, max=500, help="most training epochs (the best on validation AUC is kept)"),
        Option("window", int, 25, min=MIN_FRAMES, max=250, help="frames per window, for training and scoring"),
        Option("windows_per_clip", int, 4, min=1, max=64, help="random windows drawn per training clip and epoch"),
        Option("batch_size", int, 16, min=2, max=512, help="windows per training step"),
        Option("patience", int, 8, min=1, max=500, help="stop after this many epochs without a better "
                                                        "validation AUC"),
        Option("audio_dropout", float, 0.15, min=0.0, max=1.0, help="fraction of training windows whose speech "
                                                                     "is hidden, so clips without audio score"),
        Option("seed", int, 0, min=0, help="seed of the initial weights, dropout, windows and shuffling"),
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.network = None
        self.stats: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ training
    def fit(self, train: Sequence[Sample], val: Sequence[Sample]) -> LipsDetector:
        import torch

        y_train = labels_of(train)
        y_val = labels_of(val)
        inputs, targets = [], []
        for sample, label in zip(train, y_train, strict=True):
            if self.status(sample) != "ok":
                continue
            try:
                inputs.append(clip_input(sample))
            except FakebenchError:
                continue
            targets.append(float(label))
        if not inputs:
            raise ConfigError(f"{self.name}: no training clip has a face to learn from")
        y = np.array(targets, np.float32)
        if len(set(y.tolist())) < 2:
            raise ConfigError("the training split has one label only; a detector needs real and fake clips")

        deterministic = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(True)
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.config["seed"])
                history = self._train(inputs, y, val, y_val)
        finally:
            torch.use_deterministic_algorithms(deterministic)
        self.stats = _reference_stats(inputs, y)
        self.info = {"n_train": len(train), "n_val": len(val), "n_clips": len(inputs),
                     "parameters": count_parameters(self.network), **history}
        return self

    def _batches(self, inputs: list[LipsInput], y: np.ndarray, rng: np.random.Generator):
        """One epoch of training batches: (crops, speech, labels), windows of one length per batch."""
        window = self.config["window"]
        draws = []  # (length, clip, start)
        for i, clip in enumerate(inputs):
            length = min(window, clip.n_frames)
            for _ in range(self.config["windows_per_clip"]):
                draws.append((length, i, int(rng.integers(0, clip.n_frames - length + 1))))
        order = rng.permutation(len(draws))
        by_length: dict[int, list[tuple[int, int]]] = {}
        for k in order:
            length, i, start = draws[k]
            by_length.setdefault(length, []).append((i, start))
        batch = self.config["batch_size"]
        out = []
        for length in sorted(by_length):
            chosen = by_length[length]
            for first in range(0, len(chosen), batch):
                part = chosen[first:first + batch]
                if len(part) < 2:  # BatchNorm needs two windows; the straggler waits for the next epoch
                    continue
                crops = np.stack([inputs[i].crops[s:s + length] for i, s in part])
                speech = np.stack([inputs[i].speech[s:s + length] for i, s in part]).copy()
                flip = rng.random(len(part)) < 0.5
                crops[flip] = crops[flip, :, :, ::-1]
                hide = rng.random(len(part)) < self.config["audio_dropout"]
                speech[hide] = 0.0
                out.append((crops, speech, y[[i for i, _ in part]]))
        return [out[k] for k in rng.permutation(len(out))]

    def _train(self, inputs: list[LipsInput], y: np.ndarray, val: Sequence[Sample],
               y_val: np.ndarray) -> dict[str, Any]:
        import torch
        import torch.nn.functional as F

        network = build_network()
        self.network = network
        optimiser = torch.optim.Adam(network.parameters(), lr=LR)
        rng = np.random.default_rng(self.config["seed"])
        fake_weight = float((y == 0).sum() / max((y == 1).sum(), 1))

        def run_epoch() -> None:
            for crops, speech, labels in self._batches(inputs, y, rng):
                x, s = _as_inputs(crops, speech)
                target = torch.from_numpy(labels)
                weight = torch.where(target > 0.5, fake_weight, 1.0)
                loss = F.binary_cross_entropy_with_logits(network(x, s), target, weight=weight)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()

        return train_by_validation(network, run_epoch,
                                   lambda: self.predict_proba(val) if len(val) else np.zeros(0), y_val,
                                   epochs=self.config["epochs"], patience=self.config["patience"])

    # ------------------------------------------------------------------ scoring
    def _fitted(self):
        if self.network is None:
            raise ConfigError(f"the {self.name} detector is not fitted; fit it or load a saved one")
        return self.network

    def window_logits(self, sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        """(window start frames, logit of P(fake) of each window) of a clip."""
        import torch

        network = self._fitted()
        clip = clip_input(sample)
        length = min(self.config["window"], clip.n_frames)
        starts = window_starts(clip.n_frames, length)
        network.eval()
        logits = []
        for first in range(0, len(starts), CHUNK):
            chosen = starts[first:first + CHUNK]
            crops = np.stack([clip.crops[s:s + length] for s in chosen])
            speech = np.stack([clip.speech[s:s + length] for s in chosen])
            with torch.no_grad():
                logits.append(network(*_as_inputs(crops, speech)).numpy().astype(np.float64))
        return starts, np.concatenate(logits)

    def predict_proba(self, samples: Sequence[Sample]) -> np.ndarray:
        return self.score(samples).p_fake

    def score(self, samples: Sequence[Sample]) -> Scored:
        self._fitted()
        return score_each(self, samples, lambda s: _sigmoid(float(np.mean(self.window_logits(s)[1]))))

    def explain(self, sample: Sample) -> list[Finding]:
        """The windows scored most and least fake, how much the mouth moves against the training clips, and how
        the mouth opening follows the speech level (at no lag and at the best lag)."""
        starts, logits = self.window_logits(sample)
        clip = clip_input(sample)
        length = min(self.config["window"], clip.n_frames)
        p = _sigmoid(logits)
        overall = _sigmoid(float(np.mean(logits)))
        top = int(np.argmax(p))
        first, last = int(starts[top]), int(starts[top] + length - 1)
        findings = [Finding(f"mouth windows look fake in {int((p > 0.5).sum())} of {len(p)} ({length} frames each; "
                            f"P(fake) {overall:.2f} from the mean logit); most fake: frames {first}-{last} "
                            f"(P {p[top]:.2f}), least: frames {int(starts[np.argmin(p)])}-"
                            f"{int(starts[np.argmin(p)] + length - 1)} (P {p.min():.2f})",
                            value=float(p[top]), frames=tuple(range(first, last + 1)))]
        spread = float(np.std(clip.opening))
        typical = self.stats.get("opening_std_real")
        words = f"mouth opening varies by {spread:.3f} inter-ocular units (std over {clip.n_frames} frames)"
        if typical is not None and np.isfinite(typical).all() and float(typical[0]) > 0:
            words += (f": {spread / float(typical[0]):.0%} of the real training clips' {float(typical[0]):.3f} "
                      f"(fake training clips: {float(self.stats['opening_std_fake'][0]):.3f})")
        findings.append(Finding(words, value=spread))
        if not clip.has_audio:
            findings.append(Finding("no audio: scored from the lips alone (lip-speech agreement not read)"))
            return findings
        curve = correlation_at_lags(clip.opening, clip.level_db, MAX_LAG)
        if 0 not in curve:
            findings.append(Finding("speech level or mouth opening does not vary: lip-speech correlation "
                                    "undefined"))
            return findings
        best = max(curve, key=curve.get)
        ms = abs(best) / clip.fps * 1000
        where = ("at no lag" if best == 0 else
                 f"with the speech {abs(best)} frame{'s' if abs(best) != 1 else ''} ({ms:.0f} ms) "
                 f"{'later' if best > 0 else 'earlier'} than the lips")
        findings.append(Finding(f"mouth opening vs speech level: correlation {curve[0]:.2f} at lag 0, best "
                                f"{curve[best]:.2f} {where}", value=curve[0]))
        return findings

    # ------------------------------------------------------------------ saving
    def state(self) -> dict[str, np.ndarray]:
        """The torch state_dict as float32 arrays (BatchNorm's step counters included) and the training
        references `explain` quotes (``stats.*``)."""
        weights = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in self._fitted().state_dict().items()}
        return weights | {STATS_PREFIX + k: np.asarray(v, np.float64) for k, v in self.stats.items()}

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        import torch

        network = build_network()
        own = network.state_dict()
        weights = {k: v for k, v in state.items() if not k.startswith(STATS_PREFIX)}
        stats = {k.removeprefix(STATS_PREFIX): np.asarray(v, np.float64) for k, v in state.items()
                 if k.startswith(STATS_PREFIX)}
        if set(weights) != set(own) or any(tuple(np.shape(weights[k])) != tuple(own[k].shape) for k in own) or \
                set(stats) != set(STATS) or any(np.shape(v) != (1,) for v in stats.values()):
            raise WeightsError(f"the saved weights do not fit this fakebench's {self.name} network; train it again")
        network.load_state_dict({k: torch.from_numpy(np.array(weights[k], np.float32)).to(own[k].dtype)
                                 for k in own}, strict=True)
        network.eval()
        self.network = network
        self.stats = stats


def _reference_stats(inputs: Sequence[LipsInput], y: np.ndarray) -> dict[str, np.ndarray]:
    spread = np.array([float(np.std(c.opening)) for c in inputs])
    return {"opening_std_real": np.array([spread[y == 0].mean()]),
            "opening_std_fake": np.array([spread[y == 1].mean()])}


def _sigmoid(x):
    from scipy.special import expit

    return expit(x) if np.ndim(x) else float(expit(x))
