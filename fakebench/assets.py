"""Real face photos that installed dependencies ship, for the demo and the tests (nothing downloads)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fakebench.errors import ConfigError


def _astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


def _grace_hopper() -> np.ndarray:
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as f, Image.open(f) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


PHOTOS: dict[str, tuple[Callable[[], np.ndarray], str]] = {
    "astronaut": (_astronaut, "Eileen Collins, NASA portrait (public domain), shipped by scikit-image"),
    "grace_hopper": (_grace_hopper, "Grace Hopper, US Navy portrait (public domain), shipped by matplotlib"),
}


def photo_names() -> list[str]:
    return sorted(PHOTOS)


def load_photo(name: str) -> np.ndarray:
    """An (H, W, 3) uint8 RGB photo of a real person, by name (see `photo_names()`)."""
    try:
        loader, _ = PHOTOS[name]
    except KeyError:
        raise ConfigError(f"unknown photo {name!r}; choose one of {', '.join(photo_names())}") from None
    return loader()


def describe_photo(name: str) -> str:
    return PHOTOS[name][1] if name in PHOTOS else ""
