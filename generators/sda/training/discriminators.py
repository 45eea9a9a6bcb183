"""The three discriminators of the IJCV paper (spec §7): frame, sequence and synchronisation.

The paper's exact architectures are not in the spec; these follow its description (configs' ``notes``):
- `FrameDiscriminator`: one frame concatenated channel-wise with the still identity frame, strided convs
  down to a logit ("is this a real frame of this person?").
- `SequenceDiscriminator`: 3-D (spatio-temporal) convs over the frames (optionally downsampled), each
  frame's feature joined with a code of its audio window, a GRU over time, one logit per sequence ("is
  this real speech video for this audio?").
- `SyncDiscriminator`: the mouth half of a 0.2 s run of frames and the 0.2 s of audio centred on it go
  through separate encoders; the logit falls with the distance of the two embeddings ("in sync?").
All return raw logits (B,); the losses apply the sigmoid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..audio_encoder import AudioFrameEncoder, audio_layers


def _conv_stack(channels: list[int], conv: type[nn.Module], kernel, stride, padding) -> nn.Sequential:
    """Strided convs with LeakyReLU(0.2); BatchNorm after all but the first (as DCGAN discriminators)."""
    layers: list[nn.Module] = []
    for i, (cin, cout) in enumerate(zip(channels[:-1], channels[1:], strict=True)):
        layers.append(conv(cin, cout, kernel, stride, padding, bias=i == 0))
        if i > 0:
            layers.append(nn.BatchNorm3d(cout) if conv is nn.Conv3d else nn.BatchNorm2d(cout))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


def _halvings(img_size: tuple[int, int], floor: int = 4) -> int:
    """How many stride-2 layers bring the shorter side of ``img_size`` down to ``floor`` (or a little more)."""
    n, side = 0, min(img_size)
    while side // 2 >= floor and side % 2 == 0:
        side //= 2
        n += 1
    return n


class FrameDiscriminator(nn.Module):
    """(frame, still) (B, 3, h, w) each -> logit (B,)."""

    def __init__(self, img_size: tuple[int, int], base_channels: int = 64) -> None:
        super().__init__()
        depth = _halvings(img_size)
        widths = [6] + [base_channels << min(i, 3) for i in range(depth)]
        self.features = _conv_stack(widths, nn.Conv2d, 4, 2, 1)
        final = (img_size[0] >> depth, img_size[1] >> depth)
        self.head = nn.Conv2d(widths[-1], 1, final)

    def forward(self, frame: torch.Tensor, still: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(torch.cat([frame, still], dim=1))).flatten()


class AudioCode(nn.Module):
    """Audio windows (..., W) -> codes (..., dim): the generator's audio CNN design, separate weights."""

    def __init__(self, audio_rate: int, window: int, dim: int) -> None:
        super().__init__()
        self.cnn = AudioFrameEncoder(audio_layers(audio_rate, window, dim))

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        shape = windows.shape[:-1]
        return self.cnn(windows.reshape(-1, 1, windows.shape[-1])).reshape(*shape, -1)


class SequenceDiscriminator(nn.Module):
    """(frames (B, L, 3, h, w), audio windows (B, L, W)) -> logit (B,)."""

    def __init__(self, img_size: tuple[int, int], audio_rate: int, window: int, base_channels: int = 64,
                 audio_dim: int = 256, hidden: int = 256, downsample: int = 1) -> None:
        super().__init__()
        self.downsample = downsample
        img_size = (img_size[0] // downsample, img_size[1] // downsample)
        depth = _halvings(img_size)
        widths = [3] + [base_channels << min(i, 3) for i in range(depth)]
        self.video = _conv_stack(widths, nn.Conv3d, (3, 4, 4), (1, 2, 2), (1, 1, 1))
        final = (img_size[0] >> depth, img_size[1] >> depth)
        self.video_out = nn.Conv3d(widths[-1], hidden, (1, *final))
        self.audio = AudioCode(audio_rate, window, audio_dim)
        self.rnn = nn.GRU(hidden + audio_dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, frames: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
        x = frames.transpose(1, 2)  # (B, 3, L, h, w)
        if self.downsample > 1:
            x = F.avg_pool3d(x, (1, self.downsample, self.downsample))
        x = self.video_out(self.video(x))  # (B, hidden, L, 1, 1)
        x = torch.cat([x.flatten(3).squeeze(3).transpose(1, 2), self.audio(windows)], dim=2)
        out, _ = self.rnn(x)
        return self.head(out[:, -1]).flatten()


class SyncDiscriminator(nn.Module):
    """(mouth frames (B, K, 3, h/2, w), audio window (B, W)) -> logit (B,), high when in sync."""

    def __init__(self, img_size: tuple[int, int], audio_rate: int, window: int, sync_frames: int,
                 base_channels: int = 64, dim: int = 256) -> None:
        super().__init__()
        mouth = (img_size[0] // 2, img_size[1])
        depth = _halvings(mouth)
        widths = [3] + [base_channels << min(i, 3) for i in range(depth)]
        self.video = _conv_stack(widths, nn.Conv3d, (3, 4, 4), (1, 2, 2), (1, 1, 1))
        final = (mouth[0] >> depth, mouth[1] >> depth)
        self.video_out = nn.Sequential(nn.Conv3d(widths[-1], dim, (sync_frames, *final)), nn.Tanh())
        self.audio = nn.Sequential(AudioCode(audio_rate, window, dim), nn.Linear(dim, dim), nn.Tanh())
        self.scale = nn.Parameter(torch.tensor(-1.0))  # the logit falls as the distance grows
        self.bias = nn.Parameter(torch.tensor(1.0))

    def forward(self, mouths: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
        video = self.video_out(self.video(mouths.transpose(1, 2))).flatten(1)
        audio = self.audio(window)
        distance = (video - audio).pow(2).sum(1).add(1e-8).sqrt()
        return self.scale * distance + self.bias


def mouth_half(frames: torch.Tensor) -> torch.Tensor:
    """The lower half of face crops (..., 3, h, w) -> (..., 3, h/2, w): where the mouth is on the mean face."""
    return frames[..., frames.shape[-2] // 2:, :]
