"""The expression metric (FACS action units from 68 landmarks, the emotion they show) and warp's emotions.

Fakes are warp clips of native-resolution crops of the two bundled photos (the faces as `fakebench generate`
animates the whole photos), made and tracked once per test worker. benchmarks/expression.py records the full
confusion matrices; the bar here is the issue's: 6 emotions + neutral at intensity >= 0.6, accuracy >= 0.8 with
the photo as the reference.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import cache

import numpy as np
import pytest
from helpers import fresh_speech, run

from fakebench.errors import ConfigError
from fakebench.faces import FaceTrack, analyze, mouth_opening, photo_face
from fakebench.generators.warp import (
    EMOTION_AUS,
    EXPRESSION_OFFSET_S,
    EXPRESSION_ONSET_S,
    WarpGenerator,
    expression_envelope,
)
from fakebench.media import write_audio, write_image
from fakebench.metrics import expression as ex
from fakebench.metrics.measure import measure_clips
from fakebench.metrics.registry import Reference, available, describe
from fakebench.samples import Sample

SR = 16000
FPS = 25.0
SENTENCE = ("Place blue at F two now, please.", "en-us")  # 2.3 s
LONG = ("The quick brown fox jumps over the lazy dog. Then it rests. Five boxing wizards jump quickly.", "en-us")
EMOTIONS = ex.EMOTIONS[1:]


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> dict[str, np.ndarray]:
    short, long = fresh_speech([SENTENCE, LONG], tmp_path_factory.mktemp("expression-speech"))
    return {"short": short, "long": np.concatenate([np.zeros(SR // 4, np.float32), long])}


@pytest.fixture(scope="module")
def faces(astronaut, grace_hopper) -> dict[str, np.ndarray]:
    """The faces at the photos' own resolution (inter-ocular distance about 43 and 83 px)."""
    return {"astronaut": np.ascontiguousarray(astronaut[0:256, 96:352]),
            "grace_hopper": np.ascontiguousarray(grace_hopper[100:420, 100:420])}


@pytest.fixture(scope="module")
def fakes(faces, speech):
    """fakes(photo, emotion, intensity) -> (GeneratedClip, FaceTrack), each made and tracked once."""

    @cache
    def make(photo: str, emotion: str, intensity: float):
        out = WarpGenerator(emotion=emotion, intensity=intensity).generate(faces[photo], speech["short"], SR, seed=0)
        return out, analyze(out.clip)

    return make


def _measure(fake, face: np.ndarray | None = None, name: str = "photo") -> dict:
    out, track = fake
    reference = None if face is None else Reference(path=name, photo=face)
    (row,) = measure_clips([Sample.from_clip(out.clip, track=track)], ["expression"], reference=reference)
    assert "expression_error" not in row, row
    return row


def _track(landmarks: np.ndarray) -> FaceTrack:
    n = len(landmarks)
    return FaceTrack(boxes=np.zeros((n, 4), np.float32), scores=np.ones(n, np.float32),
                     landmarks=landmarks.astype(np.float32), valid=np.ones(n, bool), n_faces=np.ones(n, np.int16),
                     detected=np.ones(n, bool), shape_errors=np.zeros(n, np.float32), fps=FPS, width=400,
                     height=400)


# ---------------------------------------------------------------------------------------------- the model

