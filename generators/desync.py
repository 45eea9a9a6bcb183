"""A real clip with its audio shifted by K frames, or with another clip's audio: lips and speech disagree."""

from __future__ import annotations

import numpy as np

from fakebench.errors import AudioError, ConfigError
from fakebench.generators.base import GeneratedClip, register
from fakebench.media import Clip, resample_audio, to_mono


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


@register("desync")
class DesyncGenerator:
    description = "a real clip with its audio shifted by K frames (+K = audio later) or swapped for another's"

    def __init__(self, *, shift_frames: int = 0) -> None:
        self.shift_frames = int(shift_frames)

    def from_clip(self, clip: Clip, *, seed: int = 0, other_audio: np.ndarray | None = None,
                  other_sample_rate: int | None = None, audio_source: str | None = None) -> GeneratedClip:
        """Shift `clip`'s own audio by `shift_frames`, or (with `other_audio`) replace it, then shift that."""
        if other_audio is None:
            if not clip.has_audio:
                raise AudioError("the clip has no audio track to shift; give a clip with sound, or other audio")
            audio, source = clip.audio, audio_source or "own"
        else:
            rate = other_sample_rate or clip.sample_rate
            audio = fit_length(resample_audio(to_mono(other_audio), rate, clip.sample_rate),
                               int(round(clip.duration_s * clip.sample_rate)))
            source = audio_source or "other"
        samples = int(round(self.shift_frames * clip.sample_rate / clip.fps))
        if abs(samples) >= audio.size:
            raise ConfigError(f"a shift of {self.shift_frames} frames is longer than the clip's audio "
                              f"({audio.size / clip.sample_rate:.2f} s); choose a smaller --shift-frames")
        shifted = shift_audio(audio.astype(np.float32), samples)
        truth = {
            "generator": self.name, "seed": seed, "fps": clip.fps, "n_frames": clip.n_frames,
            "audio_offset_frames": self.shift_frames, "audio_offset_s": samples / clip.sample_rate,
            "audio_offset_samples": samples, "sample_rate": clip.sample_rate, "audio_source": source,
            "sign_convention": "+K = audio later than video",
        }
        return GeneratedClip(clip=clip.with_audio(shifted, clip.sample_rate), ground_truth=truth)

    def generate(self, image: np.ndarray, audio: np.ndarray, sample_rate: int, *, seed: int = 0) -> GeneratedClip:
        raise ConfigError("the desync generator works on a real video, not a photo: "
                          "use `fakebench generate --generator desync --video CLIP --shift-frames K`")
