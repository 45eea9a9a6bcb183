"""The hyperparameters an SDA checkpoint carries next to its weights (spec §2.2)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from fakebench.errors import WeightsError

STABLE_POINTS = (33, 36, 39, 42, 45)  # nose tip and the four eye corners: what alignment matches
NOISE_STD = 0.33  # std of the per-frame noise the original draws (not a checkpoint field)


@dataclass(frozen=True, eq=False)
class SDAConfig:
    mean_face: np.ndarray  # (68, 2) float64 (x, y) pixel coordinates in the img_size crop
    img_size: tuple[int, int] = (128, 96)  # (height, width)
    audio_rate: int = 16000
    video_rate: int = 30
    audio_feat_len: float = 0.2  # seconds per audio window
    audio_feat_samples: int = 3200
    id_enc_dim: int = 128
    rnn_gen_dim: int = 256
    aud_enc_dim: int = 256
    aux_latent: int = 10
    sequential_noise: bool = True
    base_channels: int = 64  # widest-map width of the image networks: identity-encoder convs have 64, 128, ...
    # fakebench's additions (absent from the published checkpoints, whose defaults these are):
    output: str = "rgb"  # "rgb": the decoder draws the frame; "masked": it draws a colour and a mask that
    # blends the colour with the still identity frame, frame = m * still + (1 - m) * colour (GANimation-style)
    emotions: tuple[str, ...] = ()  # emotions the generator is conditioned on, besides neutral (code zero)
    emotion_dim: int = 0  # width of the emotion code; 0 when ``emotions`` is empty

    def __post_init__(self) -> None:
        mf = np.asarray(self.mean_face, np.float64)
        if mf.shape != (68, 2) or not np.isfinite(mf).all():
            raise WeightsError(f"checkpoint mean_face must be a finite 68x2 array, found shape {mf.shape}")
        object.__setattr__(self, "mean_face", mf)
        h, w = (int(v) for v in self.img_size)
        object.__setattr__(self, "img_size", (h, w))
        if unet_depth((h, w)) is None:
            raise WeightsError(f"checkpoint img_size {self.img_size} is not a size the SDA networks can be built "
                               "for: the longer side must be a power of two >= 32 and both sides multiples of "
                               "a quarter of it")
        for name in ("audio_rate", "video_rate", "audio_feat_samples", "id_enc_dim", "rnn_gen_dim",
                     "aud_enc_dim", "aux_latent", "base_channels"):
            if int(getattr(self, name)) <= 0:
                raise WeightsError(f"checkpoint {name} must be positive, found {getattr(self, name)!r}")
            object.__setattr__(self, name, int(getattr(self, name)))
        object.__setattr__(self, "audio_feat_len", float(self.audio_feat_len))
        if self.output not in OUTPUTS:
            raise WeightsError(f"checkpoint output must be one of {', '.join(OUTPUTS)}, found {self.output!r}")
        emotions = tuple(str(e) for e in self.emotions)
        object.__setattr__(self, "emotions", emotions)
        object.__setattr__(self, "emotion_dim", int(self.emotion_dim))
        if "neutral" in emotions or len(set(emotions)) != len(emotions) or \
                (self.emotion_dim > 0) != bool(emotions) or self.emotion_dim < 0:
            raise WeightsError(f"checkpoint emotions {list(emotions)} with emotion_dim {self.emotion_dim}: give "
                               "distinct non-neutral emotions and a positive emotion_dim, or neither")
        if not self.sequential_noise:
            raise WeightsError("checkpoint has sequential_noise=False; only the released configuration "
                               "(noise through a GRU) is supported")
        if abs(self.audio_feat_samples - self.audio_feat_len * self.audio_rate) > 0.5:
            raise WeightsError(
                f"checkpoint audio_feat_samples={self.audio_feat_samples} does not equal audio_feat_len x "
                f"audio_rate = {self.audio_feat_len} x {self.audio_rate}")

    @property
    def hop(self) -> int:
        """The original's (truncated) hop in samples, which sets the padding split."""
        return int(self.audio_rate / self.video_rate)

    @property
    def latent_dim(self) -> int:
        return self.rnn_gen_dim + self.aux_latent + self.id_enc_dim + self.emotion_dim

    @property
    def out_channels(self) -> int:
        return 4 if self.output == "masked" else 3

    def to_json(self) -> dict[str, Any]:
        return {
            "mean_face": self.mean_face.tolist(), "img_size": list(self.img_size),
            "audio_rate": self.audio_rate, "video_rate": self.video_rate,
            "audio_feat_len": self.audio_feat_len, "audio_feat_samples": self.audio_feat_samples,
            "id_enc_dim": self.id_enc_dim, "rnn_gen_dim": self.rnn_gen_dim, "aud_enc_dim": self.aud_enc_dim,
            "aux_latent": self.aux_latent, "sequential_noise": self.sequential_noise,
            "base_channels": self.base_channels,
            # written only when used, so a converted original's config.json is as it always was
            **({"output": self.output} if self.output != "rgb" else {}),
            **({"emotions": list(self.emotions), "emotion_dim": self.emotion_dim} if self.emotions else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SDAConfig:
        try:
            optional = {k: data[k] for k in _OPTIONAL if k in data}
            if "emotions" in optional:
                optional["emotions"] = tuple(optional["emotions"])
            return cls(mean_face=np.asarray(data["mean_face"], np.float64), img_size=tuple(data["img_size"]),
                       **{k: data[k] for k in _SCALARS}, **optional)
        except (KeyError, TypeError, ValueError) as e:
            raise WeightsError(f"config.json is incomplete or malformed ({type(e).__name__}: {e}); "
                               "convert the original checkpoint again") from None

    def same_as(self, other: SDAConfig) -> bool:
        return self.to_json() == other.to_json()


_SCALARS = ("audio_rate", "video_rate", "audio_feat_len", "audio_feat_samples", "id_enc_dim", "rnn_gen_dim",
            "aud_enc_dim", "aux_latent", "sequential_noise")
_OPTIONAL = ("base_channels", "output", "emotions", "emotion_dim")  # added after format version 1 was written:
# absent means the published value
OUTPUTS = ("rgb", "masked")


def rate_from_first_kernel(kernel: int) -> float:
    """The audio rate implied by the first audio conv's kernel (5 ms of samples)."""
    return kernel / 0.005


def is_close_rate(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=0, abs_tol=0.5)


def unet_depth(img_size: tuple[int, int]) -> int | None:
    """Strided layers of the identity encoder, log2(longer side) - 2, or None for an unsupported size."""
    h, w = img_size
    side = max(h, w)
    if side < 32 or side & (side - 1):
        return None
    n = side.bit_length() - 3
    return n if h % (1 << n) == 0 and w % (1 << n) == 0 else None
