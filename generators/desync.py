"""A real clip with its audio shifted by K frames, or with another clip's audio: lips and speech disagree."""

from __future__ import annotations

import numpy as np

from fakebench.errors import AudioError, ConfigError
from fakebench.generators.base import GeneratedClip, GeneratorBase, register
from fakebench.media import Clip, check_speech_audio, resample_audio, to_mono
from fakebench.registry import Option, check_seed


def shift_audio(audio: np.ndarray, samples: int) -> np.ndarray:
    """Delay (samples > 0) or advance (samples < 0) the audio, keeping its length; the gap is silence.

    |samples| must be smaller than the audio."""
    out = np.zeros_like(audio)
    if samples >= 0:
        out[samples:] = audio[: audio.size - samples]
    else:
        out[: audio.size + samples] = audio[-samples:]
    return out


def fit_length(audio: np.ndarray, n: int) -> np.ndarray:
    """Cut or pad with silence to n samples."""
    return audio[:n] if audio.size >= n else np.concatenate([audio, np.zeros(n - audio.size, audio.dtype)])


SHIFT_LIMIT_FRAMES = 500  # 20 s at 25 fps: longer shifts are not a lip-sync fake any more
CORPUS_SHIFT_FRAMES = (3, 12)  # |K| of a corpus fake: from clearly visible to gross, either sign


@register("desync")
class DesyncGenerator(GeneratorBase):
    description = "a real clip with its audio shifted by K frames (+K = audio later) or swapped for another's"
    takes = "clip"
    options = (Option("shift_frames", int, 0, min=-SHIFT_LIMIT_FRAMES, max=SHIFT_LIMIT_FRAMES,
                      help="+K = audio K frames later than video (non-zero unless other audio is given)"),)
    min_audio_s = 0.1
    default_rank = 40

    def __init__(self, **options) -> None:
        self.shift_frames = int(self.check_options(options)["shift_frames"])

    def from_clip(self, clip: Clip, *, seed: int = 0, other_audio: np.ndarray | None = None,
                  other_sample_rate: int | None = None, audio_source: str | None = None) -> GeneratedClip:
        """Shift `clip`'s own audio by `shift_frames`, or (with `other_audio`) replace it, then shift that."""
        seed = check_seed(seed)
        if other_audio is None:
            if not clip.has_audio:
                raise AudioError("the clip has no audio track to shift; give a clip with sound, or other audio")
            if self.shift_frames == 0:
                raise ConfigError("--shift-frames 0 with the clip's own audio would give the real clip back; "
                                  "give a non-zero --shift-frames K, or other audio with --audio")
            audio, source = clip.audio, audio_source or "own"
            what = "the clip's audio"
        else:
            rate = other_sample_rate or clip.sample_rate
            mono = to_mono(other_audio)
            check_speech_audio(mono, rate, fps=clip.fps, what="the other audio")
            self.check_audio_length(mono.size, rate, "the other audio")
            audio = fit_length(resample_audio(mono, rate, clip.sample_rate),
                               int(round(clip.duration_s * clip.sample_rate)))
            source = audio_source or "other"
            what = "the other audio, cut to the clip,"
        samples = int(round(self.shift_frames * clip.sample_rate / clip.fps))
        if abs(samples) >= audio.size:
            raise ConfigError(f"a shift of {self.shift_frames} frames is longer than {what} "
                              f"({audio.size / clip.sample_rate:.2f} s); choose a smaller --shift-frames")
        shifted = shift_audio(audio.astype(np.float32), samples)
        truth = {
            "generator": self.name, "seed": seed, "fps": clip.fps, "n_frames": clip.n_frames,
            "audio_offset_frames": self.shift_frames, "audio_offset_s": samples / clip.sample_rate,
            "audio_offset_samples": samples, "sample_rate": clip.sample_rate, "audio_source": source,
            "sign_convention": "+K = audio later than video",
        }
        return GeneratedClip(clip=clip.with_audio(shifted, clip.sample_rate), ground_truth=truth)

    def fake_from_source(self, source: Clip, audio: np.ndarray, sample_rate: int, *, seed: int,
                         audio_source: str | None = None, identity_frame=None) -> GeneratedClip:
        """A corpus fake: the real clip with its own audio shifted by a random K (3 to 12 frames, either sign,
        drawn from `seed`), or with another clip's audio (``audio_source``) in place, unshifted."""
        if audio_source is None:
            rng = np.random.default_rng(seed)
            shift = int(rng.integers(*CORPUS_SHIFT_FRAMES, endpoint=True) * rng.choice([-1, 1]))
            return type(self)(shift_frames=shift).from_clip(source, seed=seed)
        return type(self)(shift_frames=0).from_clip(source, seed=seed, other_audio=audio,
                                                   other_sample_rate=sample_rate, audio_source=audio_source)

    def generate(self, image: np.ndarray, audio: np.ndarray, sample_rate: int, *, seed: int = 0) -> GeneratedClip:
        raise ConfigError("the desync generator works on a real video, not a photo: "
                          "use `fakebench generate --generator desync --video CLIP --shift-frames K`")
