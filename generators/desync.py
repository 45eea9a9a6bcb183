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
                      help="+K = audio K frames later than video (non-zero unless other audio is given)"),
               Option("trim", bool, False,
                      help="cut the |K| frames whose sound was shifted away instead of filling the gap with "
                           "silence (corpus fakes do: padded silence alone would tell them from real clips)"))
    min_audio_s = 0.1
    default_rank = 40
    uses_surround = True  # corpus fakes shift the sound into the frames the build cut from the real clip

    def __init__(self, **options) -> None:
        checked = self.check_options(options)
        self.shift_frames, self.trim = int(checked["shift_frames"]), bool(checked["trim"])

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
            audio = resample_audio(mono, rate, clip.sample_rate)
            if self.trim and audio.size < clip.duration_s * clip.sample_rate:
                clip = clip.cut_frames(0, max(1, int(audio.size * clip.fps / clip.sample_rate)))
            audio = fit_length(audio, int(round(clip.duration_s * clip.sample_rate)))
            source = audio_source or "other"
            what = "the other audio, cut to the clip,"
        samples = int(round(self.shift_frames * clip.sample_rate / clip.fps))
        if abs(samples) >= audio.size:
            raise ConfigError(f"a shift of {self.shift_frames} frames is longer than {what} "
                              f"({audio.size / clip.sample_rate:.2f} s); choose a smaller --shift-frames")
        trimmed = 0
        if self.trim and self.shift_frames:
            trimmed = abs(self.shift_frames)
            if trimmed >= clip.n_frames:
                raise ConfigError(f"a shift of {self.shift_frames} frames leaves nothing of a {clip.n_frames}-frame "
                                  "clip once trimmed; choose a smaller --shift-frames")
            keep = int(round((clip.n_frames - trimmed) * clip.sample_rate / clip.fps))
            late = self.shift_frames > 0
            shifted = (audio[:keep] if late else audio[abs(samples):abs(samples) + keep]).astype(np.float32)
            shifted = fit_length(shifted, keep)
            clip = clip.cut_frames(trimmed, clip.n_frames) if late else clip.cut_frames(0, clip.n_frames - trimmed)
        else:
            shifted = shift_audio(audio.astype(np.float32), samples)
        truth = {
            "generator": self.name, "seed": seed, "fps": clip.fps, "n_frames": clip.n_frames,
            "audio_offset_frames": self.shift_frames, "audio_offset_s": samples / clip.sample_rate,
            "audio_offset_samples": samples, "sample_rate": clip.sample_rate, "audio_source": source,
            "sign_convention": "+K = audio later than video",
            "trimmed_frames": trimmed, "trimmed_at": ("start" if self.shift_frames > 0 else "end") if trimmed else None,
        }
        return GeneratedClip(clip=clip.with_audio(shifted, clip.sample_rate), ground_truth=truth)

    def fake_from_source(self, source: Clip, audio: np.ndarray, sample_rate: int, *, seed: int,
                         audio_source: str | None = None, identity_frame=None,
                         surround: tuple[Clip, int] | None = None) -> GeneratedClip:
        """A corpus fake: the real clip with its own audio shifted by a random K (3 to 12 frames, either sign,
        drawn from `seed`), or with another clip's audio (``audio_source``) in place, unshifted. Trimmed: the
        picture is cut where the sound was shifted away, so no added silence marks the fake."""
        if audio_source is None and surround is not None and surround[0].n_frames > source.n_frames:
            return self.shift_within(source, *surround, seed=seed)
        if audio_source is None:
            rng = np.random.default_rng(seed)
            shift = int(rng.integers(*CORPUS_SHIFT_FRAMES, endpoint=True) * rng.choice([-1, 1]))
            return type(self)(shift_frames=shift, trim=True).from_clip(source, seed=seed)
        return type(self)(shift_frames=0, trim=True).from_clip(source, seed=seed, other_audio=audio,
                                                   other_sample_rate=sample_rate, audio_source=audio_source)

    def shift_within(self, window: Clip, full: Clip, start: int, *, seed: int = 0) -> GeneratedClip:
        """The frames of `window` (frames start.. of `full`) with the sound of `full` shifted into the frames cut
        away: cut at the start, the sound comes K frames late (+K); cut at the end, K frames early (-K)."""
        k = full.n_frames - window.n_frames
        shift = k if start > 0 else -k
        a = int(round((start - shift) * full.sample_rate / full.fps))
        audio = fit_length(full.audio[a:a + window.audio.size].astype(np.float32), window.audio.size)
        samples = int(round(shift * full.sample_rate / full.fps))
        truth = {
            "generator": self.name, "seed": check_seed(seed), "fps": window.fps, "n_frames": window.n_frames,
            "audio_offset_frames": shift, "audio_offset_s": samples / full.sample_rate,
            "audio_offset_samples": samples, "sample_rate": full.sample_rate, "audio_source": "own",
            "sign_convention": "+K = audio later than video", "trimmed_frames": 0, "trimmed_at": None,
        }
        return GeneratedClip(clip=window.with_audio(audio, full.sample_rate), ground_truth=truth)

    def generate(self, image: np.ndarray, audio: np.ndarray, sample_rate: int, *, seed: int = 0) -> GeneratedClip:
        raise ConfigError("the desync generator works on a real video, not a photo: "
                          "use `fakebench generate --generator desync --video CLIP --shift-frames K`")
