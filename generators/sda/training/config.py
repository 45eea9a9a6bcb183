"""The configuration of a training run: model sizes, data, loss weights, optimiser; read from YAML.

Every field has a value in the bundled configs (``configs/sda-small.yaml``, ``configs/sda-paper.yaml``);
a user file may give only the fields it changes, the rest come from ``sda-small``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fakebench.errors import ConfigError, FakebenchError, WeightsError
from fakebench.io import write_text_atomic

from ..config import SDAConfig

CONFIG_DIR = Path(__file__).parent / "configs"
BUILTIN = ("sda-small", "sda-paper", "sda-expressive")


@dataclass(frozen=True)
class ModelConfig:
    img_size: tuple[int, int] = (128, 96)
    audio_rate: int = 16000
    video_rate: int = 25
    audio_feat_len: float = 0.2
    base_channels: int = 64
    id_enc_dim: int = 128
    aud_enc_dim: int = 256
    rnn_gen_dim: int = 256
    aux_latent: int = 10
    output: str = "rgb"  # fakebench's "masked" blends the drawn colour with the still frame (SDAConfig)
    emotions: tuple[str, ...] = ()  # emotion conditioning (fakebench's): the emotions, besides neutral
    emotion_dim: int = 0

    def sda_config(self) -> SDAConfig:
        from fakebench.faces import default_template

        return SDAConfig(mean_face=default_template(self.img_size), img_size=self.img_size,
                         audio_rate=self.audio_rate, video_rate=self.video_rate, audio_feat_len=self.audio_feat_len,
                         audio_feat_samples=round(self.audio_feat_len * self.audio_rate), id_enc_dim=self.id_enc_dim,
                         rnn_gen_dim=self.rnn_gen_dim, aud_enc_dim=self.aud_enc_dim, aux_latent=self.aux_latent,
                         base_channels=self.base_channels, output=self.output, emotions=self.emotions,
                         emotion_dim=self.emotion_dim)


@dataclass(frozen=True)
class DataConfig:
    sequence_frames: int = 16  # frames per training sequence
    batch_size: int = 2  # sequences per step
    val_clips: int = 2  # clips held out for validation (the last ones in sorted order)
    val_frames: int = 75  # frames of each validation clip that are generated
    sync_frames: int = 5  # video frames the sync discriminator sees (0.2 s at 25 fps)
    min_offsync_frames: int = 5  # off-sync audio lies at least this many frames away


@dataclass(frozen=True)
class LossConfig:
    l1: float = 600.0
    frame: float = 1.0
    sequence: float = 0.2
    sync: float = 0.8
    l1_upper_face: float = 0.0  # weight of the upper half of the face in L1 (the lower half has weight 1)


@dataclass(frozen=True)
class DiscriminatorConfig:
    base_channels: int = 64
    audio_dim: int = 256  # audio code of the sequence and sync discriminators
    sync_dim: int = 256  # embedding size of the sync discriminator
    sequence_downsample: int = 1  # the sequence discriminator sees frames average-pooled by this factor


@dataclass(frozen=True)
class OptimConfig:
    generator_lr: float = 1e-4
    frame_lr: float = 1e-4
    sequence_lr: float = 1e-5
    sync_lr: float = 1e-5
    betas: tuple[float, float] = (0.5, 0.999)
    lr_decay: float = 0.9  # every learning rate is multiplied by this every `lr_decay_every` steps
    lr_decay_every: int = 20000


@dataclass(frozen=True)
class ScheduleConfig:
    steps: int = 100000
    checkpoint_every: int = 500
    log_every: int = 10


@dataclass(frozen=True)
class TrainConfig:
    name: str = "custom"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    discriminators: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    notes: dict[str, str] = field(default_factory=dict)  # the choices the spec leaves open, in words

    def __post_init__(self) -> None:
        try:
            self.model.sda_config()  # raises on sizes the networks cannot be built for
        except WeightsError as e:
            raise ConfigError(f"model: {e.one_line()}") from None
        d = self.data
        if min(d.sequence_frames, d.batch_size, d.val_frames, d.sync_frames, d.min_offsync_frames) < 1:
            raise ConfigError("data: sequence_frames, batch_size, val_frames, sync_frames and min_offsync_frames "
                              "must be at least 1")
        if d.sync_frames > d.sequence_frames:
            raise ConfigError(f"data.sync_frames ({d.sync_frames}) must not exceed data.sequence_frames "
                              f"({d.sequence_frames})")
        if d.val_clips < 0:
            raise ConfigError(f"data.val_clips must be 0 or more, got {d.val_clips}")
        if self.discriminators.sequence_downsample not in (1, 2, 4):
            raise ConfigError("discriminators.sequence_downsample must be 1, 2 or 4")
        if min(self.schedule.steps, self.schedule.checkpoint_every, self.schedule.log_every) < 1:
            raise ConfigError("schedule: steps, checkpoint_every and log_every must be at least 1")
        if self.optim.lr_decay_every < 1 or not 0 < self.optim.lr_decay <= 1:
            raise ConfigError("optim: lr_decay must be in (0, 1] and lr_decay_every at least 1")
        if min(dataclasses.astuple(self.loss)) < 0:
            raise ConfigError("loss weights must not be negative")

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    def replace(self, **sections: dict[str, Any]) -> TrainConfig:
        """A copy with some fields of some sections changed: ``cfg.replace(schedule={"steps": 10})``."""
        return from_dict(_merge(self.to_dict(), sections), "the changed config")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


_SECTIONS = {"model": ModelConfig, "data": DataConfig, "loss": LossConfig, "discriminators": DiscriminatorConfig,
             "optim": OptimConfig, "schedule": ScheduleConfig}


def from_dict(data: Any, where: str) -> TrainConfig:
    """A TrainConfig from plain data; unknown or mistyped fields raise ConfigError naming them."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must hold a mapping of sections ({', '.join(_SECTIONS)}), "
                          f"found {type(data).__name__}")
    unknown = sorted(set(data) - set(_SECTIONS) - {"name", "notes"})
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {', '.join(unknown)}; known: name, notes, "
                          f"{', '.join(_SECTIONS)}")
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        sections[name] = _section(cls, data.get(name) or {}, f"{where}: {name}")
    notes = data.get("notes") or {}
    if not isinstance(notes, dict):
        raise ConfigError(f"{where}: notes must be a mapping of names to text")
    try:
        return TrainConfig(name=str(data.get("name", "custom")), notes={str(k): str(v) for k, v in notes.items()},
                           **sections)
    except FakebenchError as e:
        if isinstance(e, ConfigError):
            raise ConfigError(f"{where}: {e}") from None
        raise ConfigError(f"{where}: the model sizes are not buildable ({e})") from None


