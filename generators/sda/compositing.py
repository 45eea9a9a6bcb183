"""Paste-back: the generated face crops warped into the full photo and blended in with a feathered mask.

The mask is the crop's area minus the parts that came from outside the photo (black in the crop), eroded
and blurred so the seam fades out before the crop's edge; everything outside the mask keeps the photo's
pixels exactly. The mask and the sampling grid are computed once per clip; each chunk of frames is
warped with one batched ``grid_sample`` over the bounding box of the mask only.

A masked decoder (fakebench's "masked" output) also says, per crop pixel, how much of the frame is its own drawing
rather than the still photo; pasted back, that share scales the mask, so where the network kept the still the
photo keeps its full resolution instead of the 128x96 crop's, resampled twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from fakebench.faces import _pixel_to_normalised, invert_transform


@dataclass(frozen=True, eq=False)
class PasteBack:
    photo: np.ndarray  # (H, W, 3) uint8
    box: tuple[int, int, int, int]  # y0, y1, x0, x1: the part of the photo the mask touches
    grid: torch.Tensor  # (1, y1 - y0, x1 - x0, 2): where each box pixel samples the crop (grid_sample units)
    mask: torch.Tensor  # (y1 - y0, x1 - x0, 1) float32 in [0, 1]
    photo_box: torch.Tensor  # (y1 - y0, x1 - x0, 3) float32: the photo's pixels in the box

    @classmethod
    def build(cls, photo: np.ndarray, crop_to_photo: np.ndarray, crop_size: tuple[int, int], *,
              erode_px: int = 4, blur_px: float = 2.0) -> PasteBack:
        """``erode_px`` and ``blur_px`` (Gaussian sigma) are in crop pixels."""
        from scipy import ndimage

        H, W = photo.shape[:2]
        h, w = crop_size
        # Crop pixels whose source lies inside the photo (with a 1-pixel margin for bilinear sampling).
        ys, xs = np.mgrid[0:h, 0:w]
        src = np.stack([xs, ys, np.ones_like(xs)], -1) @ crop_to_photo.T
        inside = (src[..., 0] >= 1) & (src[..., 0] <= W - 2) & (src[..., 1] >= 1) & (src[..., 1] <= H - 2)
        radius = int(np.ceil(3 * blur_px))
        core = ndimage.binary_erosion(inside, iterations=erode_px + radius, border_value=0)
        mask = ndimage.gaussian_filter(core.astype(np.float32), blur_px, mode="constant", truncate=3.0)
        mask[mask < 1e-4] = 0.0  # exactly the photo where the feather has faded out,
        mask[mask > 1 - 1e-4] = 1.0  # exactly the crop inside
        # The crop's corners in the photo bound the region that can change.
        corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]]) @ crop_to_photo.T
        x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 1, [W, H])
        if x1 <= x0 or y1 <= y0:
            x0, y0, x1, y1 = 0, 0, 1, 1
        # Box pixel -> crop pixel, then to grid_sample's [-1, 1] (align_corners=True) coordinates.
        to_crop = invert_transform(crop_to_photo)
        shift = np.array([[1.0, 0.0, x0], [0.0, 1.0, y0], [0.0, 0.0, 1.0]])
        box_to_crop = np.vstack([to_crop, [0, 0, 1]]) @ shift
        theta = _pixel_to_normalised(box_to_crop[:2], (y1 - y0, x1 - x0), (h, w))
        grid = F.affine_grid(torch.from_numpy(theta).float()[None], [1, 1, y1 - y0, x1 - x0], align_corners=True)
        m = F.grid_sample(torch.from_numpy(mask)[None, None], grid, mode="bilinear", padding_mode="zeros",
                          align_corners=True)[0, 0]
        m[m < 1e-4] = 0.0
        m[m > 1 - 1e-4] = 1.0
        photo_box = torch.from_numpy(photo[y0:y1, x0:x1].astype(np.float32))
        return cls(photo=photo, box=(int(y0), int(y1), int(x0), int(x1)), grid=grid, mask=m[..., None],
                   photo_box=photo_box)

    def apply(self, crops: torch.Tensor, out: np.ndarray, drawn: torch.Tensor | None = None) -> None:
        """Crops (n, h, w, 3): float pixel values in [0, 255] -> ``out`` (n, H, W, 3) uint8 frames. ``drawn``
        (n, h, w, 1) in [0, 1]: the share of each crop pixel the network drew (1 - its mask), or None (all).

        ``out`` must already hold the photo; only the box is written. The resampled blend is rounded.
        """
        y0, y1, x0, x1 = self.box
        device = crops.device
        grid = self.grid.to(device).expand(len(crops), -1, -1, -1)
        source = crops if drawn is None else torch.cat([crops, drawn.to(crops.dtype)], dim=-1)
        warped = F.grid_sample(source.permute(0, 3, 1, 2), grid, mode="bilinear", padding_mode="border",
                               align_corners=True).permute(0, 2, 3, 1)
        mask = self.mask.to(device)
        if drawn is not None:
            warped, share = warped[..., :3], warped[..., 3:]
            mask = mask * share
        blended = torch.lerp(self.photo_box.to(device), warped, mask)  # photo + mask * (crop - photo)
        out[:, y0:y1, x0:x1] = blended.round_().clamp_(0, 255).to(torch.uint8).cpu().numpy()
