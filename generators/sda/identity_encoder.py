"""The identity encoder: strided 2-D convs from the still face to a code z_id and U-Net skips (spec §4.2).

State-dict keys ``cl.<i>.0`` (Conv2d, no bias) and ``cl.<i>.1`` (BatchNorm2d) for the strided layers,
``cl.<n>.0`` for the last conv, whose kernel covers the remaining feature map, followed by tanh.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import unet_depth


class IdentityEncoder(nn.Module):
    def __init__(self, img_size: tuple[int, int] = (128, 96), code_dim: int = 128, channels: int = 3,
                 base_channels: int = 64) -> None:
        super().__init__()
        depth = unet_depth(img_size)
        if depth is None:
            raise ValueError(f"unsupported image size {img_size}")
        widths = [channels] + [base_channels << i for i in range(depth)]
        blocks: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))
            for cin, cout in zip(widths[:-1], widths[1:], strict=True)
        ]
        final = (img_size[0] >> depth, img_size[1] >> depth)
        blocks.append(nn.Sequential(nn.Conv2d(widths[-1], code_dim, final, 1, 0, bias=False), nn.Tanh()))
        self.cl = nn.ModuleList(blocks)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Image (B, 3, h, w) in [-1, 1] -> z_id (B, code_dim) and the skips [e0, ..., e_{n-1}]."""
        skips = []
        x = image
        for block in self.cl[:-1]:
            x = block(x)
            skips.append(x)
        return self.cl[-1](x).flatten(1), skips
