"""fakebench.devices.resolve_device."""

from __future__ import annotations

import pytest
import torch

from fakebench.devices import resolve_device
from fakebench.errors import ConfigError


def test_cpu_and_auto(monkeypatch):
    assert resolve_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"


@pytest.mark.parametrize("bad", ["gpu", "CUDA", "cuda:", "cuda:x", "mps", "", None, 0])
def test_bad_names_are_config_errors_naming_the_flag(bad):
    with pytest.raises(ConfigError, match="--device must be auto, cpu, cuda"):
        resolve_device(bad)


def test_cuda_without_cuda_says_what_to_do(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:0"):
        with pytest.raises(ConfigError, match="CUDA is not available.*--device cpu"):
            resolve_device(device)


def test_cuda_index_is_checked(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda") == "cuda"
    assert resolve_device("cuda:0") == "cuda:0"
    with pytest.raises(ConfigError, match="1 CUDA device"):
        resolve_device("cuda:1")
