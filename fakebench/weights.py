"""Model weights: where they come from, where fakebench looks for them, and how they are loaded safely.

Nothing here downloads anything. A weights file is looked for, in order, at an explicit path, in
``$FAKEBENCH_WEIGHTS``, in the torch hub checkpoint cache and, for weights shipped inside a PyPI
package, in that package's folder. Checkpoints are only ever loaded with torch's ``weights_only``
unpickler, extended to NumPy arrays; never with the full pickle machinery.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
import pickletools
import re
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, Any, Literal

from fakebench.errors import FakebenchError, InputFileError, UnverifiedWeightsError, WeightsError
from fakebench.io import atomic_write

ENV_VAR = "FAKEBENCH_WEIGHTS"
# Opt-in to weights whose size or SHA-256 is not the published one (a user's own fine-tuned model, a re-export).
# An environment variable, so that worker processes inherit what the command line said.
ALLOW_UNVERIFIED_ENV = "FAKEBENCH_ALLOW_UNVERIFIED_WEIGHTS"
ALLOW_UNVERIFIED_FLAG = "--allow-unverified-weights"
# The weights fakebench ships as package data (fakebench/data/weights, installed with the wheel): always searched,
# after $FAKEBENCH_WEIGHTS.
BUNDLED_DIR = Path(__file__).resolve().parent / "data" / "weights"
LFS_MAGIC = b"version https://git-lfs.github.com/spec/v1"

Checksum = Literal["ok", "mismatch", "unknown", "prefix ok", "not checked"]


@dataclass(frozen=True)
class WeightSpec:
    """A known weights file (or, when ``members`` is set, a folder of files)."""

    name: str
    filename: str
    sha256: str | None = None
    sha256_prefix: str | None = None
    source: str = ""  # "package:<pkg>" for files shipped in a PyPI package, else where to download it
    licence: str = ""
    description: str = ""
    size: int | None = None  # bytes, when known: a cheap check that needs no hashing
    members: tuple[str, ...] = ()  # non-empty: `filename` is a folder that must hold these files
    package_path: str = ""  # for "package:" sources: the folder inside the package holding the file(s)
    torch_cache_dirs: tuple[str, ...] = ("hub/checkpoints",)  # relative to $TORCH_HOME
    bundled_sha256: tuple[tuple[str, str], ...] = ()  # (member, SHA-256) of the copy in BUNDLED_DIR

    def __post_init__(self) -> None:
        for value, what in ((self.sha256, "sha256"), (self.sha256_prefix, "sha256_prefix")):
            if value is not None and not re.fullmatch(r"[0-9a-f]+", value):
                raise ValueError(f"{self.name}: {what} must be lowercase hex, got {value!r}")
        if self.sha256 is not None and len(self.sha256) != 64:
            raise ValueError(f"{self.name}: sha256 must have 64 hex digits, got {len(self.sha256)}")

    @property
    def package(self) -> str | None:
        return self.source.removeprefix("package:") if self.source.startswith("package:") else None

    @property
    def is_folder(self) -> bool:
        return bool(self.members)


@dataclass
class WeightLocation:
    name: str
    path: Path | None
    found: bool
    where: str  # "explicit path", "$FAKEBENCH_WEIGHTS", "torch hub cache", "package <pkg>"; "" if missing
    searched: list[Path] = field(default_factory=list)
    checksum: Checksum = "not checked"
    problem: str = ""  # why the checksum is "mismatch" (or why a found file is unusable)


_SDA_SOURCE = (
    "the speech-driven-animation release (github.com/DinoMan/speech-driven-animation): "
    "the authors' Google Drive link in its README"
)
_SDA_LICENCE = "no licence in the repository: research use only, ask the authors"

KNOWN_WEIGHTS: dict[str, WeightSpec] = {}


def register_weight(spec: WeightSpec, *, replace: bool = False) -> WeightSpec:
    """Add ``spec`` to the registry. Registering a different spec under a taken name needs ``replace``."""
    existing = KNOWN_WEIGHTS.get(spec.name)
    if existing is not None and existing != spec and not replace:
        raise ValueError(f"weights {spec.name!r} are already registered with a different spec")
    KNOWN_WEIGHTS[spec.name] = spec
    return spec


for _spec in (
    WeightSpec(
        name="mtcnn",
        filename="mtcnn",
        members=("pnet.pt", "rnet.pt", "onet.pt"),
        source="package:facenet_pytorch",
        package_path="data",
        licence="MIT (facenet-pytorch)",
        description="MTCNN face detector (P-, R- and O-Net) used by facenet-pytorch",
    ),
    WeightSpec(
        name="dlib_landmarks_68",
        filename="shape_predictor_68_face_landmarks.dat",
        source="package:face_recognition_models",
        package_path="models",
        licence="trained on iBUG 300-W, whose licence excludes commercial use",
        description="dlib 68-point facial landmark predictor",
    ),
    WeightSpec(
        name="dlib_face_recognition",
        filename="dlib_face_recognition_resnet_model_v1.dat",
        sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
        size=22466066,
        source="package:face_recognition_models",
        package_path="models",
        licence="CC0 1.0 (dlib-models)",
        description="dlib ResNet face embedding (128-d)",
    ),
    WeightSpec(
        name="inception_fid",
        filename="pt_inception-2015-12-05-6726825d.pth",
        sha256_prefix="6726825d",
        source="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
        "pt_inception-2015-12-05-6726825d.pth",
        licence="Apache-2.0 (pytorch-fid), ported from TensorFlow's FID Inception",
        description="FID Inception-v3 weights of pytorch-fid",
    ),
    WeightSpec(
        name="syncnet_v2",
        filename="syncnet_v2.model",
        sha256_prefix="961e8696",
        source="the syncnet_python release (github.com/joonson/syncnet_python, download_model.sh: "
        "http://www.robots.ox.ac.uk/~vgg/software/lipsync/data/syncnet_v2.model)",
        licence="research use under a Creative Commons Attribution licence (VGG, Oxford)",
        description="SyncNet audio-visual sync model (LSE-C / LSE-D)",
    ),
    WeightSpec(
        name="facenet_vggface2",
        filename="20180402-114759-vggface2.pt",
        source="https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/"
        "20180402-114759-vggface2.pt",
        licence="MIT (facenet-pytorch, ported from davidsandberg/facenet); trained on VGGFace2",
        description="facenet-pytorch InceptionResnetV1 identity embedding, VGGFace2",
        # facenet-pytorch caches it in $TORCH_HOME/checkpoints, not in torch hub's folder.
        torch_cache_dirs=("hub/checkpoints", "checkpoints"),
    ),
    WeightSpec(
        name="sda_grid",
        filename="grid.dat",
        sha256="cfd703ecb1bbbb2a81ea62a0df948627a6e4e6481e9c444fccb4a41701867ca7",
        size=221179358,
        source=_SDA_SOURCE,
        licence=_SDA_LICENCE,
        description="speech-driven-animation generator trained on GRID",
    ),
    WeightSpec(
        name="sda_timit",
        filename="timit.dat",
        sha256="e725836f8da8ea1951bbeff885839b273f503a39f0d4bf75f4686f16844ad94b",
        size=221181916,
        source=_SDA_SOURCE,
        licence=_SDA_LICENCE,
        description="speech-driven-animation generator trained on TCD-TIMIT",
    ),
    WeightSpec(
        name="sda_crema",
        filename="crema.dat",
        sha256="bd81f9c671f510c683c610c211522de1c5c675e77ffca659a7abc8d5535156a7",
        size=221171678,
        source=_SDA_SOURCE,
        licence=_SDA_LICENCE,
        description="speech-driven-animation generator trained on CREMA-D",
    ),
    WeightSpec(  # shipped in BUNDLED_DIR; the default lip-sync estimator (fakebench.avsync, metrics/sync.py)
        name="sync_cca",
        filename="sync-cca",
        members=("model.npz", "model.json"),
        source="shipped with fakebench as package data (fakebench/data/weights/sync-cca, fitted by `fakebench "
               "train-sync`, see its MODEL_CARD.md); or fit one on your own in-sync clips with `fakebench train-sync`",
        description="av-cca lip-sync model: mouth-landmark and log-mel projections (canonical correlation)",
        licence="as the clips it was fitted on (see MODEL_CARD.md)",
        torch_cache_dirs=(),
        bundled_sha256=(
            ("model.npz", "7fb1e1f576b1ea1cc1297521fff47e6d9998da4d6af35ef07271c60d513ae11a"),
            ("model.json", "6eee156f566d8788db2bc729f6e579db761cf38dbcd7dceed6be4ed0d7d6e387"),
        ),
    ),
    WeightSpec(  # shipped in BUNDLED_DIR; the SDA generator's default (fakebench.generators.sda.checkpoint)
        name="sda_default",
        filename="sda-default",
        members=("config.json", "weights.pt"),
        source="shipped with fakebench as package data (fakebench/data/weights/sda-default, trained by `fakebench "
               "train-generator`, see fakebench/data/weights/MODEL_CARD.md); or train one yourself, or convert an "
               "original release file with `fakebench weights convert ORIGINAL.dat -o DIR`",
        description="speech-driven-animation generator in fakebench's format (the default SDA weights)",
        licence="as the data it was trained on; the original release has no licence file",
        torch_cache_dirs=(),
        bundled_sha256=(
            ("config.json", "e5c9048675c9d4cf39d787cf77f38d1d1e6087df02275840136a1afdef335cda"),
            ("weights.pt", "b2f6a34c7c72fbee8173722c6e18befb8c000fa1de5c9b55e7dc7b8761168399"),
        ),
    ),
):
    register_weight(_spec)


def get_spec(name: str) -> WeightSpec:
    try:
        return KNOWN_WEIGHTS[name]
    except KeyError:
        known = ", ".join(sorted(KNOWN_WEIGHTS))
        raise WeightsError(f"unknown weights {name!r}; known weights are: {known}") from None


# ---------------------------------------------------------------------------------------------------
# Resolution


def torch_home() -> Path:
    """``$TORCH_HOME``, defaulting as torch.hub does (without importing torch)."""
    default = os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(os.path.expanduser(os.getenv("TORCH_HOME", default)))


def package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing (running) it."""
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    return Path(next(iter(found.submodule_search_locations)))


