"""Tests for fakebench.metrics.fid: the FID Inception against pytorch-fid, the Fréchet distance, KID,
frame sampling and the offline substitute (fd_dlib) when the Inception weights are missing."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fakebench import weights
from fakebench.errors import InputFileError, WeightsError
from fakebench.faces import photo_face
from fakebench.metrics import fid
from fakebench.synthetic import moving_photo

WEIGHTS_FILE = weights.KNOWN_WEIGHTS["inception_fid"].filename
N_IMAGES = 2  # per set: each image costs ~1 s of Inception on one loaded core, for each implementation
COMPARED_DIMS = 256  # the Fréchet distance is compared on these leading feature dimensions (see below)


# ---------------------------------------------------------------------------------------------- helpers


def _random_inception(seed: int = 0) -> fid.FIDInceptionV3:
    """Random weights whose BatchNorm statistics come from one batch of noise.

    Untrained Inception features with default BatchNorm statistics vanish (~1e-8), which would make
    every distance ~0 and every comparison pass; calibrated statistics give features of order 1.
    """
    torch.manual_seed(seed)
    model = fid.FIDInceptionV3()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average: after one batch, that batch's statistics
    model.train()
    with torch.no_grad():
        model(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(seed)))
    return model.eval()


def _crops(photo: np.ndarray, n: int, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    h, w = photo.shape[:2]
    ys = rng.integers(0, h - size, n)
    xs = rng.integers(0, w - size, n)
    return np.stack([photo[y:y + size, x:x + size] for y, x in zip(ys, xs, strict=True)])


def _block(mu: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The leading COMPARED_DIMS block of Gaussian statistics, made well-conditioned (identity added)."""
    k = COMPARED_DIMS
    return mu[:k], sigma[:k, :k] + np.eye(k)


def _no_download(*args, **kwargs):
    raise AssertionError("a test tried to download weights")


