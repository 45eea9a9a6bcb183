"""The audio ("context") encoder: a 1-D CNN per 0.2 s window, then a 2-layer GRU over the windows (spec §4.1).

State-dict keys: ``encoder.cl.<i>`` (Conv1d with bias), ``encoder.activations.<i>.0`` (BatchNorm1d of
layers 0..n-2) and ``rnn.*`` (GRU). The first conv depends on the audio rate; the rest follows a fixed
building rule, so the same code builds the 16, 48 and 50 kHz models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from fakebench.errors import WeightsError


@dataclass(frozen=True)
class ConvSpec:
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    padding: int


def prime_factors(n: int) -> list[int]:
    factors, p = [], 2
    while n > 1:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    return factors


def audio_layers(audio_rate: int, window: int, out_dim: int) -> list[ConvSpec]:
    """The conv layers the original builds for one window of ``window`` samples at ``audio_rate``.

    Layer 0 has a 5 ms kernel and a 1 ms stride. The remaining length is then reduced by its prime
    factors in ascending order (kernel = 2 x stride, "same"-style padding), all but the last; a final
    conv whose kernel covers what is left maps to ``out_dim``. Channels start at 16 and double.
    """
    if audio_rate % 1000:
        raise WeightsError(f"audio_rate {audio_rate} Hz is not a multiple of 1000 Hz; the SDA audio encoder "
                           "is only defined for such rates")
    ms = audio_rate // 1000
    first = ConvSpec(1, 16, 5 * ms, ms, 2 * ms)
    length = (window + 2 * first.padding - first.kernel) // first.stride + 1
    layers, channels = [first], 16
    for stride in prime_factors(length)[:-1]:
        kernel = 2 * stride
        total = (math.ceil(length / stride) - 1) * stride + kernel - length
        padding = math.ceil(total / 2)
        layers.append(ConvSpec(channels, 2 * channels, kernel, stride, padding))
        length = (length + 2 * padding - kernel) // stride + 1
        channels *= 2
    layers.append(ConvSpec(channels, out_dim, length, 1, 0))
    return layers


class AudioFrameEncoder(nn.Module):
    """Window (N, 1, W) -> code (N, out_dim): conv + BN + ReLU blocks, a last conv and tanh."""

    def __init__(self, layers: list[ConvSpec]) -> None:
        super().__init__()
        self.cl = nn.ModuleList(
            nn.Conv1d(s.in_channels, s.out_channels, s.kernel, s.stride, s.padding) for s in layers
        )
        self.activations = nn.ModuleList(
            nn.Sequential(nn.BatchNorm1d(s.out_channels), nn.ReLU(True)) for s in layers[:-1]
        )

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        x = windows
        for conv, act in zip(self.cl[:-1], self.activations, strict=True):
            x = act(conv(x))
        return torch.tanh(self.cl[-1](x)).squeeze(-1)


class AudioEncoder(nn.Module):
    """Windows (T, W) of one clip -> z_c (1, T, rnn_gen_dim)."""

    def __init__(self, audio_rate: int, window: int, aud_enc_dim: int = 256, rnn_gen_dim: int = 256) -> None:
        super().__init__()
        self.encoder = AudioFrameEncoder(audio_layers(audio_rate, window, aud_enc_dim))
        self.rnn = nn.GRU(aud_enc_dim, rnn_gen_dim, num_layers=2, batch_first=True)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        codes = self.encoder(windows.unsqueeze(1))
        z, _ = self.rnn(codes.unsqueeze(0))
        return z
