"""Shared fixtures: an isolated cache, small media made on the spot, the bundled photos."""

from __future__ import annotations

import os

import numpy as np
import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("fakebench-cache")
    weights = tmp_path_factory.mktemp("fakebench-weights")
    old = {k: os.environ.get(k) for k in ("FAKEBENCH_CACHE", "FAKEBENCH_WEIGHTS")}
    os.environ["FAKEBENCH_CACHE"] = str(cache)
    os.environ["FAKEBENCH_WEIGHTS"] = str(weights)
    import torch

    torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from fakebench.assets import load_photo

    return load_photo("astronaut")


@pytest.fixture(scope="session")
def grace_hopper() -> np.ndarray:
    from fakebench.assets import load_photo

    return load_photo("grace_hopper")


@pytest.fixture(scope="session")
def speech_16k() -> tuple[np.ndarray, int]:
    from fakebench.media import resample_audio
    from fakebench.speech import synthesize

    audio, sr, _ = synthesize("Place blue at F two now, please.", voice="en-us")
    return resample_audio(audio, sr, 16000), 16000
