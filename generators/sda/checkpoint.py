"""SDA checkpoints: the original ``.dat`` files and fakebench's own folder format; strict checks; search.

The original file (spec §2) is one pickled dict: the state dicts ``encoder``, ``encoder_id`` and
``generator`` plus metadata (``mean_face``, ``img_size``, rates, dimensions). It is read only through
`fakebench.weights.load_checkpoint` (torch's weights-only unpickler, NumPy arrays allowed), never
with plain pickle.

fakebench's format is a folder: ``config.json`` (every config field, ``mean_face`` as a list, and
provenance: source file name, its SHA-256, converted_by) and ``weights.pt`` (a dict of the three state
dicts holding tensors only, loadable with ``torch.load(weights_only=True)``; float16 is upcast on load).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fakebench import weights
from fakebench.errors import InputFileError, WeightsError
from fakebench.io import atomic_folder

from .config import SDAConfig, is_close_rate, rate_from_first_kernel
from .generator import PARTS, Networks

FORMAT = "fakebench-sda"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
SEARCH_ORDER = ("sda_default", "sda_grid", "sda_crema", "sda_timit")
# The sda-small checkpoint fakebench ships as package data (fakebench/data/weights/sda-default; its MODEL_CARD.md
# there says how it was trained). Its spec lives in fakebench.weights, so `fakebench weights list` shows it without
# importing this module.
SDA_DEFAULT = weights.get_spec("sda_default")
BUNDLED_SHA256 = SDA_DEFAULT.bundled_sha256


SELF_TRAINED_SOURCE = "fakebench train-generator"  # how run.py names the checkpoints it writes
BUNDLED_NOTE = (
    "the sda checkpoint shipped with fakebench is not a model of real talking faces: it was trained on 226 clips that "
    "fakebench's warp generator made from 2 photos (astronaut, grace_hopper, 12 looks each, with emotions) speaking "
    "espeak-ng English (see fakebench/data/weights/MODEL_CARD.md); it keeps the photo's identity (it draws only "
    "what changes), but on faces unlike its two training people the lips barely move. For real faces convert an "
    "original release: fakebench weights convert grid.dat -o DIR, then --checkpoint DIR"
)


def training_note(source: str, path: str | os.PathLike[str] | None) -> str | None:
    """What a checkpoint fakebench trained itself was trained on and what to expect from it; None for a
    converted original release (its paper says what it is)."""
    if not source.startswith(SELF_TRAINED_SOURCE):
        return None
    if path is not None and Path(path).resolve() == (weights.BUNDLED_DIR / SDA_DEFAULT.filename).resolve():
        return BUNDLED_NOTE
    return (f"this sda checkpoint was trained by fakebench ({source}), not released with the paper: it knows the "
            "faces and speech of its training clips only (its run folder's run.json lists them, and its "
            "validation says how it does on held-out clips)")


@dataclass(eq=False)
class SDACheckpoint:
    config: SDAConfig
    encoder: dict[str, torch.Tensor]
    encoder_id: dict[str, torch.Tensor]
    generator: dict[str, torch.Tensor]
    source: str  # where the weights come from: the original file's name (or path)
    sha256: str | None = None  # of the original release file, when known

    def parts(self) -> dict[str, dict[str, torch.Tensor]]:
        return {part: getattr(self, part) for part in PARTS}

    def n_parameters(self) -> dict[str, int]:
        """Learned parameters per part (BatchNorm running statistics and counters excluded)."""
        return {part: sum(v.numel() for k, v in state.items() if not _is_buffer(k))
                for part, state in self.parts().items()}


def _is_buffer(key: str) -> bool:
    return key.endswith(("running_mean", "running_var", "num_batches_tracked"))


# ---------------------------------------------------------------------------------------------- checks

def expected_shapes(config: SDAConfig) -> dict[str, dict[str, tuple[int, ...]]]:
    """Every state-dict key of each part and its shape, in the original's order, for ``config``."""
    with torch.device("meta"):
        nets = Networks.build(config)
    return {part: {k: tuple(v.shape) for k, v in state.items()} for part, state in nets.state_dicts().items()}


