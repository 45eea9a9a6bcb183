"""``--device auto|cpu|cuda``: the one place a device name is checked and resolved."""

from __future__ import annotations

import re

from fakebench.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")
_CUDA = re.compile(r"^cuda(:\d+)?$")


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when CUDA is present, else ``"cpu"``; ``"cpu"``, ``"cuda"`` and ``"cuda:N"`` are
    checked and returned as given. A bad name, or CUDA asked for where there is none (or no GPU N), is a
    `ConfigError` naming ``--device``."""
    if not isinstance(device, str) or not (device in DEVICES or _CUDA.match(device)):
        raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
    if device == "cpu":
        return device
    import torch

    available = torch.cuda.is_available()
    if device == "auto":
        return "cuda" if available else "cpu"
    if not available:
        raise ConfigError(f"--device {device} was asked for but CUDA is not available here; use --device cpu or "
                          "auto")
    if ":" in device and int(device.split(":")[1]) >= torch.cuda.device_count():
        raise ConfigError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s); "
                          "use cuda:0 or auto")
    return device
