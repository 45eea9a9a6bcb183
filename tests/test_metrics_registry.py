"""The metrics registry: every metric module registers its metrics, with its contract as data."""

from __future__ import annotations

import pytest

from fakebench.errors import ConfigError
from fakebench.metrics import registry


def test_every_metric_is_registered_per_clip_or_per_set():
    clip, per_set = registry.available("clip"), registry.available("set")
    assert list(clip) == ["sync", "blink", "identity", "quality", "expression"]
    assert list(per_set) == ["fid", "kid", "fd_dlib", "identity"]
    assert all(s.per == "clip" for s in clip.values()) and all(s.per == "set" for s in per_set.values())
    assert clip["identity"].needs_reference and clip["quality"].reference == "optional"
    assert not clip["sync"].needs_reference and "syncnet_v2" in clip["sync"].weights
    # a corpus run gives fakes their source clip as the reference, except to expression (real clips have none)
    assert clip["identity"].source_reference and clip["quality"].source_reference
    assert not clip["expression"].source_reference
    assert per_set["fid"].weights == ("inception_fid",) and "fid" in per_set["fid"].keys
    # FID, KID and fd_dlib share one function (one pass over the Inception features); identity has its own
    assert per_set["fid"].fn is per_set["kid"].fn is per_set["fd_dlib"].fn is not per_set["identity"].fn
    for spec in [*clip.values(), *per_set.values()]:
        assert spec.description and spec.fn.__module__.startswith("fakebench.metrics.")
    from fakebench.weights import KNOWN_WEIGHTS

    assert {w for s in [*clip.values(), *per_set.values()] for w in s.weights} <= set(KNOWN_WEIGHTS)


def test_unknown_metric_is_a_config_error_listing_the_choices():
    with pytest.raises(ConfigError, match="choose from sync, blink, identity, quality"):
        registry.parse_metrics("sync,nope", "clip")
    with pytest.raises(ConfigError, match="choose from fid, kid, fd_dlib, identity"):
        registry.get_metric("sync", "set")
    with pytest.raises(ConfigError, match="none given"):
        registry.parse_metrics(" , ", "clip")
    assert registry.parse_metrics("blink, sync,blink", "clip") == ["blink", "sync"]


def test_registering_a_metric_and_the_help_text(monkeypatch):
    registry.available("clip")  # the built-ins registered first
    monkeypatch.setattr(registry.CLIP_METRICS, "_entries", dict(registry.CLIP_METRICS._entries))

    @registry.register_metric("mouth_width", per="clip", keys=("mouth_width",), description="mean mouth width")
    def mouth_width(sample, ctx):
        return {"mouth_width": 1.0}

    assert registry.get_metric("mouth_width", "clip").fn is mouth_width
    assert "mouth_width: mean mouth width. Keys: mouth_width." in registry.describe("clip")
    assert "Needs --reference" in registry.describe("clip")
    with pytest.raises(ValueError, match="registered twice"):
        registry.register_metric("mouth_width", per="clip")(lambda sample, ctx: {})
    with pytest.raises(ValueError, match="per must be"):
        registry.register_metric("x", per="frame")  # type: ignore[arg-type]
