"""Tests for fakebench.metrics.identity: dlib face descriptors from the track's landmarks, identity
distance to a reference photo or clip, and FaceNet only when its weights are present."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from fakebench import faces
from fakebench.errors import ConfigError, NoFaceError, WeightsError
from fakebench.faces import FaceTrack, analyze, photo_face
from fakebench.media import Clip
from fakebench.metrics import identity
from fakebench.synthetic import moving_photo

FACENET_FILE = "20180402-114759-vggface2.pt"


def _jpeg(frames: np.ndarray, quality: int) -> np.ndarray:
    out = []
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
        out.append(np.asarray(Image.open(buffer).convert("RGB")))
    return np.stack(out)


@pytest.fixture(scope="module")
def people(astronaut: np.ndarray, grace_hopper: np.ndarray) -> SimpleNamespace:
    """A short moving clip of each bundled person (faces ~80 px wide) with its exact face track."""
    clips = {}
    for name, photo, zoom in (("astronaut", astronaut, 0.8), ("grace", grace_hopper, 0.42)):
        face = photo_face(photo)
        moving = moving_photo(photo, n_frames=8, size=(192, 192), centre=tuple(face.landmarks.mean(0)),
                              zoom=zoom, seed=len(name))
        clips[name] = (moving.clip, moving.exact_track(face.landmarks))
    return SimpleNamespace(**clips, astronaut_photo=astronaut, grace_photo=grace_hopper)


@pytest.fixture
def no_facenet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv("FAKEBENCH_WEIGHTS", str(folder))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return folder


def test_same_person_moved_scaled_and_jpeg_compressed_stays_under_the_threshold(
        astronaut: np.ndarray, grace_hopper: np.ndarray, no_facenet: Path) -> None:
    moving = moving_photo(astronaut, n_frames=8, size=(256, 256), centre=(225, 130), zoom=0.8, seed=1)
    clip = Clip(frames=_jpeg(moving.clip.frames, quality=30), fps=moving.clip.fps)
    track = analyze(clip)  # the real landmarks of the degraded clip
    assert track.valid.all()
    same = identity.identity_metrics(clip, track, astronaut, frames=4)
    other = identity.identity_metrics(clip, track, grace_hopper, frames=4)
    assert same["identity_distance"] < identity.DLIB_THRESHOLD == 0.6
    assert same["identity_same_person"] is True and same["identity_frames"] == 4
    assert other["identity_distance"] > 0.6 and other["identity_same_person"] is False
    assert same["identity_cosine"] > other["identity_cosine"]
    assert same["identity_model"] == "dlib face_recognition_resnet_model_v1 128-d " \
                                     "(dlib_face_recognition_resnet_model_v1.dat)"
    assert same["identity_reference"] == "photo" and same["identity_reference_frames"] == 1
    assert "facenet_cosine" not in same and FACENET_FILE in same["facenet_skipped"]


def test_two_people_are_apart_and_a_clip_is_its_own_reference(people: SimpleNamespace,
                                                               no_facenet: Path) -> None:
    astro_clip, astro_track = people.astronaut
    grace_clip, grace_track = people.grace
    apart = identity.identity_metrics(grace_clip, grace_track, people.astronaut, frames=3)
    assert apart["identity_distance"] > 0.6 and apart["identity_same_person"] is False
    assert apart["identity_reference"] == "clip" and apart["identity_reference_frames"] == 3
    together = identity.identity_metrics(grace_clip, grace_track, people.grace_photo, frames=3)
    assert together["identity_distance"] < 0.6 and together["identity_cosine"] > apart["identity_cosine"]
    # the same single frame on both sides: distance 0, cosine 1
    itself = identity.identity_metrics(astro_clip, astro_track, people.astronaut, frames=1)
    assert itself["identity_distance"] == pytest.approx(0, abs=1e-9)
    assert itself["identity_cosine"] == pytest.approx(1, abs=1e-9)


def test_face_descriptors_batched_equal_one_at_a_time(people: SimpleNamespace) -> None:
    import dlib

    clip, track = people.astronaut
    frames, landmarks = clip.frames[:3], track.landmarks[:3]
    batched = faces.face_descriptors(frames, landmarks, batch_size=2)
    encoder = dlib.face_recognition_model_v1(str(identity.find_weight("dlib_face_recognition")))
    single = np.array([encoder.compute_face_descriptor(f, faces.dlib_shape(lm)) for f, lm in
                       zip(frames, landmarks, strict=True)])
    assert batched.shape == (3, 128) and batched.dtype == np.float64
    np.testing.assert_allclose(batched, single, rtol=0, atol=1e-6)
    assert np.linalg.norm(batched[0] - batched[1]) > 1e-4  # moved frames give (slightly) different chips
    with pytest.raises(ValueError, match="finite"):
        faces.face_descriptors(frames[:1], np.full((1, 68, 2), np.nan))


def test_face_frame_indices_spread_over_face_frames(people: SimpleNamespace) -> None:
    _, track = people.astronaut
    track = FaceTrack(**{k: getattr(track, k).copy() for k in FaceTrack.ARRAYS}, fps=track.fps,
                      width=track.width, height=track.height)
    track.valid[[0, 7]] = False
    # positions 0, 2.5, 5 among the six face frames, rounded half to even
    np.testing.assert_array_equal(faces.face_frame_indices(track, 3), [1, 3, 6])
    np.testing.assert_array_equal(faces.face_frame_indices(track, 20), [1, 2, 3, 4, 5, 6])
    track.valid[:] = False
    with pytest.raises(NoFaceError):
        identity.identity_metrics(people.astronaut[0], track, people.astronaut_photo)


def test_facenet_cosine_only_with_its_weights(people: SimpleNamespace, no_facenet: Path) -> None:
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(0)
    net = InceptionResnetV1(pretrained=None, classify=False)
    net.logits = torch.nn.Linear(512, identity.FACENET_CLASSES)
    torch.save(net.state_dict(), no_facenet / FACENET_FILE)
    clip, track = people.astronaut
    itself = identity.identity_metrics(clip, track, (clip, track), frames=1)
    assert itself["facenet_cosine"] == pytest.approx(1.0, abs=1e-5)
    assert itself["facenet_model"] == f"facenet-pytorch InceptionResnetV1 512-d, VGGFace2 ({FACENET_FILE})"
    assert "facenet_skipped" not in itself
    grace_clip, grace_track = people.grace
    other = identity.identity_metrics(grace_clip, grace_track, (clip, track), frames=1)
    assert -1 <= other["facenet_cosine"] < 1 - 1e-6  # untrained: different faces, nearly the same embedding
    torch.save({"last_linear.weight": torch.zeros(512, 1792)}, no_facenet / FACENET_FILE)
    identity._load_facenet.cache_clear()
    with pytest.raises(WeightsError, match="does not hold facenet-pytorch's VGGFace2"):
        identity.identity_metrics(clip, track, (clip, track), frames=1)


def test_identity_set_metrics_pairs_real_and_fake(people: SimpleNamespace, no_facenet: Path) -> None:
    clip, track = people.astronaut
    degraded = Clip(frames=_jpeg(clip.frames, quality=30), fps=clip.fps)
    out = identity.identity_set_metrics([people.astronaut, people.grace],
                                        [(degraded, track), people.astronaut], frames=1)
    assert out["identity_pairs"] == 2 and out["identity_same_person_rate"] == 0.5
    single = identity.identity_metrics(degraded, track, people.astronaut, frames=1)["identity_distance"]
    crossed = identity.identity_metrics(clip, track, people.grace, frames=1)["identity_distance"]
    assert out["identity_distance_mean"] == pytest.approx((single + crossed) / 2, rel=1e-12)
    assert out["identity_model"].startswith("dlib") and "facenet_skipped" in out
    with pytest.raises(ConfigError, match="corresponding real and fake"):
        identity.identity_set_metrics([people.astronaut], [])