def validate_parts(parts: Mapping[str, Any], config: SDAConfig, where: str) -> dict[str, dict[str, torch.Tensor]]:
    """Strict key and shape checks of the three state dicts; returns them as float32 CPU tensors.

    A missing ``num_batches_tracked`` is tolerated (older PyTorch did not save it). Anything else
    missing, unexpected or mis-shaped raises a WeightsError naming the first such key.
    """
    expected = expected_shapes(config)
    out: dict[str, dict[str, torch.Tensor]] = {}
    for part in PARTS:
        state = parts[part]
        want = expected[part]
        found_n = sum(_numel(v) for k, v in state.items() if not _is_buffer(str(k)))
        want_n = sum(math.prod(s) for k, s in want.items() if not _is_buffer(k))
        counts = f"{part} has {found_n:,} parameters, an SDA model at {config.audio_rate} Hz has {want_n:,}"
        for key, shape in want.items():
            if key not in state:
                if key.endswith("num_batches_tracked"):
                    continue
                raise WeightsError(f"{where} is not a complete SDA checkpoint: {part} lacks {key} (expected "
                                   f"shape {_fmt(shape)}; {counts}); use an original release file")
            value = state[key]
            if not isinstance(value, torch.Tensor):
                raise WeightsError(f"{where}: {part}.{key} is a {type(value).__name__}, not a tensor; "
                                   "the checkpoint is damaged or of another format")
            if tuple(value.shape) != shape:
                raise WeightsError(f"{where}: {part}.{key} has shape {_fmt(value.shape)}, expected "
                                   f"{_fmt(shape)} ({counts}); the checkpoint is of another architecture")
        for key in state:
            if key not in want:
                raise WeightsError(f"{where}: unexpected key {part}.{key} (shape {_fmt(_shape(state[key]))}; "
                                   f"{counts}); the checkpoint is of another architecture")
        out[part] = {key: _clean_tensor(state[key], f"{where}: {part}.{key}") for key in want if key in state}
    return out


def _numel(value: Any) -> int:
    return value.numel() if isinstance(value, torch.Tensor) else 0


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else ()


def _fmt(shape: Any) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def _clean_tensor(value: torch.Tensor, what: str) -> torch.Tensor:
    value = value.detach().to("cpu")
    if value.is_floating_point():
        value = value.float().contiguous()
        if not bool(torch.isfinite(value).all()):
            raise WeightsError(f"{what} holds NaN or infinite values; the checkpoint is damaged, get it again")
        return value
    if what.endswith("num_batches_tracked"):
        return value.long()
    raise WeightsError(f"{what} has dtype {value.dtype}, expected floating point; the checkpoint is damaged")


def _check_parts_present(obj: Any, where: str) -> None:
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{where} is not an SDA checkpoint: it holds a {type(obj).__name__}, expected a dict "
                           "with the state dicts 'encoder', 'encoder_id' and 'generator'")
    missing = [p for p in PARTS if p not in obj]
    if missing:
        keys = ", ".join(repr(k) for k in list(obj)[:6]) + (", ..." if len(obj) > 6 else "")
        raise WeightsError(f"{where} is not an SDA checkpoint: no {', '.join(repr(m) for m in missing)} state "
                           f"dict (it has keys {keys}); use an original release file (grid.dat, timit.dat, "
                           "crema.dat) or a folder written by `fakebench weights convert`")
    for part in PARTS:
        if not isinstance(obj[part], Mapping) or not all(isinstance(k, str) for k in obj[part]):
            raise WeightsError(f"{where}: '{part}' is a {type(obj[part]).__name__}, not a state dict; "
                               "the checkpoint is damaged or of another format")


# ---------------------------------------------------------------------------------------------- original

def load_original(path: str | os.PathLike[str]) -> SDACheckpoint:
    """Load an original release file (grid.dat, timit.dat, crema.dat) with strict checks."""
    path = Path(path)
    obj = weights.load_checkpoint(path, map_location="cpu", name=_known_name(path))
    where = str(path)
    _check_parts_present(obj, where)
    config = config_from_original(obj, where)
    parts = validate_parts(obj, config, where)
    return SDACheckpoint(config=config, **parts, source=path.name, sha256=weights.sha256_of(path))


def _known_name(path: Path) -> str | None:
    for name in SEARCH_ORDER[1:]:
        if weights.KNOWN_WEIGHTS[name].filename == path.name:
            return name
    return None


