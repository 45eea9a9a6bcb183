"""Sample: a clip and its face track from ONE decode of the file (container opens counted), from paths or a corpus."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from fakebench.faces import analyze, photo_face
from fakebench.media import Clip, write_clip
from fakebench.samples import Sample, samples_from_paths
from fakebench.synthetic import moving_photo


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory, astronaut) -> Path:
    """A 12-frame moving photo of a face with a tone as audio."""
    face = photo_face(astronaut)
    moving = moving_photo(astronaut, n_frames=12, size=(160, 160), centre=tuple(face.landmarks.mean(0)), zoom=0.7,
                          seed=3)
    t = np.arange(int(16000 * 12 / 25)) / 16000
    clip = Clip(frames=moving.clip.frames, fps=25.0, audio=(0.2 * np.sin(2 * np.pi * 200 * t)).astype(np.float32),
                sample_rate=16000)
    return write_clip(tmp_path_factory.mktemp("samples") / "face.mp4", clip)


@pytest.fixture
def opens(monkeypatch) -> dict[str, int]:
    """Counts `av.open` calls per file name (every container fakebench opens goes through it)."""
    counts: dict[str, int] = {}
    real_open = av.open

    def spy(file, *args, **kwargs):
        counts[Path(str(file)).name] = counts.get(Path(str(file)).name, 0) + 1
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(av, "open", spy)
    return counts


def test_cold_measure_opens_and_decodes_the_clip_once(clip_file, opens, monkeypatch, tmp_path):
    from fakebench.metrics.measure import measure_clips

    monkeypatch.setenv("FAKEBENCH_CACHE", str(tmp_path / "cache"))  # cold
    (row,) = measure_clips([clip_file], ["blink", "quality"])
    assert opens == {"face.mp4": 1}
    assert row["frames"] == 12 and row["face_frames"] >= 10 and "blink_count" in row and row["cpbd"] > 0
    assert not any(k.endswith("error") for k in row)

    opens.clear()  # warm: the track comes from the cache, the clip is still decoded once for the metrics
    (again,) = measure_clips([clip_file], ["blink", "quality"])
    assert opens == {"face.mp4": 1}
    assert again == row


def test_sample_track_is_the_file_analysis_and_warm_track_needs_no_decoding(clip_file, opens, monkeypatch,
                                                                             tmp_path):
    monkeypatch.setenv("FAKEBENCH_CACHE", str(tmp_path / "cache"))
    sample = Sample.from_path(clip_file, label="real")
    track = sample.track
    assert sample.track is track and sample.clip is sample.clip  # lazy, computed once, kept
    assert track.meta["cache_hit"] is False and track.meta["source"] == str(clip_file)
    assert opens == {"face.mp4": 1}
    # the same cache entry as analyze(path): one decode and analyze(path) agree exactly
    from_file = analyze(clip_file)
    assert from_file.meta["cache_hit"] is True
    np.testing.assert_array_equal(from_file.landmarks, track.landmarks)
    assert track.meta["media"]["has_audio"] and track.meta["media"]["sample_rate"] == 16000

    opens.clear()
    fresh = Sample.from_path(clip_file)
    assert fresh.track.meta["cache_hit"] is True and not fresh.is_loaded
    assert opens == {}  # a cached track needs no container at all


def test_samples_from_paths_and_from_clip(clip_file, tmp_path):
    (s,) = samples_from_paths([clip_file], label="fake", identity="astronaut")
    assert (s.clip_id, s.label, s.identity, s.path) == ("face", "fake", "astronaut", Path(clip_file))
    mem = Sample.from_clip(s.clip, clip_id="mem")
    assert mem.path is None and mem.content_key is None and mem.track.n_frames == 12
    np.testing.assert_array_equal(mem.track.landmarks, s.track.landmarks)


def test_corpus_samples_carry_the_manifest(clip_file, tmp_path):
    import shutil

    from fakebench.corpus.manifest import load_corpus, make_manifest, write_corpus

    folder = tmp_path / "corpus"
    (folder / "media").mkdir(parents=True)
    rows = []
    for i, (label, identity, split) in enumerate([("real", "ann", "train"), ("fake", "ann", "train"),
                                                  ("real", "bob", "test")]):
        shutil.copy(clip_file, folder / "media" / f"c{i}.mp4")
        rows.append({"clip_id": f"c{i}", "path": f"media/c{i}.mp4", "label": label, "generator": "warp",
                     "identity": identity, "split": split, "fps": 25.0, "sample_rate": 16000, "n_frames": 12,
                     "duration_s": 0.48, "sha256": "0" * 64})
    write_corpus(folder, make_manifest(rows), {})
    corpus = load_corpus(folder)
    train = corpus.samples(split="train")
    assert [(s.clip_id, s.label, s.identity, s.split) for s in train] == [("c0", "real", "ann", "train"),
                                                                          ("c1", "fake", "ann", "train")]
    assert train[0].path == folder / "media" / "c0.mp4" and train[1].meta["generator"] == "warp"
    assert [s.clip_id for s in corpus.samples(label="real")] == ["c0", "c2"]
    assert [s.clip_id for s in corpus.samples(split="test", label="fake")] == []
    assert train[0].clip.n_frames == 12


def test_release_with_track_forgets_a_files_track_but_keeps_a_given_one(tmp_path, astronaut):
    from fakebench.generators.base import create
    from fakebench.media import write_clip
    from fakebench.samples import Sample

    audio = (0.1 * np.sin(np.linspace(0, 400, 16000))).astype(np.float32)
    made = create("static", max_side=128).generate(np.ascontiguousarray(astronaut[20:276, 100:356]), audio, 16000)
    write_clip(tmp_path / "c.mp4", made.clip)
    sample = Sample.from_path(tmp_path / "c.mp4")
    first = sample.track.landmarks.copy()
    sample.release(track=True)
    assert not sample.is_loaded and not sample.has_track
    assert np.array_equal(sample.track.landmarks, first)  # back from the analysis cache
    given = Sample.from_clip(made.clip, track=sample.track)
    given.release(track=True)
    assert given.has_track  # nothing to get it back from: kept