def test_landmark_sides_and_the_au_model_move_the_features_as_facs_says():
    assert (ex.MIRROR[ex.MIRROR] == np.arange(68)).all() and ex.MIRROR[36] == 45 and ex.MIRROR[17] == 26
    # the subject's right (17-21, 36-41, 48) is on the image's left: sign -1
    assert (ex.SIDE[[17, 21, 36, 39, 48, 31, 59, 67]] == -1).all() and (ex.SIDE[[26, 45, 54, 35, 55, 65]] == 1).all()
    assert (ex.SIDE[[8, 27, 30, 33, 51, 57, 62, 66]] == 0).all()
    face = ex._neutral_face()
    base = ex.expression_features(face)

    def change(au: int) -> dict[str, float]:
        moved = ex.expression_features(ex.apply_aus(face, {au: 1.0}))
        return {k: float(moved[k] - base[k]) for k in ex.FEATURES}

    assert change(1)["brow_inner"] > 0.1 and change(2)["brow_outer"] > 0.1
    assert change(4)["brow_gap"] < -0.1 and change(4)["brow_inner"] < -0.05
    assert change(5)["lid_upper"] > 0.04 and change(6)["lid_lower"] < -0.02
    assert change(12)["corner_elevation"] > 0.1 and change(12)["mouth_width"] > 0.2
    assert change(15)["corner_elevation"] < -0.05 and change(20)["mouth_width"] > 0.15
    assert change(9)["nose"] < -0.04 and change(10)["upper_lip"] < -0.05 and change(23)["lip_thickness"] < -0.04
    # the right and left halves move as mirror images: the eye line stays level and centred
    x0, y0 = ex.aligned(face)
    x, y = ex.aligned(ex.apply_aus(face, {12: 1.0, 4: 1.0, 2: 1.0}))
    np.testing.assert_allclose((x - x0)[ex.MIRROR], -(x - x0), atol=1e-9)
    np.testing.assert_allclose((y - y0)[ex.MIRROR], y - y0, atol=1e-9)


@pytest.mark.parametrize("intensity", [0.3, 0.6, 1.0])
def test_noise_free_landmarks_give_back_each_emotion(intensity):
    """The fit and the prototypes agree with the AU model: the driven shapes, measured without dlib, read right."""
    face = ex._neutral_face()
    neutral = ex.clip_features(face[None])
    for emotion in ex.EMOTIONS:
        aus = {au: share * intensity for au, share in EMOTION_AUS[emotion].items() if au != 26}
        row = ex.expression_metrics(_track(ex.apply_aus(face, aus)[None]), neutral=neutral, neutral_landmarks=face)
        assert row["expression_emotion"] == emotion, (emotion, row)
        for au, level in aus.items():  # AU7's lid tightening also lowers the upper lid a little: AU5 reads lower
            assert row[f"au{au:02d}"] == pytest.approx(level, abs=0.2 * level + 0.03), (emotion, au, row)


# ---------------------------------------------------------------------------------------------- warp fakes

def test_the_metric_recovers_the_requested_emotion_of_warp_fakes(faces, fakes):
    """6 emotions + neutral at intensities 0.6 and 0.9 on both photos, each measured against its photo.

    Measured on these crops: 23 of 26 right (0.885; the whole photos in benchmarks/expression.py: also 0.885). The
    misses are Grace Hopper's: dlib barely sees her brows move behind her glasses, so her surprise and fear lose
    their AU2 and read as sadness. Without a reference 6 of 26 are right (printed, not asserted)."""
    confusion = np.zeros((7, 7), int)
    without_reference = []
    for photo, face in faces.items():
        for emotion in ex.EMOTIONS:
            for intensity in ([0.6] if emotion == "neutral" else [0.6, 0.9]):
                row = _measure(fakes(photo, emotion, intensity), face, photo)
                confusion[ex.EMOTIONS.index(emotion), ex.EMOTIONS.index(row["expression_emotion"])] += 1
                assert row["expression_neutral"] == "reference photo" and 0 < row["expression_confidence"] <= 1
                without_reference.append(_measure(fakes(photo, emotion, intensity))["expression_emotion"] == emotion)
    accuracy = np.trace(confusion) / confusion.sum()
    print(f"\nexpression accuracy with the photo as reference {accuracy:.3f}, without {np.mean(without_reference):.3f}"
          f"\n{confusion}")
    assert accuracy >= 0.8, confusion
    assert confusion[0, 0] == 2 and confusion[1, 1] == 4  # the neutral clips read neutral, the smiles happy


