"""``lips``: the network's size and shapes, its saved state, and the detector trained on a small generated corpus
(reals, desynchronised clips and still photos made to talk) telling both kinds of fake from reals on held-out
identities; a faceless clip is "no face", a silent one is scored from the lips alone, and explanations carry
numbers."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fakebench.detectors.base import DETECTORS, STATE_FILE, DetectorBase
from fakebench.errors import WeightsError
from fakebench.samples import Sample


def test_the_network_has_its_documented_size_and_gives_one_logit_per_window():
    import torch

    from fakebench.detectors.lips import AUDIO_CHANNELS, CROP, PARAMETERS, build_network, count_parameters

    network = build_network().eval()
    assert count_parameters(network) == PARAMETERS
    for frames in (25, 9):
        with torch.no_grad():
            out = network(torch.randn(3, 1, frames, *CROP), torch.randn(3, AUDIO_CHANNELS, frames))
        assert out.shape == (3,) and torch.isfinite(out).all()


def test_state_round_trip_without_training_and_a_state_that_does_not_fit():
    from fakebench.detectors.lips import build_network

    detector = DETECTORS.create("lips")
    detector.network = build_network().eval()
    detector.stats = {"opening_std_real": np.array([0.05]), "opening_std_fake": np.array([0.02])}
    state = detector.state()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    other = DETECTORS.create("lips")
    other.set_state(state)
    assert all(np.array_equal(v, other.state()[k]) for k, v in state.items())
    with pytest.raises(WeightsError, match="do not fit"):
        DETECTORS.create("lips").set_state({k: v for k, v in state.items() if not k.startswith("stats.")})
    with pytest.raises(WeightsError, match="do not fit"):
        DETECTORS.create("meso4").set_state(state)


def test_a_clip_without_a_face_is_no_face():
    from helpers import gradient_frames, tone

    from fakebench.detectors.lips import build_network
    from fakebench.media import Clip

    detector = DETECTORS.create("lips")
    detector.network = build_network().eval()
    clip = Clip(frames=gradient_frames(30), fps=25.0, audio=tone(1.2, 16000), sample_rate=16000)
    scored = detector.score([Sample.from_clip(clip, clip_id="gradient", label="real")])
    assert scored.status == ["no face"] and np.isnan(scored.p_fake[0])


# ---------------------------------------------------------------------------------------------------- trained
@pytest.fixture(scope="module")
def corpus(talking_set) -> dict[str, list[Sample]]:
    return {kind: [Sample.from_clip(item.clip, clip_id=item.clip_id, track=item.track,
                                    label="real" if kind == "real" else "fake", identity=item.identity)
                   for item in items] for kind, items in talking_set.items()}


def _split(samples: list[Sample], people: range) -> list[Sample]:
    return [s for s in samples if int(s.identity.removeprefix("person")) in people]


TEST_PEOPLE = range(6, 8)


@pytest.fixture(scope="module")
def trained(corpus):
    """One lips detector learning reals against both kinds of fake: people 0-3 train, 4-5 validate, 6-7 test."""
    from fakebench.detectors.lips import clip_input

    both = corpus["real"] + corpus["desync"] + corpus["static"]
    train, val = _split(both, range(0, 4)), _split(both, range(4, 6))
    for s in train + val:  # face tracks and mouth crops once, outside the timing
        clip_input(s)
    start = time.perf_counter()
    detector = DETECTORS.create("lips", epochs=20).fit(train, val)
    print(f"lips: training {time.perf_counter() - start:.1f} s, {detector.info}")  # printed, not asserted
    return detector


def _held_out_auc(detector, corpus, fake_kind: str) -> float:
    test = _split(corpus["real"], TEST_PEOPLE) + _split(corpus[fake_kind], TEST_PEOPLE)
    p = detector.predict_proba(test)
    assert np.isfinite(p).all(), p
    auc = float(roc_auc_score([s.label == "fake" for s in test], p))
    print(f"lips: held-out AUC real vs {fake_kind} {auc:.3f}, P(fake) {np.round(p, 2).tolist()}")
    return auc


@pytest.mark.slow
def test_lips_separates_still_photos_on_held_out_people(trained, corpus):
    assert _held_out_auc(trained, corpus, "static") >= 0.85, trained.info


@pytest.mark.slow
def test_lips_separates_desynchronised_clips_on_held_out_people(trained, corpus):
    assert _held_out_auc(trained, corpus, "desync") >= 0.85, trained.info


@pytest.mark.slow
def test_it_is_the_motion_that_counts_a_real_frame_held_still_is_fake(trained, corpus):
    """A held-out real clip's middle frame held for the whole clip, with its speech: the real's own looks, no lip
    motion. Caught as the still photos are, so the still photos are not caught by how they look."""
    from fakebench.faces import subset_track
    from fakebench.media import Clip

    reals = _split(corpus["real"], TEST_PEOPLE)
    held = []
    for s in reals:
        middle = s.clip.n_frames // 2
        clip = Clip(frames=np.repeat(s.clip.frames[middle:middle + 1], s.clip.n_frames, axis=0), fps=s.clip.fps,
                    audio=s.clip.audio, sample_rate=s.clip.sample_rate)
        held.append(Sample.from_clip(clip, clip_id=f"held-{s.clip_id}", label="fake", identity=s.identity,
                                     track=subset_track(s.track, np.full(s.clip.n_frames, middle))))
    p = trained.predict_proba(reals + held)
    assert roc_auc_score([0] * len(reals) + [1] * len(held), p) >= 0.85, p


@pytest.mark.slow
def test_saved_lips_scores_identically_and_refuses_a_changed_state(trained, corpus, tmp_path):
    test = _split(corpus["real"] + corpus["desync"] + corpus["static"], TEST_PEOPLE)
    folder = trained.save(tmp_path / "lips")
    loaded = DetectorBase.load(folder)
    assert loaded.name == "lips" and loaded.config == trained.config
    np.testing.assert_array_equal(loaded.predict_proba(test), trained.predict_proba(test))
    state = folder / STATE_FILE
    state.write_bytes(state.read_bytes()[:-1] + b"x")
    with pytest.raises(WeightsError, match="checksum"):
        DetectorBase.load(folder)


@pytest.mark.slow
def test_a_silent_clip_is_scored_from_the_lips_alone(trained, corpus):
    from fakebench.media import Clip

    def silent(s: Sample) -> Sample:
        return Sample.from_clip(Clip(frames=s.clip.frames, fps=s.clip.fps, has_audio_track=False),
                                clip_id=f"silent-{s.clip_id}", track=s.track, label=s.label, identity=s.identity)

    reals = [silent(s) for s in _split(corpus["real"], TEST_PEOPLE)]
    stills = [silent(s) for s in _split(corpus["static"], TEST_PEOPLE)]
    scored = trained.score(reals + stills)
    assert scored.status == ["ok"] * len(reals + stills) and np.isfinite(scored.p_fake).all()
    assert scored.p_fake[len(reals):].mean() > scored.p_fake[:len(reals)].mean(), scored.p_fake  # no lip motion
    assert any(f.text.startswith("no audio: scored from the lips alone") for f in trained.explain(reals[0]))


@pytest.mark.slow
def test_explanations_name_frames_motion_and_the_lip_speech_lag(trained, corpus):
    from fakebench.detectors.lips import CROP, clip_input

    real, shifted, still = (next(s for s in corpus[kind] if s.identity == "person7" and s.clip_id.endswith("_1"))
                            for kind in ("real", "desync", "static"))
    given = clip_input(real)
    assert given.crops.shape == (real.clip.n_frames, *CROP) and given.crops.dtype == np.uint8
    assert given.has_audio and given.face.all()
    words = {}
    for name, sample in (("real", real), ("desync", shifted), ("static", still)):
        findings = trained.explain(sample)
        assert len(findings) == 3, [f.text for f in findings]
        assert all(f.value is not None and np.isfinite(f.value) for f in findings), [f.text for f in findings]
        assert findings[0].text.startswith("mouth windows look fake in ") and findings[0].frames
        assert findings[1].text.startswith("mouth opening varies by ")
        assert findings[2].text.startswith("mouth opening vs speech level: correlation ")
        words[name] = findings
    # the shifted clip's speech comes 6 frames after the lips: no correlation at lag 0, a clear one a few frames on
    assert "later than the lips" in words["desync"][2].text, words["desync"][2].text
    assert words["desync"][2].value < words["real"][2].value
    # the still photo's mouth hardly moves
    assert words["static"][1].value < 0.25 * words["real"][1].value
