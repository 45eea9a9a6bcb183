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


TALKING_SENTENCES = ("Place blue at F two now.", "Bin green by S nine again.", "Set white with P four please.",
                     "Lay red in D seven soon.", "A photo can talk and sing.", "Six spoons of fresh snow peas.")
TALKING_VOICES = ("en-us", "en-gb", "en-us+f2", "en+m3")


@pytest.fixture(scope="session")
def talking_set(astronaut, grace_hopper, tmp_path_factory):
    """A small generated corpus: 8 'people' (the two bundled photos, cropped two ways and mirrored), each saying
    two sentences. "real": warp clips (blinks, in sync) with their face tracks; "desync": the same clips with the
    audio 6 frames late or early; "static": the photo held still with the speech. Items have clip, track (None
    where not analysed), identity and clip_id."""
    from types import SimpleNamespace

    from helpers import fresh_speech

    from fakebench.faces import analyze
    from fakebench.generators.base import create

    crops = [astronaut[10:266, 90:346], astronaut[30:250, 110:330], grace_hopper[80:440, 90:450][::2, ::2],
             grace_hopper[120:420, 120:420]]
    faces = [np.ascontiguousarray(f) for face in crops for f in (face, face[:, ::-1])]
    out = {"real": [], "desync": [], "static": []}
    lines = [(TALKING_SENTENCES[(i + j) % len(TALKING_SENTENCES)], TALKING_VOICES[(i + j) % len(TALKING_VOICES)])
             for i in range(len(faces)) for j in range(2)]
    speech = iter(fresh_speech(lines, tmp_path_factory.mktemp("talking-speech")))  # the same audio in any order
    for i, face in enumerate(faces):
        for j in range(2):
            audio = next(speech)
            real = create("warp", max_side=192, blink_rate_per_min=30.0).generate(face, audio, 16000,
                                                                                  seed=i * 2 + j).clip
            track = analyze(real)
            who = f"person{i}"
            out["real"].append(SimpleNamespace(clip=real, track=track, identity=who, clip_id=f"real{i}_{j}"))
            shifted = create("desync", shift_frames=(6 if j else -6)).from_clip(real).clip
            out["desync"].append(SimpleNamespace(clip=shifted, track=track, identity=who, clip_id=f"desync{i}_{j}"))
            still = create("static", max_side=192).generate(face, audio, 16000).clip
            out["static"].append(SimpleNamespace(clip=still, track=None, identity=who, clip_id=f"static{i}_{j}"))
    return out