def test_measured_action_units_grow_with_the_requested_intensity(faces, fakes):
    """For each emotion, the mean measured activation of its AUs rises from intensity 0.2 to 0.5 to 0.9."""
    for emotion in EMOTIONS:
        aus = [au for au in EMOTION_AUS[emotion] if au != 26]
        means = [np.mean([_measure(fakes("astronaut", emotion, i), faces["astronaut"], "astronaut")[f"au{au:02d}"]
                          for au in aus]) for i in (0.2, 0.5, 0.9)]
        assert means[0] < means[1] < means[2], (emotion, means)
        assert means[2] > 0.25, (emotion, means)


def test_per_frame_action_units_show_the_onset_apex_and_offset(faces, fakes):
    out, track = fakes("astronaut", "happy", 0.9)
    neutral, landmarks, _ = ex.reference_neutral(Reference(path="astronaut", photo=faces["astronaut"]))
    au12 = ex.frame_aus(track, neutral=neutral, neutral_landmarks=landmarks)[12]
    assert au12.shape == (track.n_frames,)
    apex = np.nanmedian(au12[len(au12) // 3: 2 * len(au12) // 3])
    assert apex > 0.3 and np.nanmean(au12[:2]) < 0.5 * apex and np.nanmean(au12[-2:]) < 0.5 * apex


def test_a_smile_still_speaks_in_sync_and_opens_with_the_sound(astronaut, speech):
    """Happy and neutral clips of the same speech: the driven lips open and close alike; the measured lips follow
    the loudness as closely; sync finds offset 0 and trusts it."""
    from fakebench.metrics.sync import sync_metrics

    face = np.ascontiguousarray(astronaut[2:258, 97:353])
    audio = speech["long"]
    hop = SR / FPS
    clips = {e: WarpGenerator(emotion=e, intensity=0.9).generate(face, audio, SR, seed=1) for e in ("neutral", "happy")}
    measured = {}
    for emotion, out in clips.items():
        track = analyze(out.clip)
        opening = mouth_opening(track.landmarks)
        level = np.array([np.sqrt(np.mean(audio[int(i * hop):int((i + 1) * hop)] ** 2)) for i in range(len(opening))])
        sync = sync_metrics(out.clip, track)
        assert sync["sync_offset_frames"] == 0 and sync["sync_reliable"] is True, (emotion, sync)
        measured[emotion] = (np.corrcoef(opening, level)[0, 1], opening)
    driven = {e: out.ground_truth["mouth_opening"] for e, out in clips.items()}
    np.testing.assert_allclose(driven["happy"], driven["neutral"], atol=2e-3)  # the smile leaves the articulation be
    corr_neutral, corr_happy = measured["neutral"][0], measured["happy"][0]
    assert corr_happy > 0.7 and corr_happy > corr_neutral - 0.1, (corr_neutral, corr_happy)
    assert np.percentile(driven["happy"], 10) < 0.02 and np.percentile(driven["happy"], 90) > 0.2  # closes, opens
    # dlib reads a closed smiling mouth as slightly open (its inner upper lip sits high on the smile), but the
    # measured opening still swings nearly as far as the neutral one
    swing = {e: np.percentile(o, 90) - np.percentile(o, 10) for e, (_, o) in measured.items()}
    assert swing["happy"] > 0.6 * swing["neutral"], swing


# ---------------------------------------------------------------------------------------------- warp's truth

def test_ground_truth_au_activations_ramp_up_hold_and_ramp_down(faces, speech):
    out = WarpGenerator(emotion="fearful", intensity=0.8, head_motion=False).generate(
        faces["astronaut"], speech["short"], SR, seed=2)
    truth = json.loads(json.dumps(out.ground_truth))
    n, fps = truth["n_frames"], truth["fps"]
    assert truth["emotion"] == "fearful" and truth["intensity"] == 0.8 and truth["warp_foldovers"] == 0
    assert set(truth["au_activations"]) == {f"au{au:02d}" for au in EMOTION_AUS["fearful"]}
    onset, offset = round(EXPRESSION_ONSET_S * fps), round(EXPRESSION_OFFSET_S * fps)
    for name, values in truth["au_activations"].items():
        a = np.array(values)
        share = EMOTION_AUS["fearful"][int(name[2:])]
        assert len(a) == n and a[0] == 0 and a[-1] == 0
        assert np.all(np.diff(a[:onset + 1]) > 0) and np.all(np.diff(a[n - offset - 1:]) < 0)
        np.testing.assert_allclose(a[onset:n - offset], 0.8 * share, atol=1e-4)  # the apex, held
    # the jaw drop rides on the speech: more opening than neutral's, but the lips still close where speech closes them
    neutral = WarpGenerator(head_motion=False).generate(faces["astronaut"], speech["short"], SR, seed=2).ground_truth
    scared, calm = np.array(truth["mouth_opening"]), np.array(neutral["mouth_opening"])
    assert np.all(scared >= calm - 1e-3) and np.mean(scared[onset:n - offset] - calm[onset:n - offset]) > 0.03
    speaking = np.flatnonzero(calm > 0.1)
    closures = [i for i in range(speaking[0], speaking[-1]) if calm[i] < 0.03]
    assert closures and np.all(scared[closures] < calm[closures] + 0.03)


def test_the_envelope_of_a_short_clip_still_starts_and_ends_at_zero():
    assert expression_envelope(2, FPS).tolist() == [0.0, 0.0]
    e = expression_envelope(9, FPS)  # 0.32 s: shorter than both ramps, shrunk in proportion
    assert e[0] == 0 and e[-1] == 0 and 0.9 < e.max() <= 1.0
    e = expression_envelope(100, FPS)
    assert (e[round(EXPRESSION_ONSET_S * FPS):100 - round(EXPRESSION_OFFSET_S * FPS)] == 1).all()


def test_neutral_or_zero_intensity_is_the_default_clip(faces, speech):
    image, audio = faces["grace_hopper"], speech["short"]
    default = WarpGenerator().generate(image, audio, SR, seed=4)
    for options in ({"emotion": "neutral"}, {"emotion": "neutral", "intensity": 1.0},
                    {"emotion": "angry", "intensity": 0}):
        other = WarpGenerator(**options).generate(image, audio, SR, seed=4)
        assert np.array_equal(other.clip.frames, default.clip.frames), options
        assert other.ground_truth["au_activations"] == {}
        same = {k: v for k, v in other.ground_truth.items() if k not in ("emotion", "intensity")}
        assert same == {k: v for k, v in default.ground_truth.items() if k not in ("emotion", "intensity")}
    assert default.ground_truth["emotion"] == "neutral" and default.ground_truth["intensity"] == 0.6


def test_emotion_options_are_checked():
    with pytest.raises(ConfigError, match="--emotion must be one of neutral, happy, sad"):
        WarpGenerator(emotion="joy")
    with pytest.raises(ConfigError, match="--intensity"):
        WarpGenerator(emotion="happy", intensity=1.5)


# ---------------------------------------------------------------------------------------------- the metric

def test_expression_is_a_registered_per_clip_metric():
    spec = available("clip")["expression"]
    assert spec.per == "clip" and spec.reference == "optional" and spec.weights == ()
    assert spec.keys[:2] == ("expression_emotion", "expression_confidence")
    assert {"au01", "au02", "au04", "au05", "au06", "au07", "au09", "au10", "au12", "au15", "au20", "au26"} <= \
        set(spec.keys)
    assert "expression: facial action units" in describe("clip")


def test_without_a_reference_the_registered_metric_discounts_the_population_spread(faces, fakes):
    """`measure` without --reference reads a clip exactly as `expression_metrics` does with the population norms,
    the spread between people counted as noise (a regression: the registered metric once passed the norms as if
    they were a reference photo, and read 0 of 19 real speakers as neutral)."""
    for photo, emotion in (("grace_hopper", "neutral"), ("astronaut", "happy")):
        out, track = fakes(photo, emotion, 0.9)
        row = _measure((out, track))
        direct = ex.expression_metrics(track)
        assert row["expression_neutral"] == "population norms"
        assert {k: row[k] for k in direct} == direct
        undiscounted = ex.expression_metrics(track, neutral=dict(ex.POPULATION_NORMS))  # the old path
        assert sum(row[f"au{au:02d}"] for au in ex.FITTED) < sum(undiscounted[f"au{au:02d}"] for au in ex.FITTED)


def test_without_a_reference_a_face_shape_alone_reads_neutral_and_a_full_expression_reads_as_itself():
    """Model faces of unknown shape: feature deviations drawn with the population's spread (and jitter), alone and
    on top of each emotion's AUs at full intensity (warp's AU mix), fitted against the norms."""
    rng = np.random.default_rng(0)
    shapes = rng.normal(size=(200, len(ex.FEATURES))) * ex._feature_noise(population=True)
    sig = ex.signatures()

    def readings(delta: np.ndarray) -> Counter:
        fitted = ex.fit_population_aus(delta, sig)
        return Counter(ex.classify({**{au: float(a[ex.FITTED.index(au)]) for au in ex.FITTED},
                                    7: float(a[ex.FITTED.index(6)])})[0] for a in fitted)

    alone = readings(shapes)
    assert alone["neutral"] >= 0.88 * len(shapes), alone  # a one-sided 5 % test per AU: 96 % measured
    face = ex._neutral_face()
    base = ex.expression_features(face)
    for emotion in EMOTIONS:
        moved = ex.expression_features(ex.apply_aus(face, {au: share for au, share in EMOTION_AUS[emotion].items()
                                                           if au != 26}))
        read = readings(shapes + np.array([float(moved[f] - base[f]) for f in ex.FEATURES]))
        emotional = Counter({e: n for e, n in read.items() if e != "neutral"})
        assert emotional.most_common(1)[0][0] == emotion, (emotion, read)
        assert read[emotion] >= 0.15 * len(shapes), (emotion, read)  # sad, the weakest, measured 26 %
    smiles = readings(shapes + np.array([float(ex.expression_features(ex.apply_aus(face, EMOTION_AUS["happy"]))[f]
                                               - base[f]) for f in ex.FEATURES]))
    assert smiles["happy"] >= 0.8 * len(shapes), smiles  # a full smile stands out of most face shapes: 92 %


def test_without_a_reference_the_astronaut_photo_reads_as_the_smile_it_is(astronaut):
    """Population norms: her photo smiles (lip corners as high as the labelled smiles of real photos)."""
    alone = ex.photo_expression(astronaut)
    assert alone["expression_emotion"] == "happy" and alone["au12"] > 0.3
    assert alone["expression_neutral"] == "population norms"
    itself = ex.photo_expression(astronaut, reference=astronaut)  # against itself: nothing changed
    assert itself["expression_emotion"] == "neutral" and max(itself[f"au{au:02d}"] for au in ex.FITTED) < 0.05


def test_measure_and_generate_on_the_command_line(capsys, tmp_path, faces, speech):
    image, wav, clip = tmp_path / "face.png", tmp_path / "speech.wav", tmp_path / "happy.mp4"
    write_image(image, faces["astronaut"])
    write_audio(wav, speech["short"], SR)
    code, out, err = run(capsys, "generate", "--image", image, "--audio", wav, "-o", clip, "--option",
                         "emotion=happy", "--option", "intensity=0.9")
    assert code == 0, err
    truth = json.loads(clip.with_suffix(".json").read_text())
    assert truth["emotion"] == "happy" and truth["intensity"] == 0.9 and len(truth["au_activations"]["au12"]) > 0
    code, out, err = run(capsys, "measure", clip, "--metrics", "expression", "--reference", image, "--json")
    assert code == 0, err
    row = json.loads(out)
    row = row[0] if isinstance(row, list) else row
    assert row["expression_emotion"] == "happy" and row["au12"] > 0.3, row
    code, out, err = run(capsys, "measure", "--help")
    assert code == 0 and "expression" in out
    code, out, err = run(capsys, "generate", "--image", image, "--audio", wav, "-o", tmp_path / "x.mp4", "--option",
                         "emotion=bored")
    assert code == 2 and "emotion" in err
    photo_face(faces["astronaut"])  # the crop has a face (the test's own premise)