def _candidates(spec: WeightSpec) -> Iterator[tuple[str, Path]]:
    """(where, path) for each place searched when no explicit path is given, in search order."""
    for folder in filter(None, os.getenv(ENV_VAR, "").split(os.pathsep)):
        yield f"${ENV_VAR}", Path(folder).expanduser() / spec.filename
    if spec.bundled_sha256:
        yield "fakebench package data", BUNDLED_DIR / spec.filename
    for sub in spec.torch_cache_dirs:
        where = "torch hub cache" if sub == "hub/checkpoints" else f"$TORCH_HOME/{sub}"
        yield where, torch_home() / sub / spec.filename
    if spec.package is not None:
        folder = package_dir(spec.package)
        if folder is not None:
            base = folder / spec.package_path
            yield f"package {spec.package}", base if spec.is_folder else base / spec.filename


def _is_present(spec: WeightSpec, path: Path) -> bool:
    if spec.is_folder:
        return path.is_dir() and all((path / member).is_file() for member in spec.members)
    return path.is_file()


def locate(name: str, path: str | os.PathLike[str] | None = None, *, verify: bool = True) -> WeightLocation:
    """Find weights ``name`` without raising when they are missing or fail their checksum."""
    spec = get_spec(name)
    if path is not None:
        explicit = Path(path).expanduser()
        if not spec.is_folder and explicit.is_dir():
            explicit = explicit / spec.filename
        candidates: Iterator[tuple[str, Path]] = iter([("explicit path", explicit)])
    else:
        candidates = _candidates(spec)
    searched: list[Path] = []
    for where, candidate in candidates:
        searched.append(candidate)
        if _is_present(spec, candidate):
            checksum, problem = _checksum_state(candidate, spec, verify)
            return WeightLocation(name, candidate, True, where, searched, checksum, problem)
    return WeightLocation(name, None, False, "", searched)