def config_from_original(obj: Mapping[str, Any], where: str) -> SDAConfig:
    """The SDAConfig of an original checkpoint dict; the audio rate is cross-checked with the first conv."""
    for key in ("mean_face", "img_size", "video_rate"):
        if key not in obj:
            raise WeightsError(f"{where} is not a complete SDA checkpoint: the metadata key {key!r} is missing")
    first = obj["encoder"].get("encoder.cl.0.weight")
    if not isinstance(first, torch.Tensor) or first.ndim != 3:
        raise WeightsError(f"{where}: encoder lacks a 3-D encoder.cl.0.weight (found "
                           f"{_fmt(_shape(first)) if first is not None else 'nothing'}); the checkpoint is of "
                           "another architecture")
    implied = rate_from_first_kernel(first.shape[-1])
    rate = obj.get("audio_rate", implied)
    try:
        rate = float(rate)
        feat_len = float(obj.get("audio_feat_len", 0.2))
    except (TypeError, ValueError):
        raise WeightsError(f"{where}: audio_rate/audio_feat_len are not numbers ({rate!r})") from None
    if not is_close_rate(rate, implied):
        raise WeightsError(f"{where}: audio_rate is {rate:g} Hz but encoder.cl.0.weight has shape "
                           f"{_fmt(first.shape)}, whose kernel of {first.shape[-1]} samples (5 ms) means "
                           f"{implied:g} Hz; the checkpoint is inconsistent")
    img_size = obj["img_size"]
    if isinstance(img_size, int):
        img_size = (img_size, img_size)
    try:
        return SDAConfig(
            mean_face=_as_array(obj["mean_face"]),
            img_size=tuple(int(v) for v in img_size),
            audio_rate=int(round(rate)),
            video_rate=_as_int(obj["video_rate"], "video_rate", where),
            audio_feat_len=feat_len,
            audio_feat_samples=_as_int(obj.get("audio_feat_samples", round(feat_len * rate)), "audio_feat_samples",
                                       where),
            id_enc_dim=_as_int(obj.get("id_enc_dim", 128), "id_enc_dim", where),
            rnn_gen_dim=_as_int(obj.get("rnn_gen_dim", 256), "rnn_gen_dim", where),
            aud_enc_dim=_as_int(obj.get("aud_enc_dim", 256), "aud_enc_dim", where),
            aux_latent=_as_int(obj.get("aux_latent", 10), "aux_latent", where),
            sequential_noise=bool(obj.get("sequential_noise", True)),
        )
    except WeightsError as e:
        raise WeightsError(f"{where}: {e}") from None
    except (TypeError, ValueError) as e:
        raise WeightsError(f"{where}: malformed metadata ({e})") from None


def _as_array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64)


def _as_int(value: Any, key: str, where: str) -> int:
    try:
        f = float(value.item() if isinstance(value, torch.Tensor | np.generic) else value)
    except (TypeError, ValueError):
        raise WeightsError(f"{where}: metadata {key} is {value!r}, not a number") from None
    if not f.is_integer():
        raise WeightsError(f"{where}: metadata {key} is {f}, expected an integer")
    return int(f)


# ---------------------------------------------------------------------------------------------- fakebench

def save_fakebench(ckpt: SDACheckpoint, out_dir: str | os.PathLike[str], *, half: bool = False) -> Path:
    """Write ``ckpt`` as a fakebench folder, atomically: readers see the old folder or the complete new one.

    ``half`` stores floating tensors as float16 (half the size; upcast again on load).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputFileError(f"cannot write SDA weights to {out}: it is a file; give a folder name")
    if out.is_dir() and any(out.iterdir()) and not (out / CONFIG_FILE).is_file():
        raise InputFileError(f"{out} exists and is not an SDA weights folder; choose a new or empty folder")
    config = {
        "format": FORMAT, "format_version": FORMAT_VERSION, **ckpt.config.to_json(),
        "source": ckpt.source, "sha256": ckpt.sha256, "dtype": "float16" if half else "float32",
        "converted_by": f"fakebench {_version()} (fakebench.generators.sda.checkpoint)",
    }
    tensors = {part: {k: (v.half() if half and v.is_floating_point() else v).contiguous().clone()
                      for k, v in state.items()} for part, state in ckpt.parts().items()}
    with atomic_folder(out) as tmp:  # its files are fsynced before the folder is swapped in
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=1))
        with open(tmp / WEIGHTS_FILE, "wb") as f:
            torch.save(tensors, f)
    return out


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fakebench")
    except PackageNotFoundError:
        return "unknown"


def load_fakebench(folder: str | os.PathLike[str]) -> SDACheckpoint:
    """Load a folder written by `save_fakebench` / `convert`, with the same strict checks."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(f"{folder} is not a folder; an SDA weights folder holds {CONFIG_FILE} and "
                             f"{WEIGHTS_FILE}")
    for member in (CONFIG_FILE, WEIGHTS_FILE):
        if not (folder / member).is_file():
            raise WeightsError(f"{folder} is not an SDA weights folder: {member} is missing; write one with "
                               "`fakebench weights convert ORIGINAL.dat -o DIR`")
    try:
        meta = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WeightsError(f"{folder / CONFIG_FILE} is unreadable ({e}); convert the checkpoint again") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise WeightsError(f"{folder / CONFIG_FILE} is not an SDA config (format {FORMAT!r} expected)")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise WeightsError(f"{folder} was written by a newer fakebench (format version {meta['format_version']}); "
                           "upgrade fakebench")
    config = SDAConfig.from_json(meta)
    where = str(folder / WEIGHTS_FILE)
    obj = weights.load_checkpoint(folder / WEIGHTS_FILE, map_location="cpu")
    _check_parts_present(obj, where)
    parts = validate_parts(obj, config, where)
    return SDACheckpoint(config=config, **parts, source=str(meta.get("source") or folder.name),
                         sha256=meta.get("sha256"))