def _section(cls: type, values: Any, where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a mapping, found {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    kwargs = {}
    for key, value in values.items():
        default = getattr(cls(), key)
        kwargs[key] = _coerce(value, default, f"{where}.{key}")
    return cls(**kwargs)


def _coerce(value: Any, like: Any, where: str) -> Any:
    if like == ():  # a list of names (model.emotions)
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of names, got {value!r}")
        return tuple(value)
    if isinstance(like, tuple):
        if not isinstance(value, list | tuple) or len(value) != len(like):
            raise ConfigError(f"{where} must be a list of {len(like)} numbers, got {value!r}")
        return tuple(_coerce(v, e, where) for v, e in zip(value, like, strict=True))
    if isinstance(like, bool) or isinstance(value, bool):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if isinstance(like, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number, got {value!r}")
        return value
    if isinstance(like, float):
        if not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    return value


def load_config(name_or_path: str | os.PathLike[str]) -> TrainConfig:
    """A built-in config (`BUILTIN`) or a YAML file; missing fields are taken from ``sda-small`` (``sda-paper``
    gives every field)."""
    text = str(name_or_path)
    if text in BUILTIN:
        path = CONFIG_DIR / f"{text}.yaml"
        data = _read_yaml(path)
        if text != "sda-paper":
            data = _merge(_read_yaml(CONFIG_DIR / "sda-small.yaml"), data)
        return from_dict(data, str(path))
    path = Path(text).expanduser()
    if not path.is_file():
        raise ConfigError(f"config {text!r} is neither a built-in config ({', '.join(BUILTIN)}) nor a file")
    data = _read_yaml(path)
    if isinstance(data, dict):
        data = _merge({**_read_yaml(CONFIG_DIR / "sda-small.yaml"), "name": path.stem}, data)
    return from_dict(data, str(path))


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config {path} ({e})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config {path} is not valid YAML ({' '.join(str(e).split())})") from None


def save_config(config: TrainConfig, path: Path) -> None:
    import yaml

    write_text_atomic(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
