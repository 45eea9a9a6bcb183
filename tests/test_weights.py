"""Tests for fakebench.weights: registry, resolution, checksums and safe checkpoint loading."""

from __future__ import annotations

import hashlib
import os
import pickle
import shlex
import subprocess
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from fakebench import weights
from fakebench.errors import InputFileError, WeightsError
from fakebench.weights import WeightSpec


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Point every weights location at empty folders under tmp_path."""
    dirs = {name: tmp_path / name for name in ("fb_weights", "torch_home", "home")}
    for folder in dirs.values():
        folder.mkdir()
    monkeypatch.setenv("FAKEBENCH_WEIGHTS", str(dirs["fb_weights"]))
    monkeypatch.setenv("TORCH_HOME", str(dirs["torch_home"]))
    monkeypatch.setenv("HOME", str(dirs["home"]))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    dirs["hub"] = dirs["torch_home"] / "hub" / "checkpoints"
    return dirs


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, WeightSpec]:
    """A private copy of the registry, so test registrations vanish afterwards."""
    copy = dict(weights.KNOWN_WEIGHTS)
    monkeypatch.setattr(weights, "KNOWN_WEIGHTS", copy)
    return copy


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --- registry ---------------------------------------------------------------------------------------


def test_registry_has_the_required_weights() -> None:
    expected = {
        "mtcnn": "mtcnn",
        "dlib_landmarks_68": "shape_predictor_68_face_landmarks.dat",
        "dlib_face_recognition": "dlib_face_recognition_resnet_model_v1.dat",
        "inception_fid": "pt_inception-2015-12-05-6726825d.pth",
        "syncnet_v2": "syncnet_v2.model",
        "facenet_vggface2": "20180402-114759-vggface2.pt",
        "sda_grid": "grid.dat",
        "sda_timit": "timit.dat",
        "sda_crema": "crema.dat",
    }
    assert {name: weights.KNOWN_WEIGHTS[name].filename for name in expected} == expected
    assert weights.KNOWN_WEIGHTS["mtcnn"].members == ("pnet.pt", "rnet.pt", "onet.pt")
    assert weights.KNOWN_WEIGHTS["inception_fid"].sha256_prefix == "6726825d"
    assert weights.KNOWN_WEIGHTS["syncnet_v2"].sha256 is None
    grid = weights.KNOWN_WEIGHTS["sda_grid"]
    assert grid.sha256 == "cfd703ecb1bbbb2a81ea62a0df948627a6e4e6481e9c444fccb4a41701867ca7"
    assert grid.size == 221179358
    for spec in weights.KNOWN_WEIGHTS.values():
        assert spec.source and spec.licence and spec.description, spec.name


def test_register_weight_refuses_a_silent_redefinition(registry: dict[str, WeightSpec]) -> None:
    spec = weights.register_weight(WeightSpec("fb_test", "a.pt", source="somewhere"))
    assert registry["fb_test"] is spec
    weights.register_weight(WeightSpec("fb_test", "a.pt", source="somewhere"))  # same spec: fine
    with pytest.raises(ValueError, match="already registered"):
        weights.register_weight(WeightSpec("fb_test", "b.pt", source="somewhere"))
    weights.register_weight(WeightSpec("fb_test", "b.pt", source="somewhere"), replace=True)
    assert registry["fb_test"].filename == "b.pt"


def test_spec_rejects_malformed_hashes() -> None:
    with pytest.raises(ValueError, match="64 hex"):
        WeightSpec("x", "x.pt", sha256="abc")
    with pytest.raises(ValueError, match="lowercase hex"):
        WeightSpec("x", "x.pt", sha256_prefix="XYZ")


def test_unknown_name_is_a_weights_error() -> None:
    with pytest.raises(WeightsError, match="unknown weights 'nope'.*syncnet_v2"):
        weights.find_weight("nope")


# --- resolution -------------------------------------------------------------------------------------


def test_resolution_order_explicit_then_env_then_torch_hub(
    env: dict[str, Path], registry: dict[str, WeightSpec], tmp_path: Path
) -> None:
    weights.register_weight(WeightSpec("fb_test", "model.pt", source="https://example.org/model.pt"))
    explicit = _write(tmp_path / "elsewhere" / "mine.pt", b"explicit")
    in_env = _write(env["fb_weights"] / "model.pt", b"env")
    in_hub = _write(env["hub"] / "model.pt", b"hub")

    assert weights.find_weight("fb_test", explicit) == explicit
    assert weights.locate("fb_test", explicit).where == "explicit path"
    assert weights.find_weight("fb_test") == in_env
    assert weights.locate("fb_test").where == "$FAKEBENCH_WEIGHTS"
    in_env.unlink()
    assert weights.find_weight("fb_test") == in_hub
    located = weights.locate("fb_test")
    assert located.where == "torch hub cache"
    assert located.searched == [in_env, in_hub]


def test_explicit_directory_means_the_file_inside_it(
    env: dict[str, Path], registry: dict[str, WeightSpec], tmp_path: Path
) -> None:
    weights.register_weight(WeightSpec("fb_test", "model.pt", source="somewhere"))
    inside = _write(tmp_path / "dir" / "model.pt", b"x")
    assert weights.find_weight("fb_test", tmp_path / "dir") == inside


def test_missing_explicit_path_is_an_input_file_error_without_fallback(
    env: dict[str, Path], registry: dict[str, WeightSpec], tmp_path: Path
) -> None:
    weights.register_weight(WeightSpec("fb_test", "model.pt", source="somewhere"))
    _write(env["fb_weights"] / "model.pt", b"would be found without the explicit path")
    missing = tmp_path / "typo.pt"
    with pytest.raises(InputFileError, match="typo.pt"):
        weights.find_weight("fb_test", missing)


def test_missing_weights_error_lists_every_place_searched(
    env: dict[str, Path], registry: dict[str, WeightSpec]
) -> None:
    weights.register_weight(
        WeightSpec(
            "fb_test",
            "model.pt",
            source="https://example.org/model.pt",
            torch_cache_dirs=("hub/checkpoints", "checkpoints"),
        )
    )
    with pytest.raises(WeightsError) as caught:
        weights.find_weight("fb_test", option="--fb-weights")
    message = str(caught.value)
    assert "\n" not in message
    for place in (
        env["fb_weights"] / "model.pt",
        env["hub"] / "model.pt",
        env["torch_home"] / "checkpoints" / "model.pt",
    ):
        assert str(place) in message
    assert "https://example.org/model.pt" in message
    assert "--fb-weights PATH" in message
    assert "$FAKEBENCH_WEIGHTS" in message
    located = weights.locate("fb_test")
    assert located.found is False and located.path is None and len(located.searched) == 3


def test_torch_home_defaults_like_torch_hub(
    env: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights.torch_home() == tmp_path / "xdg" / "torch"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert weights.torch_home() == env["home"] / ".cache" / "torch"


def test_facenet_weights_found_in_facenet_pytorchs_own_cache(env: dict[str, Path]) -> None:
    # facenet-pytorch keeps its download in $TORCH_HOME/checkpoints, not in torch hub's folder.
    path = _write(env["torch_home"] / "checkpoints" / "20180402-114759-vggface2.pt", b"x")
    located = weights.locate("facenet_vggface2")
    assert located.path == path and located.where == "$TORCH_HOME/checkpoints"


def test_package_shipped_dlib_and_mtcnn_weights_are_found(env: dict[str, Path]) -> None:
    landmarks = weights.find_weight("dlib_landmarks_68")
    assert landmarks.name == "shape_predictor_68_face_landmarks.dat"
    assert landmarks.parent.name == "models" and landmarks.stat().st_size > 1_000_000
    assert weights.locate("dlib_landmarks_68").where == "package face_recognition_models"
    assert weights.find_weight("dlib_face_recognition").stat().st_size > 1_000_000
    mtcnn = weights.find_weight("mtcnn")
    assert mtcnn.parent.name == "facenet_pytorch"
    assert sorted(p.name for p in mtcnn.glob("*.pt")) == ["onet.pt", "pnet.pt", "rnet.pt"]


def test_package_weights_are_found_without_importing_the_packages() -> None:
    code = (
        "import sys; from fakebench import weights as w; "
        "w.find_weight('dlib_landmarks_68'); w.find_weight('mtcnn'); "
        "print(sorted({'face_recognition_models', 'facenet_pytorch'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_env_copy_beats_the_package_copy(env: dict[str, Path]) -> None:
    mine = env["fb_weights"] / "mtcnn"
    for member in ("pnet.pt", "rnet.pt", "onet.pt"):
        _write(mine / member, b"x")
    assert weights.find_weight("mtcnn") == mine
    (mine / "onet.pt").unlink()  # an incomplete folder does not count
    assert weights.locate("mtcnn").where == "package facenet_pytorch"


def test_list_weights_covers_the_registry_without_hashing(
    env: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(env["fb_weights"] / "grid.dat", b"far too small")

    def no_hashing(path: object) -> str:
        raise AssertionError("list_weights(verify=False) must not hash")

    monkeypatch.setattr(weights, "sha256_of", no_hashing)
    listed = {loc.name: loc for loc in weights.list_weights()}
    assert set(listed) == set(weights.KNOWN_WEIGHTS)
    assert listed["sda_grid"].found and listed["sda_grid"].checksum == "mismatch"  # by size alone
    assert "221179358" in listed["sda_grid"].problem
    assert listed["syncnet_v2"].found is False
    assert listed["dlib_landmarks_68"].checksum == "unknown"


# --- checksums --------------------------------------------------------------------------------------


def test_sha256_full_and_prefix(env: dict[str, Path], registry: dict[str, WeightSpec]) -> None:
    data = b"pretend weights" * 1000
    digest = hashlib.sha256(data).hexdigest()
    path = _write(env["fb_weights"] / "model.pt", data)

    good = weights.register_weight(
        WeightSpec("fb_good", "model.pt", sha256=digest, size=len(data), source="s")
    )
    assert weights.verify_sha256(path, good) == "ok"
    assert weights.locate("fb_good").checksum == "ok"
    assert weights.locate("fb_good", verify=False).checksum == "not checked"

    prefix = weights.register_weight(
        WeightSpec("fb_prefix", "model.pt", sha256_prefix=digest[:8], source="s")
    )
    assert weights.verify_sha256(path, prefix) == "prefix ok"
    assert weights.locate("fb_prefix").checksum == "prefix ok"

    wrong_prefix = "0" * 8 if not digest.startswith("0" * 8) else "1" * 8
    bad_prefix = WeightSpec("fb_bad_prefix", "model.pt", sha256_prefix=wrong_prefix, source="s")
    with pytest.raises(WeightsError, match=wrong_prefix):
        weights.verify_sha256(path, bad_prefix)

    unknown = weights.register_weight(WeightSpec("fb_unknown", "model.pt", source="s"))
    assert weights.verify_sha256(path, unknown) == "unknown"


def test_sha256_mismatch_says_expected_and_actual(
    env: dict[str, Path], registry: dict[str, WeightSpec]
) -> None:
    path = _write(env["fb_weights"] / "model.pt", b"a different release")
    expected = "ab" * 32
    weights.register_weight(
        WeightSpec("fb_test", "model.pt", sha256=expected, source="https://example.org/m")
    )
    actual = hashlib.sha256(b"a different release").hexdigest()
    with pytest.raises(WeightsError) as caught:
        weights.find_weight("fb_test")
    message = str(caught.value)
    assert expected in message and actual in message and "corrupt or a different release" in message
    located = weights.locate("fb_test")
    assert located.found and located.checksum == "mismatch" and actual in located.problem
    assert weights.find_weight("fb_test", verify=False) == path


def test_hash_cache_notices_a_replaced_file(env: dict[str, Path], registry: dict[str, WeightSpec]) -> None:
    path = _write(env["fb_weights"] / "model.pt", b"AAAA")
    spec = weights.register_weight(
        WeightSpec("fb_test", "model.pt", sha256=hashlib.sha256(b"AAAA").hexdigest(), source="s")
    )
    assert weights.verify_sha256(path, spec) == "ok"
    path.write_bytes(b"BBBB")  # same size; a different mtime
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    with pytest.raises(WeightsError, match="SHA-256"):
        weights.verify_sha256(path, spec)


def test_placeholders_fail_verification(env: dict[str, Path]) -> None:
    _write(
        env["fb_weights"] / "syncnet_v2.model", b"version https://git-lfs.github.com/spec/v1\nsize 52000000\n"
    )
    with pytest.raises(WeightsError, match="Git LFS pointer"):
        weights.find_weight("syncnet_v2")
    assert weights.locate("syncnet_v2").checksum == "mismatch"


# --- safe loading -----------------------------------------------------------------------------------


class _Payload:
    """Unpickling this runs ``how`` to create ``marker``."""

    def __init__(self, how: str, marker: Path) -> None:
        self.how, self.marker = how, marker

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        if self.how == "os.system":
            return os.system, (f"touch {shlex.quote(str(self.marker))}",)
        if self.how == "exec":
            return exec, (f"open({str(self.marker)!r}, 'w').close()",)
        return Path.touch, (self.marker,)


def _save_payload(obj: object, path: Path, fmt: str) -> None:
    if fmt == "pickle-2":
        path.write_bytes(pickle.dumps(obj, protocol=2))
    elif fmt == "pickle":
        path.write_bytes(pickle.dumps(obj))
    elif fmt == "torch":
        torch.save({"state_dict": {"w": torch.zeros(2)}, "evil": obj}, path)
    else:
        torch.save({"evil": obj}, path, _use_new_zipfile_serialization=False)


HOWS = ["os.system", "exec", "Path.touch"]


@pytest.mark.parametrize("how", HOWS)
def test_payloads_really_run_under_plain_pickle(how: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    pickle.loads(pickle.dumps(_Payload(how, marker), protocol=2))
    assert marker.exists()


@pytest.mark.parametrize("fmt", ["pickle-2", "pickle", "torch", "torch-legacy"])
@pytest.mark.parametrize("how", HOWS)
def test_malicious_pickle_is_refused_and_never_runs(how: str, fmt: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    _save_payload(_Payload(how, marker), path, fmt)
    with pytest.raises(WeightsError) as caught:
        weights.load_checkpoint(path)
    assert not marker.exists()
    message = str(caught.value)
    assert message.startswith(
        f"refused to load {path}: it contains code/objects other than tensors and arrays"
    )
    assert "fakebench never unpickles arbitrary objects" in message
    culprit = {"os.system": "posix.system", "exec": "builtins.exec", "Path.touch": "pathlib"}[how]
    assert culprit in message


def test_numpy_object_arrays_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "objects.pt"
    torch.save({"a": np.array([1, "x", None], dtype=object)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(WeightsError, match="refused to load.*ObjectDType"):
        weights.load_checkpoint(path)


def _sda_like_checkpoint() -> dict[str, object]:
    encoder = OrderedDict(
        [("conv.weight", torch.randn(4, 3, 3, 3)), ("conv.bias", torch.randn(4)), ("steps", torch.tensor(7))]
    )
    encoder._metadata = OrderedDict([("", {"version": 1})])  # type: ignore[attr-defined]
    return {
        "encoder": encoder,
        "generator": OrderedDict([("fc.weight", torch.randn(2, 5, dtype=torch.float64))]),
        "mean_face": np.random.default_rng(0).random((68, 2)).astype(np.float32),
        "img_size": (128, 96),
        "audio_rate": 50000,
        "video_rate": 25.0,
        "aux_latent": 10,
        "sequential_noise": True,
        "strict": False,
        "audio_feat_len": np.float64(0.2),
        "name": "grid",
    }


def _assert_same(loaded: dict[str, object], original: dict[str, object]) -> None:
    assert set(loaded) == set(original)
    for key in ("encoder", "generator"):
        assert isinstance(loaded[key], OrderedDict)
        assert list(loaded[key]) == list(original[key])  # type: ignore[call-overload]
        for name, tensor in original[key].items():  # type: ignore[attr-defined]
            assert torch.equal(loaded[key][name], tensor) and loaded[key][name].dtype == tensor.dtype  # type: ignore[index]
    assert loaded["encoder"]._metadata == {"": {"version": 1}}  # type: ignore[attr-defined]
    mean_face = loaded["mean_face"]
    assert isinstance(mean_face, np.ndarray) and mean_face.dtype == np.float32 and mean_face.shape == (68, 2)
    assert np.array_equal(mean_face, original["mean_face"])  # type: ignore[arg-type]
    assert type(loaded["img_size"]) is tuple and loaded["img_size"] == (128, 96)
    for key in ("audio_rate", "video_rate", "aux_latent", "sequential_noise", "strict", "name"):
        assert type(loaded[key]) is type(original[key]) and loaded[key] == original[key], key
    assert loaded["audio_feat_len"] == np.float64(0.2) and isinstance(loaded["audio_feat_len"], np.float64)


def test_legacy_checkpoint_with_numpy_round_trips(tmp_path: Path) -> None:
    original = _sda_like_checkpoint()
    path = tmp_path / "grid.dat"
    torch.save(original, path, _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(path)
    _assert_same(weights.load_checkpoint(path), original)


def test_legacy_checkpoint_written_with_numpy_1_names_loads(tmp_path: Path) -> None:
    # NumPy 1 pickles name numpy.core.multiarray, NumPy 2 numpy._core.multiarray; protocol 2 GLOBAL
    # opcodes spell the module out as text, so the bytes can be rewritten.
    original = _sda_like_checkpoint()
    path = tmp_path / "grid.dat"
    torch.save(original, path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    old_style = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert old_style != data
    path.write_bytes(old_style)
    _assert_same(weights.load_checkpoint(path), original)


def test_save_checkpoint_round_trips_and_is_atomic(tmp_path: Path) -> None:
    original = _sda_like_checkpoint()
    path = tmp_path / "out" / "ckpt.pt"
    assert weights.save_checkpoint(original, path) == path
    assert zipfile.is_zipfile(path)
    _assert_same(weights.load_checkpoint(path), original)

    before = path.read_bytes()
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        weights.save_checkpoint({"fn": lambda: None}, path)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["ckpt.pt"]


def test_git_lfs_pointer_is_named(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "grid.dat",
        b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"ab" * 32 + b"\nsize 221179358\n",
    )
    with pytest.raises(WeightsError, match=r"Git LFS pointer .*221179358.*not the weights.*git lfs pull"):
        weights.load_checkpoint(path)


def test_saved_web_page_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "grid.dat", b"<!DOCTYPE html><html><body>Google Drive can't scan this file")
    with pytest.raises(WeightsError, match="HTML page"):
        weights.load_checkpoint(path)


@pytest.mark.parametrize("legacy", [False, True])
def test_truncated_checkpoint_is_reported(tmp_path: Path, legacy: bool) -> None:
    full = tmp_path / "full.pt"
    torch.save(_sda_like_checkpoint(), full, _use_new_zipfile_serialization=not legacy)
    data = full.read_bytes()
    half = _write(tmp_path / "half.pt", data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated or corrupt") as caught:
        weights.load_checkpoint(half, name="sda_grid")
    assert "Google Drive" in str(caught.value)  # says where to get the file again
    assert "\n" not in str(caught.value)


def test_garbage_is_reported_as_corrupt(tmp_path: Path) -> None:
    path = _write(tmp_path / "noise.pt", np.random.default_rng(1).bytes(4096))
    with pytest.raises(WeightsError, match="truncated or corrupt"):
        weights.load_checkpoint(path)


def test_empty_missing_and_directory_checkpoints(tmp_path: Path) -> None:
    empty = _write(tmp_path / "empty.pt", b"")
    with pytest.raises(WeightsError, match="empty"):
        weights.load_checkpoint(empty)
    with pytest.raises(InputFileError, match="does not exist"):
        weights.load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(InputFileError, match="not a file"):
        weights.load_checkpoint(tmp_path)
