"""Metrics by name: each metric module registers its own with `register_metric`; nothing else knows them by name.

A metric declares its contract as data (`MetricSpec`): whether it is computed per clip or per set, whether it
needs a reference (the source photo or clip), which model weights it may use (names in
`fakebench.weights.KNOWN_WEIGHTS`), the keys it writes and a one-line description. The command line builds its
``--metrics`` choices and help from here, and `fakebench.metrics.measure` runs whatever is asked for.

- Per clip: ``fn(sample, ctx) -> dict``: a `fakebench.samples.Sample` (its clip and face track from one
  decode) and a `MetricContext` (reference, weights, device); a flat dict of values.
- Per set: ``fn(real, fake, names, ctx) -> dict``: each side a list of (Clip, FaceTrack) pairs (clips reduced to
  their sampled face frames) or of images. Metrics registered with the same function are computed in one call
  (FID and KID share their Inception features), ``names`` saying which of them were asked for.

Two `fakebench.registry.Registry` instances hold them (`CLIP_METRICS`, `SET_METRICS`: a name is unique per
kind, and "identity" exists as both). The built-in metric modules are imported on first use: they import torch,
which the command line does not pay for until a metric runs or its help is shown.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from fakebench.errors import ConfigError
from fakebench.registry import Registry

if TYPE_CHECKING:
    import numpy as np

    from fakebench.samples import Sample

Per = Literal["clip", "set"]
ReferenceUse = Literal["none", "optional", "required"]

# In this order (the order of the choices in --help): per clip sync, blink, identity, quality, expression; per set
# fid, kid, fd_dlib, identity.
BUILTIN_MODULES = ("fakebench.metrics.sync", "fakebench.metrics.blink", "fakebench.metrics.fid",
                   "fakebench.metrics.identity", "fakebench.metrics.quality", "fakebench.metrics.expression")


@dataclass(frozen=True)
class MetricSpec:
    name: str
    fn: Callable[..., dict]
    per: Per
    reference: ReferenceUse = "none"  # "optional": used when given (quality's PSNR/SSIM against a clip)
    weights: tuple[str, ...] = ()  # KNOWN_WEIGHTS names the metric uses when they are found
    keys: tuple[str, ...] = ()  # the main keys it writes (more may follow: *_skipped, *_model, notes)
    description: str = ""
    # A corpus run measures each fake against its real source clip; False: every clip, real or fake, without a
    # reference, where a source-clip reference would make the groups incomparable (real clips have none)
    source_reference: bool = True

    @property
    def needs_reference(self) -> bool:
        return self.reference == "required"

    @property
    def registry_key(self) -> str:
        """Two registrations of one metric are the same when they name the same function."""
        return f"{self.per}:{self.fn.__module__}.{self.fn.__qualname__}"


@dataclass(frozen=True)
class Reference:
    """What a clip is compared with: a still photo, or a clip (as a Sample: its clip and track)."""

    path: str
    photo: np.ndarray | None = None
    sample: Sample | None = None

    @property
    def is_photo(self) -> bool:
        return self.photo is not None

    def for_identity(self) -> Any:
        """The photo, or (clip, track): what `identity_metrics` takes as its reference."""
        return self.photo if self.is_photo else (self.sample.clip, self.sample.track)


@dataclass(frozen=True)
class MetricContext:
    """Everything a metric may need besides its input: the reference, weights paths by name, options."""

    reference: Reference | None = None
    weights: Mapping[str, str | os.PathLike | None] = field(default_factory=dict)
    device: str | None = None  # None: each metric's own default
    frames_per_clip: int = 8
    crop: str = "face"
    seed: int = 0
    # What a set metric may keep between calls on the same real set (`compare_sets` against several fake sets):
    # the real side's sampled frames and features are then computed once.
    shared: dict = field(default_factory=dict)

    def weight(self, name: str) -> str | os.PathLike | None:
        """The explicit path given for a weights file, or None (then the metric searches as `find_weight` does)."""
        return self.weights.get(name)


_NOT_METRIC_MODULES = ("registry", "measure", "syncnet")
CLIP_METRICS = Registry("clip metric", "fakebench.metrics", skip=_NOT_METRIC_MODULES)
SET_METRICS = Registry("set metric", "fakebench.metrics", skip=_NOT_METRIC_MODULES)


def _registry(per: Per) -> Registry:
    if per not in ("clip", "set"):
        raise ValueError(f"per must be 'clip' or 'set', got {per!r}")
    return CLIP_METRICS if per == "clip" else SET_METRICS


def register_metric(name: str, *, per: Per, reference: ReferenceUse = "none", weights: Sequence[str] = (),
                    keys: Sequence[str] = (), description: str = "",
                    source_reference: bool = True) -> Callable[[Callable], Callable]:
    """Decorator: register ``fn`` as metric ``name`` (per clip or per set). A name is unique per kind."""
    registry = _registry(per)

    def decorate(fn: Callable) -> Callable:
        registry.register(name)(MetricSpec(name=name, fn=fn, per=per, reference=reference, weights=tuple(weights),
                                           keys=tuple(keys), description=description,
                                           source_reference=source_reference))
        return fn

    return decorate


def available(per: Per) -> dict[str, MetricSpec]:
    """The registered metrics of one kind, by name: the built-ins in `BUILTIN_MODULES` order, then the others,
    each module's in registration order (whatever order the modules happened to be imported in)."""
    specs = list(_registry(per).registered().values())
    order = {m: i for i, m in enumerate(BUILTIN_MODULES)}
    ranked = sorted(enumerate(specs), key=lambda e: (order.get(e[1].fn.__module__, len(order)), e[0]))
    return {spec.name: spec for _, spec in ranked}


def get_metric(name: str, per: Per) -> MetricSpec:
    specs = available(per)
    if name not in specs:
        raise ConfigError(f"unknown {per} metric {name!r}; choose from {', '.join(specs)}")
    return specs[name]


def parse_metrics(text: str | Sequence[str], per: Per) -> list[str]:
    """Comma-separated names (or a list) -> the names, each checked; ConfigError lists the choices."""
    names = [m.strip() for m in (text.split(",") if isinstance(text, str) else text) if m.strip()]
    allowed = available(per)
    unknown = [m for m in names if m not in allowed]
    if unknown or not names:
        raise ConfigError(f"unknown metric(s) {', '.join(unknown) or '(none given)'}; choose from "
                          f"{', '.join(allowed)}")
    return list(dict.fromkeys(names))


def describe(per: Per) -> str:
    """One line per metric: name, what it gives, what it needs; for ``--help``."""
    lines = []
    for spec in available(per).values():
        needs = {"required": " Needs --reference.", "optional": " Uses --reference when given."}.get(
            spec.reference, "")
        keys = f" Keys: {', '.join(spec.keys)}." if spec.keys else ""
        lines.append(f"{spec.name}: {spec.description}.{keys}{needs}")
    return "\n\n".join(lines)
