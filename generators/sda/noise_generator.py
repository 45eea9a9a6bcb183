"""The noise generator: i.i.d. Gaussian noise per frame through a GRU, then tanh (spec §4.3, ``rnn_noise``)."""

from __future__ import annotations

import torch
from torch import nn

from .config import NOISE_STD


class NoiseGenerator(nn.GRU):
    """A GRU whose state-dict keys are the original's ``rnn_noise.*``; forward applies tanh."""

    def __init__(self, dim: int = 10) -> None:
        super().__init__(dim, dim, num_layers=1, batch_first=True)

    def forward(self, noise: torch.Tensor, hidden: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        out, hidden = super().forward(noise, hidden)
        return torch.tanh(out), hidden


def draw_noise(n_frames: int, dim: int, seed: int, std: float = NOISE_STD) -> torch.Tensor:
    """The per-frame noise (n_frames, dim), N(0, std^2), from a generator seeded with ``seed``.

    All frames are drawn at once, in frame order, so how a clip is later split into chunks cannot
    change it.
    """
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randn((n_frames, dim), generator=gen, dtype=torch.float32) * std