def find_weight(
    name: str,
    path: str | os.PathLike[str] | None = None,
    *,
    verify: bool = True,
    option: str | None = None,
) -> Path:
    """The path of weights ``name``; raises a WeightsError saying where it looked and how to get them.

    ``option`` names the command-line option that takes an explicit path, for the error message.
    """
    spec = get_spec(name)
    found = locate(name, path, verify=False)
    if not found.found or found.path is None:
        if path is not None:
            raise InputFileError(
                f"{name} weights not found at {found.searched[0]}: no such "
                f"{'folder with ' + ', '.join(spec.members) if spec.is_folder else 'file'}; "
                f"check the path, or leave it out to search ${ENV_VAR} and the torch hub cache"
            )
        raise WeightsError(_missing_message(spec, found.searched, option))
    if verify:
        try:
            verify_sha256(found.path, spec)
        except UnverifiedWeightsError as e:
            if not unverified_allowed():
                raise UnverifiedWeightsError(
                    f"{e.one_line()}. If it is your own file on purpose, pass {ALLOW_UNVERIFIED_FLAG} "
                    f"(or set {ALLOW_UNVERIFIED_ENV}=1): it is then loaded, still safely, and every result it "
                    "gives is labelled weights_verified: false") from None
            if name not in _UNVERIFIED_IN_USE:
                warnings.warn(f"{name}: using {found.path}, which is not the published file (size or SHA-256 "
                              "differs); results are labelled weights_verified: false", stacklevel=2)
            _UNVERIFIED_IN_USE[name] = str(found.path)
    return found.path


