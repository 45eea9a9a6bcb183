"""The `sync` and `blink` detectors learn on a small generated corpus and beat chance on held-out identities,
for the fakes they target: `sync` on desynchronised clips, `blink` on still photos made to talk. Both explain a
clip in words, and say so when they cannot score it."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fakebench.detectors.base import DETECTORS, DetectorBase
from fakebench.samples import Sample

pytestmark = pytest.mark.slow  # generates and analyses ~50 clips

SR = 16000
SENTENCES = ("Place blue at F two now.", "Bin green by S nine again.", "Set white with P four please.",
             "Lay red in D seven soon.", "A photo can talk and sing.", "Six spoons of fresh snow peas.")
VOICES = ("en-us", "en-gb", "en-us+f2", "en+m3")


def _faces(astronaut: np.ndarray, grace_hopper: np.ndarray) -> list[np.ndarray]:
    """Eight 'people': the two photos, each cropped two ways and mirrored."""
    a = [astronaut[10:266, 90:346], astronaut[30:250, 110:330]]
    g = [grace_hopper[80:440, 90:450][::2, ::2], grace_hopper[120:420, 120:420]]
    return [np.ascontiguousarray(f) for face in (a + g) for f in (face, face[:, ::-1])]


@pytest.fixture(scope="module")
def corpus(astronaut, grace_hopper) -> dict[str, list[Sample]]:
    from fakebench.faces import analyze
    from fakebench.generators.base import create
    from fakebench.media import resample_audio
    from fakebench.speech import synthesize

    out: dict[str, list[Sample]] = {"real": [], "desync": [], "static": []}
    for i, face in enumerate(_faces(astronaut, grace_hopper)):
        for j in range(2):
            text = SENTENCES[(i + j) % len(SENTENCES)]
            audio, sr, _ = synthesize(text, voice=VOICES[(i + j) % len(VOICES)])
            audio = resample_audio(audio, sr, SR)
            real = create("warp", max_side=192, blink_rate_per_min=30.0).generate(face, audio, SR, seed=i * 2 + j).clip
            track = analyze(real)
            meta = {"identity": f"person{i}"}
            out["real"].append(Sample.from_clip(real, clip_id=f"real{i}_{j}", track=track, label="real", **meta))
            shifted = create("desync", shift_frames=(6 if j else -6)).from_clip(real).clip
            out["desync"].append(Sample.from_clip(shifted, clip_id=f"desync{i}_{j}", track=track, label="fake",
                                                  **meta))
            still = create("static", max_side=192).generate(face, audio, SR).clip
            out["static"].append(Sample.from_clip(still, clip_id=f"static{i}_{j}", label="fake", **meta))
    return out


def _split(samples: list[Sample], people: range) -> list[Sample]:
    return [s for s in samples if int(s.identity.removeprefix("person")) in people]


def _auc_on_held_out(name: str, corpus: dict[str, list[Sample]], fake_kind: str) -> tuple[float, DetectorBase]:
    both = corpus["real"] + corpus[fake_kind]
    train, val, test = _split(both, range(0, 4)), _split(both, range(4, 6)), _split(both, range(6, 8))
    detector = DETECTORS.create(name).fit(train, val)
    p = detector.predict_proba(test)
    labels = [s.label == "fake" for s in test]
    return float(roc_auc_score(labels, p)), detector


def test_sync_detector_separates_desynchronised_clips_and_says_by_how_much(corpus):
    auc, detector = _auc_on_held_out("sync", corpus, "desync")
    assert auc >= 0.85
    shifted = next(s for s in corpus["desync"] if s.identity == "person7")
    words = detector.explain(shifted)[0].text
    assert ("lags" in words or "leads" in words or "unknown" in words), words


def test_blink_detector_separates_still_photos_and_says_no_blink(corpus):
    auc, detector = _auc_on_held_out("blink", corpus, "static")
    assert auc >= 0.85
    still = next(s for s in corpus["static"] if s.identity == "person6")
    assert detector.explain(still)[0].text.startswith("no blink in")


def test_a_clip_without_audio_is_no_audio_for_sync_and_still_scored_by_blink(corpus):
    from fakebench.media import Clip

    real = corpus["real"][0]
    silent = Sample.from_clip(Clip(frames=real.clip.frames, fps=real.clip.fps), track=real.track, label="real",
                              identity=real.identity)
    both = corpus["real"] + corpus["static"]
    sync = DETECTORS.create("sync").fit(corpus["real"][:8] + corpus["desync"][:8],
                                        corpus["real"][8:12] + corpus["desync"][8:12])
    scored = sync.score([silent])
    assert np.isnan(scored.p_fake[0]) and scored.status == ["no audio"]
    blink = DETECTORS.create("blink").fit(_split(both, range(0, 6)), _split(both, range(6, 8)))
    assert np.isfinite(blink.predict_proba([silent])[0])