def convert(original_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
            half: bool = False) -> Path:
    """Check an original ``.dat`` strictly and write it as a fakebench folder at ``out_dir``; returns it."""
    return save_fakebench(load_original(original_path), out_dir, half=half)


def load_any(path: str | os.PathLike[str]) -> SDACheckpoint:
    """A folder is read as fakebench's format, a file as an original release file."""
    path = Path(path).expanduser()
    if path.is_dir():
        return load_fakebench(path)
    return load_original(path)


# ---------------------------------------------------------------------------------------------- search

def find_checkpoint(path: str | os.PathLike[str] | None = None) -> Path:
    """The SDA checkpoint to use: ``path`` when given, else the first found of sda_default (a fakebench
    folder ``sda-default``), grid.dat, crema.dat, timit.dat in ``$FAKEBENCH_WEIGHTS`` and the other places
    `fakebench.weights.locate` searches (after $FAKEBENCH_WEIGHTS, the checkpoint fakebench ships as package data).
    A found folder's files are checked (cheap); an original file's hash only when asked for. Raises
    WeightsError saying where it looked and how to get one.
    """
    if path is not None:
        explicit = Path(path).expanduser()
        if not explicit.exists():
            raise WeightsError(f"SDA checkpoint {explicit} does not exist. {_how_to_get()}")
        return explicit
    searched: list[Path] = []
    for name in SEARCH_ORDER:
        found = weights.locate(name, verify=weights.KNOWN_WEIGHTS[name].is_folder)
        searched += found.searched
        if found.found and found.path is not None:
            if not found.path.is_dir():
                weights.check_not_placeholder(found.path)  # an LFS pointer is an error, not a fallback
            if found.checksum == "mismatch":
                warnings.warn(f"{found.path}: {found.problem}; trying it anyway", stacklevel=2)
            return found.path
    looked = ", ".join(str(p) for p in searched) or f"nowhere: ${weights.ENV_VAR} is not set"
    raise WeightsError(f"no SDA generator weights found (looked in: {looked}). {_how_to_get()}")


def _how_to_get() -> str:
    env = f"${weights.ENV_VAR}"
    return (
        "Get weights one of two ways: (1) the original release: download the authors' grid.dat, timit.dat or "
        f"crema.dat ({weights.KNOWN_WEIGHTS['sda_grid'].source}), then run `fakebench weights convert grid.dat "
        f"-o {env}/sda-default` (or put the .dat file itself in {env}); or (2) train one with "
        "`fakebench train-generator DATA -o RUN` and pass RUN/checkpoints/step-N. The checkpoint fakebench ships as "
        "package data is always searched too (reinstall fakebench if it is missing). Or pass the checkpoint's path "
        "explicitly"
    )


def init_checkpoint(config: SDAConfig, *, seed: int = 0, random_statistics: bool = False,
                    source: str = "random initialisation") -> SDACheckpoint:
    """A checkpoint of freshly initialised networks (PyTorch's default init), for training or tests.

    ``random_statistics`` also draws BatchNorm running statistics and affine parameters (as after
    training), so that code folding BatchNorm into convolutions is exercised.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        nets = Networks.build(config)
        if random_statistics:
            for module in nets.modules().values():
                for bn in module.modules():
                    if isinstance(bn, torch.nn.modules.batchnorm._BatchNorm):
                        bn.running_mean.normal_(0.0, 0.1)
                        bn.running_var.uniform_(0.5, 2.0)
                        bn.weight.data.uniform_(0.8, 1.25)
                        bn.bias.data.normal_(0.0, 0.1)
    parts = {part: {k: v.detach().clone() for k, v in state.items()} for part, state in nets.state_dicts().items()}
    return SDACheckpoint(config=config, **parts, source=source, sha256=None)