_UNVERIFIED_IN_USE: dict[str, str] = {}


def unverified_allowed() -> bool:
    """Whether weights that fail their published size or SHA-256 may be used (`ALLOW_UNVERIFIED_ENV`)."""
    return os.environ.get(ALLOW_UNVERIFIED_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def allow_unverified_weights(allow: bool = True) -> None:
    """Allow (or stop allowing) unverified weights in this process and the worker processes it starts."""
    if allow:
        os.environ[ALLOW_UNVERIFIED_ENV] = "1"
    else:
        os.environ.pop(ALLOW_UNVERIFIED_ENV, None)


def unverified_in_use() -> dict[str, str]:
    """{weights name: path} of the unverified files this process has used so far."""
    return dict(_UNVERIFIED_IN_USE)


def weights_verified(names: Iterable[str]) -> bool:
    """False when any of the weights ``names`` was used unverified in this process."""
    return not any(name in _UNVERIFIED_IN_USE for name in names)


def _missing_message(spec: WeightSpec, searched: list[Path], option: str | None) -> str:
    looked = ", ".join(str(p) for p in searched)
    what = f"a folder {spec.filename}/ holding {', '.join(spec.members)}" if spec.is_folder else spec.filename
    env = f"${ENV_VAR}" if os.getenv(ENV_VAR) else f"a folder and set ${ENV_VAR} to that folder"
    explicit = f"pass {option} PATH" if option else "pass its path explicitly"
    if spec.package is not None:
        pip_name = spec.package.replace("_", "-")
        install = (
            f"Install the {spec.package} package (pip install {pip_name})"
            if package_dir(spec.package) is None
            else f"Reinstall the {spec.package} package (pip install --force-reinstall {pip_name})"
        )
        how = f"{install}, or put {what} in {env}, or {explicit}"
    else:
        how = f"Download {what} from {spec.source} and put it in {env} or {explicit}"
    return f"{spec.name} weights not found (looked in: {looked}). {how}."


def list_weights(*, verify: bool = False) -> list[WeightLocation]:
    """Where every known weights file is; full checksums only with ``verify`` (large files take a while)."""
    return [locate(name, verify=verify) for name in sorted(KNOWN_WEIGHTS)]


# ---------------------------------------------------------------------------------------------------
# Verification


@lru_cache(maxsize=32)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def sha256_of(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file, streamed; cached while the file's size and mtime are unchanged."""
    stat = os.stat(path)
    return _sha256_cached(os.path.abspath(path), stat.st_size, stat.st_mtime_ns)


def verify_sha256(path: str | os.PathLike[str], spec: WeightSpec) -> Literal["ok", "prefix ok", "unknown"]:
    """Check a weights file against what is known of it; raises WeightsError when it does not match."""
    path = Path(path)
    if spec.is_folder:
        for member in spec.members:
            check_not_placeholder(path / member)
        if spec.bundled_sha256 and path.resolve() == (BUNDLED_DIR / spec.filename).resolve():
            for member, expected in spec.bundled_sha256:
                if sha256_of(path / member) != expected:
                    raise UnverifiedWeightsError(
                                       f"{path / member} is not the {spec.name} file fakebench was committed with "
                                       f"(SHA-256 expected {expected}, got {sha256_of(path / member)}); reinstall "
                                       "fakebench (or, in a git checkout, git checkout -- fakebench/data/weights)")
            return "ok"
        return "unknown"
    check_not_placeholder(path)
    _check_size(path, spec)
    if spec.sha256 is None and spec.sha256_prefix is None:
        return "unknown"
    actual = sha256_of(path)
    expected = spec.sha256 or spec.sha256_prefix or ""
    if not actual.startswith(expected):
        wanted = expected if spec.sha256 else f"one starting {expected}"
        raise UnverifiedWeightsError(
            f"{path} is not the known {spec.name} weights: SHA-256 expected {wanted}, got {actual}; "
            f"the file is corrupt or a different release. Get it again from {spec.source}"
        )
    return "ok" if spec.sha256 else "prefix ok"


def _check_size(path: Path, spec: WeightSpec) -> None:
    size = path.stat().st_size
    if spec.size is not None and size != spec.size:
        raise UnverifiedWeightsError(
            f"{path} is {size} bytes but the known {spec.name} weights are {spec.size} bytes; "
            f"the file is truncated, corrupt or a different release. Get it again from {spec.source}"
        )


def _checksum_state(path: Path, spec: WeightSpec, verify: bool) -> tuple[Checksum, str]:
    try:
        if verify:
            return verify_sha256(path, spec), ""
        if not spec.is_folder:
            check_not_placeholder(path)
            _check_size(path, spec)
    except FakebenchError as e:
        return "mismatch", e.one_line()
    has_reference = spec.sha256 is not None or spec.sha256_prefix is not None or spec.size is not None
    return ("not checked" if has_reference else "unknown"), ""


def check_not_placeholder(path: Path) -> None:
    """Reject files that stand in for weights: empty files, Git LFS pointers and saved web pages."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as e:
        raise InputFileError(f"cannot read {path} ({e.strerror}); check it exists and is readable") from None
    if not head:
        raise WeightsError(
            f"{path} is empty (0 bytes), not weights; the download or copy failed, fetch it again"
        )
    if head.startswith(LFS_MAGIC):
        size = re.search(rb"^size (\d+)", head, re.MULTILINE)
        of = f" (of a {int(size.group(1))}-byte file)" if size else ""
        raise WeightsError(
            f"{path} is a Git LFS pointer{of}, not the weights; fetch the real file "
            "(git lfs pull or the release download) and put it in its place"
        )
    if head.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html")):
        raise WeightsError(
            f"{path} is an HTML page, not the weights (a download saved a web page, such as a sign-in or "
            "virus-scan notice); download the real file again"
        )


# ---------------------------------------------------------------------------------------------------
# Safe loading

_UNSAFE_PATTERNS = (  # torch's weights_only complaints that mean "this is not just data"; group 1 names it
    re.compile(r"GLOBAL (\S+) was not an allowed global"),
    re.compile(r"unsupported GLOBAL (\S+) whose module"),
    re.compile(r"Can only (?:build|create new object) .* but got <class '([^']+)'>"),
    re.compile(r"(Trying to call reduce for unrecognized function .*)"),
    re.compile(r"(Can only (?:build|create new object) .*)"),
    re.compile(r"(Only persistent_load of storage is allowed.*)"),
)


def _numpy_safe_globals() -> list[Any]:
    """What torch's weights_only unpickler needs, beyond its defaults, to rebuild NumPy arrays and scalars.

    Pickles name the functions ``numpy.core.multiarray.*`` (NumPy 1) or ``numpy._core.multiarray.*``
    (NumPy 2); both names are admitted. Each dtype class must be admitted because unpickling a dtype
    ends in a BUILD on its instance. Object, void (structured) and StringDType dtypes are left out:
    they could carry arbitrary Python objects.
    """
    import numpy as np

    reconstruct = np.zeros(1).__reduce__()[0]
    scalar = np.float64(0).__reduce__()[0]
    named: list[Any] = [(np.ndarray, "numpy.ndarray"), (np.dtype, "numpy.dtype")]
    for core in ("numpy.core.multiarray", "numpy._core.multiarray"):
        named += [(reconstruct, f"{core}._reconstruct"), (scalar, f"{core}.scalar")]
    dtype_classes = {type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDGSU"}
    dtype_classes |= {type(np.dtype("M8[ns]")), type(np.dtype("m8[ns]"))}
    return named + sorted(dtype_classes, key=lambda c: c.__name__)


def _allowed_global_names(safe: list[Any]) -> set[str]:
    from torch import _weights_only_unpickler

    names = set(_weights_only_unpickler._get_allowed_globals())
    for entry in safe:
        names.add(entry[1] if isinstance(entry, tuple) else f"{entry.__module__}.{entry.__qualname__}")
    return names


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    map_location: Any = "cpu",
    name: str | None = None,
) -> Any:
    """Load a torch checkpoint holding only tensors, NumPy arrays, containers and plain values.

    Both the zip format and the legacy (torch < 1.6) format load. ``name`` (a registered weights name)
    only improves error messages.
    """
    import torch

    path = Path(path)
    _check_readable_file(path)
    check_not_placeholder(path)
    fetch = f"get it again from {KNOWN_WEIGHTS[name].source}" if name in KNOWN_WEIGHTS else "fetch it again"
    safe = _numpy_safe_globals()
    try:
        with torch.serialization.safe_globals(safe), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location=map_location, weights_only=True)
    except PermissionError as e:
        raise InputFileError(f"cannot read {path} ({e.strerror}); check its permissions") from None
    except pickle.UnpicklingError as e:
        refused = _refusal_reason(path, str(e), _allowed_global_names(safe))
        if refused:
            raise WeightsError(
                f"refused to load {path}: it contains code/objects other than tensors and arrays "
                f"({refused}); fakebench never unpickles arbitrary objects. Use the official weights file"
            ) from None
        raise WeightsError(_corrupt_message(path, _torch_reason(str(e)), fetch)) from None
    except Exception as e:  # a damaged file can make the unpickler fail in almost any way
        reason = f"{type(e).__name__}: {_first_line(str(e))}" if str(e).strip() else type(e).__name__
        raise WeightsError(_corrupt_message(path, reason, fetch)) from None


def _check_readable_file(path: Path) -> None:
    if not path.exists():
        raise InputFileError(f"checkpoint {path} does not exist; check the path")
    if not path.is_file():
        raise InputFileError(f"checkpoint {path} is not a file; pass the checkpoint file itself")


def _corrupt_message(path: Path, reason: str, fetch: str) -> str:
    return f"{path} is truncated or corrupt, or not a PyTorch checkpoint ({reason}); {fetch}"


def _first_line(text: str, limit: int = 160) -> str:
    """The first sentence of ``text``, shortened to ``limit`` characters."""
    line = next((s.strip() for s in text.splitlines() if s.strip()), "no details").split(". ")[0]
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _torch_reason(message: str) -> str:
    """The unpickler's own complaint, without the advice torch wraps around it."""
    lines = [s.strip() for s in message.splitlines() if s.strip()]
    boilerplate = (
        "Weights only load failed",
        "In PyTorch 2.6",
        "Please file an issue",
        "Check the documentation",
    )
    useful = [s for s in lines if not s.startswith(boilerplate)]
    return _first_line(useful[-1] if useful else message)


def _refusal_reason(path: Path, message: str, allowed: set[str]) -> str:
    """Why an unpickling failure means an unsafe file, or "" when it looks like plain damage."""
    disallowed = sorted(_pickle_globals(path) - allowed)
    if disallowed:
        return ", ".join(disallowed)
    for pattern in _UNSAFE_PATTERNS:
        match = pattern.search(message)
        if match:
            return _first_line(match.group(1))
    return ""


def _pickle_globals(path: Path) -> set[str]:
    """Every global a checkpoint's pickles name, read with pickletools (which executes nothing)."""
    found: set[str] = set()
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    if member.endswith("data.pkl"):
                        with archive.open(member) as f:
                            _scan_pickle(f, found)
        else:
            with open(path, "rb") as f:
                for _ in range(5):  # a legacy checkpoint is 5 pickles followed by raw tensor data
                    _scan_pickle(f, found)
    except Exception:  # damaged or not a pickle at all: report what was read before that
        pass
    return found


_NON_PUSHING_OPS = frozenset({"PROTO", "FRAME", "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"})


def _scan_pickle(f: IO[bytes], found: set[str]) -> None:
    """Add the globals one pickle names to ``found``; tracks just enough of the stack for STACK_GLOBAL."""
    pushed: list[str | None] = []  # what each op pushed: the string, or None for anything else
    memo: dict[int, str | None] = {}
    for opcode, arg, _ in pickletools.genops(f):
        op = opcode.name
        if op in ("GLOBAL", "INST"):
            found.add(_global_name(*str(arg).split(" ", 1)))
        elif op == "STACK_GLOBAL":
            module, name = (pushed[-2], pushed[-1]) if len(pushed) >= 2 else (None, None)
            found.add(_global_name(module, name) if module and name else "<unknown global>")
        if op == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif op in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg] = pushed[-1] if pushed else None
        elif op in ("GET", "BINGET", "LONG_BINGET"):
            pushed.append(memo.get(arg))
        elif op not in _NON_PUSHING_OPS:
            pushed.append(arg if isinstance(arg, str) and op != "GLOBAL" else None)


def _global_name(module: str, name: str) -> str:
    """``module.name`` as the unpickler resolves it (protocol 2 pickles use Python 2 names)."""
    from torch._utils import IMPORT_MAPPING, NAME_MAPPING

    if (module, name) in NAME_MAPPING:
        module, name = NAME_MAPPING[(module, name)]
    else:
        module = IMPORT_MAPPING.get(module, module)
    return f"{module}.{name}"


def save_checkpoint(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` to ``path`` atomically: readers see the old file or the complete new one."""
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))