@pytest.fixture
def no_inception(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Empty weights folders everywhere fakebench looks; returns $FAKEBENCH_WEIGHTS."""
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv("FAKEBENCH_WEIGHTS", str(folder))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return folder


# ---------------------------------------------------------------------------------------------- pytorch-fid


def test_fid_equals_pytorch_fid_on_the_same_images_and_weights(tmp_path: Path, astronaut: np.ndarray,
                                                               grace_hopper: np.ndarray) -> None:
    """pytorch-fid and fakebench on the same PNG folders, with the same random weights file.

    The file is saved as pytorch-fid's checkpoint in a temporary torch hub cache, where pytorch-fid
    loads it (downloads are made to fail) and where fakebench finds it. A random file cannot have the
    official SHA-256 (prefix 6726825d), so fakebench's registry entry is copied without that prefix for
    this test only.

    The square root of a 2048x2048 product takes minutes on a loaded 2-core machine, and with a few
    images the covariances are so singular that the square root is ill-posed (pytorch-fid itself
    fails on some draws). So set_metrics runs unchanged, except that its call of `frechet_distance`
    receives the full statistics (recorded here) and returns the distance of their leading
    COMPARED_DIMS block with the identity added to both covariances; pytorch-fid's distance is taken
    on the same block. Features and statistics are compared in full;
    ``benchmarks/fid_throughput.py --full-fid`` compares the full 2048-d FID. One test, so the costly
    part runs once even when pytest-xdist spreads this file's tests over workers.
    """
    pytest.importorskip("pytorch_fid", reason="pytorch-fid is the development cross-check")
    from pytorch_fid.fid_score import calculate_frechet_distance, get_activations
    from pytorch_fid.inception import InceptionV3

    checkpoint = tmp_path / "torch" / "hub" / "checkpoints" / WEIGHTS_FILE
    checkpoint.parent.mkdir(parents=True)
    torch.save(_random_inception().state_dict(), checkpoint)
    rng = np.random.default_rng(0)
    folders = {}
    for name, photo in (("real", astronaut), ("fake", grace_hopper)):
        folders[name] = tmp_path / name
        folders[name].mkdir()
        for i, image in enumerate(_crops(photo, N_IMAGES, rng)):
            Image.fromarray(image).save(folders[name] / f"{i:03d}.png")

    calls: dict[str, tuple] = {}
    real_frechet, real_kid = fid.frechet_distance, fid.kid

    def frechet_spy(mu1, sigma1, mu2, sigma2):
        calls["frechet"] = (mu1, sigma1, mu2, sigma2)
        return real_frechet(*_block(mu1, sigma1), *_block(mu2, sigma2))

    def kid_spy(f1, f2, **kwargs):
        calls["kid"] = (f1, f2)
        return real_kid(f1, f2, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(tmp_path / "torch"))
        mp.setattr(torch.hub, "download_url_to_file", _no_download)
        model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
        theirs = {name: get_activations(sorted(folder.glob("*.png")), model, batch_size=50, dims=2048,
                                        device="cpu", num_workers=0) for name, folder in folders.items()}
        stats = {name: (a.mean(axis=0), np.cov(a, rowvar=False)) for name, a in theirs.items()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pytorch-fid passes sqrtm's deprecated `disp`
            their_distance = float(calculate_frechet_distance(*_block(*stats["real"]),
                                                              *_block(*stats["fake"])))

        with pytest.raises(WeightsError, match="--allow-unverified-weights"):  # refused by default
            fid.set_metrics(str(folders["real"]), str(folders["fake"]), metrics=("fid",))
        mp.setenv(weights.ALLOW_UNVERIFIED_ENV, "1")  # the user's opt-in: own weights, results labelled
        mp.setattr(weights, "_UNVERIFIED_IN_USE", {})
        mp.setattr(fid, "frechet_distance", frechet_spy)
        mp.setattr(fid, "kid", kid_spy)
        with pytest.warns(UserWarning, match="fewer than the 2048 feature dimensions"):
            out = fid.set_metrics(str(folders["real"]), str(folders["fake"]), metrics=("fid", "kid"))
        assert out["weights_verified"] is False
        assert weights.unverified_in_use() == {"inception_fid": str(checkpoint)}

    # features: all 2048 dimensions of every image
    ours_real, ours_fake = calls["kid"]
    assert ours_real.shape == ours_fake.shape == (N_IMAGES, 2048) and ours_real.dtype == np.float64
    assert theirs["real"].std(axis=0).mean() > 1e-2  # features that differ between images
    assert np.abs(ours_real - theirs["real"]).max() <= 1e-4
    assert np.abs(ours_fake - theirs["fake"]).max() <= 1e-4
    # statistics in full, then the distance
    mu1, sigma1, mu2, sigma2 = calls["frechet"]
    assert sigma1.shape == (2048, 2048)
    np.testing.assert_allclose(mu1, stats["real"][0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(sigma2, stats["fake"][1], rtol=0, atol=1e-6)
    assert their_distance > 1.0  # the two people's crops are far apart
    assert abs(out["fid"] - their_distance) < 1e-3
    assert out["fid"] == pytest.approx(their_distance, rel=1e-9)
    # the output names the model, the weights and the sample sizes
    assert out["fid_features"] == ("pytorch-fid InceptionV3 pool3 2048-d "
                                   "(pt_inception-2015-12-05-6726825d.pth)")
    assert out["kid_features"] == out["fid_features"]
    assert out["inception_weights"] == str(checkpoint)
    assert (out["samples_real"], out["samples_fake"]) == (N_IMAGES, N_IMAGES)
    assert out["input_real"] == f"folder {folders['real']}"
    assert out["kid_subset_size"] == N_IMAGES
    expected_kid = fid.kid(theirs["real"], theirs["fake"], subset_size=N_IMAGES)[0]
    assert out["kid"] == pytest.approx(expected_kid, rel=1e-9)
    assert "fd_dlib" not in out and "fid_skipped" not in out
    assert len(out["warnings"]) == 1 and "2048" in out["warnings"][0]


def test_random_weights_fail_the_official_checksum(tmp_path: Path) -> None:
    checkpoint = tmp_path / WEIGHTS_FILE
    torch.save({"fc.bias": torch.zeros(1008)}, checkpoint)
    with pytest.raises(WeightsError, match="SHA-256 expected one starting 6726825d"):
        fid.load_inception(checkpoint)


def test_weights_load_strictly_and_a_wrong_checkpoint_is_refused(tmp_path: Path) -> None:
    model = fid.FIDInceptionV3()
    names = set(model.state_dict())
    assert {"Conv2d_1a_3x3.conv.weight", "Mixed_7c.branch_pool.bn.running_var", "fc.weight"} <= names
    assert model.fc.out_features == 1008 and not any("AuxLogits" in n for n in names)
    wrong = tmp_path / WEIGHTS_FILE
    torch.save({"fc.weight": torch.zeros(1008, 2048)}, wrong)
    with pytest.raises(WeightsError, match="does not hold pytorch-fid's FID Inception weights"):
        fid.load_inception(wrong, verify=False)


# ---------------------------------------------------------------------------------------------- distances


def _reference_frechet(mu1, sigma1, mu2, sigma2) -> float:
    """Closed form through symmetric square roots: Tr((S1 S2)^1/2) = Tr((S1^1/2 S2 S1^1/2)^1/2)."""
    def sqrt_psd(s):
        w, v = np.linalg.eigh(s)
        return (v * np.sqrt(np.clip(w, 0, None))) @ v.T

    root1 = sqrt_psd(sigma1)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2)
                 - 2 * np.trace(sqrt_psd(root1 @ sigma2 @ root1)))


def test_frechet_distance_of_gaussians_equals_the_closed_form() -> None:
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    a, b = rng.uniform(0.5, 2, 8), rng.uniform(0.5, 2, 8)
    diagonal = np.sum((mu1 - mu2) ** 2) + np.sum(a + b - 2 * np.sqrt(a * b))
    assert fid.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(diagonal, rel=1e-10)
    m1, m2 = rng.normal(size=(8, 8)), rng.normal(size=(8, 8))
    s1, s2 = m1 @ m1.T + 0.1 * np.eye(8), m2 @ m2.T + 0.1 * np.eye(8)
    expected = _reference_frechet(mu1, s1, mu2, s2)
    assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
    # one dimension: (mu1 - mu2)^2 + (s1 - s2)^2 for standard deviations s1, s2
    assert fid.frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]),
                                np.array([[9.0]])) == pytest.approx(4.0 + 1.0)


def test_frechet_distance_matches_pytorch_fid_formula() -> None:
    pytest.importorskip("pytorch_fid", reason="pytorch-fid is the development cross-check")
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(2)
    for n in (30, 500):  # rank-deficient (complex square root) and full-rank covariances
        x, y = rng.normal(size=(n, 48)), rng.normal(0.2, 1.3, size=(n, 48))
        ours = fid.frechet_distance(*fid.statistics(x), *fid.statistics(y))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            theirs = calculate_frechet_distance(*fid.statistics(x), *fid.statistics(y))
        assert abs(ours - theirs) < 1e-9 * abs(theirs)


def test_frechet_distance_of_a_set_with_itself_is_zero() -> None:
    rng = np.random.default_rng(3)
    full = rng.normal(size=(3000, 64)) @ rng.normal(size=(64, 64))
    assert 0.0 <= fid.frechet_distance(*fid.statistics(full), *fid.statistics(full)) < 1e-6
    for seed in range(3):  # rank-deficient, as the demo's fd_dlib: the square root's error gives about -1e-6
        stats = fid.statistics(np.random.default_rng(seed).normal(size=(96, 128)))
        assert fid.frechet_distance(*stats, *stats) == 0.0
    few = full[:40]  # fewer samples than dimensions: singular covariance, as with small FID sets
    assert abs(fid.frechet_distance(*fid.statistics(few), *fid.statistics(few))) < 1e-3
    assert fid.frechet_distance(*fid.statistics(few), *fid.statistics(full[40:80])) > 10


def test_frechet_distance_grows_with_noise() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2000, 32))
    noise = rng.normal(size=x.shape)
    stats = fid.statistics(x)
    distances = [fid.frechet_distance(*stats, *fid.statistics(x + s * noise))
                 for s in (0.0, 0.1, 0.3, 1.0, 3.0)]
    assert distances[0] < 1e-6
    assert all(a < b for a, b in zip(distances, distances[1:], strict=False)), distances


def test_frechet_distance_refuses_a_large_imaginary_part() -> None:
    with pytest.raises(ValueError, match="Imaginary component"):
        fid.frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), -np.eye(2))


def test_an_undefined_distance_is_reported_as_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_real_root(*args):
        raise ValueError("Imaginary component 0.4")

    monkeypatch.setattr(fid, "frechet_distance", no_real_root)
    notes: list[str] = []
    out = fid._frechet("fid", np.zeros((5, 2048)), np.ones((5, 2048)), fid.INCEPTION_FEATURES, notes)
    assert "fid" not in out and "Imaginary component 0.4" in out["fid_skipped"]
    assert len(notes) == 1 and "5 real and 5 fake samples" in notes[0]


# ---------------------------------------------------------------------------------------------- KID


def _direct_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    k = lambda a, b: (float(np.dot(a, b)) / d + 1) ** 3  # noqa: E731
    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_is_the_unbiased_mmd_of_the_cubic_kernel() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(7, 5)), rng.normal(0.5, 1, size=(7, 5))
    direct = _direct_mmd2(x, y)
    assert fid.mmd2_unbiased(x, y) == pytest.approx(direct, rel=1e-12)
    # a subset of all samples is a permutation, and the estimate does not depend on the order
    mean, std = fid.kid(x, y, subsets=3, subset_size=100)
    assert mean == pytest.approx(direct, rel=1e-12) and std == pytest.approx(0, abs=1e-12)


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(600, 16)), rng.normal(size=(600, 16))
    same, same_std = fid.kid(x, y, subsets=10, subset_size=200, seed=1)
    shifted, _ = fid.kid(x, y + 0.5, subsets=10, subset_size=200, seed=1)
    further, _ = fid.kid(x, y + 1.0, subsets=10, subset_size=200, seed=1)
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted > 20 * max(abs(same), 1e-3) and further > shifted
    assert fid.kid(x, y, subsets=5, subset_size=50, seed=2) == fid.kid(x, y, subsets=5, subset_size=50,
                                                                          seed=2)


# ---------------------------------------------------------------------------------------------- sampling


class _MeanPixel(torch.nn.Module):
    """A stand-in for the Inception: each image's mean value, repeated 2048 times."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.mean(dim=(1, 2, 3)) * self.scale)[:, None].expand(-1, 2048)


def test_inception_features_keeps_order_across_sizes_and_batches() -> None:
    rng = np.random.default_rng(7)
    images = [rng.integers(0, 256, size=(h, 20, 3), dtype=np.uint8) for h in (10, 10, 10, 12, 10, 12, 12)]
    feats = fid.inception_features(images, _MeanPixel(), batch_size=2)
    expected = [im.astype(np.float32).mean() / 255 for im in images]
    np.testing.assert_allclose(feats[:, 0], expected, rtol=1e-6)
    np.testing.assert_array_equal(feats[:, 0], feats[:, -1])
    with pytest.raises(ValueError, match="uint8"):
        fid.inception_features(np.zeros((2, 8, 8, 3), np.float32), _MeanPixel())


def test_sample_frames_takes_evenly_spaced_face_frames(astronaut: np.ndarray) -> None:
    face = photo_face(astronaut)
    moving = moving_photo(astronaut, n_frames=10, size=(128, 128), centre=(225, 130), zoom=0.5, seed=3)
    track = moving.exact_track(face.landmarks)
    track.valid[[0, 1, 9]] = False  # faces in frames 2..8 only
    crops = fid.sample_frames([(moving.clip, track)], frames_per_clip=4, crop="face", size=299)
    assert crops.shape == (4, 299, 299, 3) and crops.dtype == np.uint8
    full = fid.sample_frames([(moving.clip, track)], frames_per_clip=4, crop="full")
    np.testing.assert_array_equal(full, moving.clip.frames[[2, 4, 6, 8]])
    # aligned crops undo the head motion: they differ far less from one another than the frames do
    crop_change = np.abs(crops[1:].astype(float) - crops[0]).mean()
    frame_change = np.abs(full[1:].astype(float) - full[0]).mean()
    assert crop_change < frame_change / 3, (crop_change, frame_change)
    assert len(fid.sample_frames([(moving.clip, track)], frames_per_clip=50, crop="full")) == 7


# ------------------------------------------------------------------------------------------ missing weights


def test_missing_inception_weights_give_fd_dlib_not_fid(no_inception: Path, astronaut: np.ndarray,
                                                        grace_hopper: np.ndarray) -> None:
    def clips(photo: np.ndarray, zoom: float, seeds: tuple[int, ...]) -> list:
        face = photo_face(photo)
        out = []
        for seed in seeds:
            moving = moving_photo(photo, n_frames=6, size=(160, 160), centre=tuple(face.landmarks.mean(0)),
                                  zoom=zoom, seed=seed)
            out.append((moving.clip, moving.exact_track(face.landmarks)))
        return out

    astro_a = clips(astronaut, 0.8, (1, 2))  # faces about 80 pixels wide in both people's clips
    astro_b = clips(astronaut, 0.8, (3, 4))
    grace = clips(grace_hopper, 0.42, (5, 6))
    with pytest.warns(UserWarning, match="fd_dlib from 4 real and 4 fake samples"):
        out = fid.set_metrics(astro_a, grace, frames_per_clip=2)
    assert "fid" not in out and "kid" not in out
    assert out["fid_skipped"].startswith("inception weights not found: ")
    assert str(no_inception / WEIGHTS_FILE) in out["fid_skipped"]
    assert out["kid_skipped"] == out["fid_skipped"] and out["fid_substitute"] == "fd_dlib"
    assert out["fd_dlib_features"] == "dlib face_recognition_resnet_model_v1 128-d " \
                                      "(dlib_face_recognition_resnet_model_v1.dat)"
    assert (out["samples_real"], out["crop"], out["frames_per_clip"]) == (4, "face", 2)
    with pytest.warns(UserWarning):
        same_person = fid.set_metrics(astro_a, astro_b, metrics=("fd_dlib",), frames_per_clip=2)
    assert same_person.keys().isdisjoint({"fid", "fid_skipped", "kid"})
    assert 0 < same_person["fd_dlib"] < out["fd_dlib"] / 2


def test_images_without_inception_weights_skip_everything_and_say_why(no_inception: Path) -> None:
    images = np.random.default_rng(8).integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    out = fid.set_metrics(images, images)
    assert "fid" not in out and "fd_dlib" not in out
    assert out["fd_dlib_skipped"].startswith("needs face landmarks")
    assert "inception weights not found" in out["fid_skipped"]


def test_broken_or_absent_weights_raise_rather_than_substitute(no_inception: Path, tmp_path: Path) -> None:
    images = np.zeros((2, 32, 32, 3), np.uint8)
    pointer = no_inception / WEIGHTS_FILE
    pointer.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:6726825d\nsize 95628359\n")
    with pytest.raises(WeightsError, match="Git LFS pointer"):
        fid.set_metrics(images, images)
    with pytest.raises(WeightsError, match="Git LFS pointer"):
        fid.set_metrics(images, images, inception_weights=pointer)
    with pytest.raises(InputFileError, match="not found"):
        fid.set_metrics(images, images, inception_weights=tmp_path / "nowhere.pth")
