"""The frame decoder: a U-Net decoder from one latent vector per frame to a 128x96 frame (spec §4.3).

State-dict keys (within the generator): ``dcl.0.0`` (ConvTranspose2d from the 1x1 latent to the
smallest feature map) + ``dcl.0.1`` (BN); ``dcl.<i>`` for i = 1..n-1, U-Net blocks that each take one
identity-encoder skip; ``dcl.<n>`` the last ConvTranspose2d to RGB. No layer has a bias.

fakebench's "masked" output (not in the paper) gives the last layer a fourth channel: a mask that blends the
drawn colour with the still identity frame, so that what the network does not change is the photo itself.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import unet_depth


class UnetBlock(nn.Module):
    """cat([x, skip]) -> ConvT 3x3 (2C -> C) + BN + ReLU -> ConvT 4x4 stride 2 (C -> C/2) + BN + ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.dcl1 = nn.ConvTranspose2d(2 * channels, channels, 3, 1, 1, bias=False)
        self.activation1 = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(True))
        self.dcl2 = nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1, bias=False)
        self.activation2 = nn.Sequential(nn.BatchNorm2d(channels // 2), nn.ReLU(True))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.activation1(self.dcl1(torch.cat([x, skip], dim=1)))
        return self.activation2(self.dcl2(x))


class FrameDecoder(nn.ModuleList):
    """A ModuleList, so that its entries are the original's ``dcl.<i>`` keys directly."""

    def __init__(self, img_size: tuple[int, int] = (128, 96), latent_dim: int = 394, channels: int = 3,
                 base_channels: int = 64) -> None:
        depth = unet_depth(img_size)
        if depth is None:
            raise ValueError(f"unsupported image size {img_size}")
        top = base_channels << (depth - 1)
        first = (img_size[0] >> depth, img_size[1] >> depth)
        layers: list[nn.Module] = [
            nn.Sequential(nn.ConvTranspose2d(latent_dim, top, first, 1, 0, bias=False), nn.BatchNorm2d(top),
                          nn.ReLU(True))
        ]
        layers += [UnetBlock(top >> i) for i in range(depth - 1)]
        layers.append(nn.ConvTranspose2d(base_channels, channels, 4, 2, 1, bias=False))
        super().__init__(layers)

    @property
    def blocks(self) -> list[UnetBlock]:
        return [self[i] for i in range(1, len(self) - 1)]

    def forward(self, latent: torch.Tensor, skips: list[torch.Tensor],
                still: torch.Tensor | None = None) -> torch.Tensor:
        """Latent (N, latent_dim) and per-frame skips [e0, ..., e_{n-1}] (each (N, C, H, W)) -> (N, 3, h, w).

        Block i takes skip e_{n-i}: the deepest skip meets the first block; e0 is not used. A masked decoder
        (4 output channels) also needs the still identity frame, (N, 3, h, w) or (1, 3, h, w), in [-1, 1].
        """
        x = self[0](latent[:, :, None, None])
        for i, block in enumerate(self.blocks, start=1):
            x = block(x, skips[len(skips) - i])
        return finish(self[-1](x), still)


def finish(raw: torch.Tensor, still: torch.Tensor | None, channel_dim: int = 1) -> torch.Tensor:
    """The last layer's output -> frames in [-1, 1]: tanh of 3 channels, or with a fourth (the mask's logit),
    ``m * still + (1 - m) * tanh(colour)`` with ``m = sigmoid(logit)``."""
    if raw.shape[channel_dim] == 3:
        return torch.tanh(raw)
    if still is None:
        raise ValueError("a masked decoder needs the still identity frame")
    colour, logit = raw.split([3, 1], dim=channel_dim)
    return torch.lerp(torch.tanh(colour), still, torch.sigmoid(logit))
