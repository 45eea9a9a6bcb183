"""Visual-only clips (no audio track, as in FaceForensics++- or Celeb-DF-style datasets): imported with
``has_audio`` false, or with a same-name audio file beside them as their audio; audio-driven steps skip them
with a reason (corpus build with --audio own, the sync metric) instead of failing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import FPS, gradient_frames, run, tone

from fakebench.corpus.importers import import_dataset
from fakebench.corpus.manifest import MANIFEST, corpus_info, load_corpus, read_meta
from fakebench.media import Clip, read_audio, read_clip, write_audio, write_clip

SR = 16000
N = 30  # 1.2 s: long enough for desync's 3-12 frame shifts


def _frames(seed: int) -> np.ndarray:
    """Gradient frames made distinct per clip (no two clips share bytes: that would be leakage)."""
    return np.roll(gradient_frames(N), 7 * seed, axis=2)


def _speech(seed: int) -> np.ndarray:
    """A tone whose loudness moves: speech enough for silence trimming and desync."""
    t = np.arange(int(N / FPS * SR)) / SR
    return (tone(N / FPS, SR) * (0.6 + 0.4 * np.sin(2 * np.pi * (2 + seed) * t))).astype(np.float32)


@pytest.fixture
def dataset(tmp_path) -> Path:
    """A `folder` dataset: alice's clip has no audio at all, bob's has none but a wav beside it, carol's has its
    own track."""
    src = tmp_path / "dataset"
    for who in ("alice", "bob", "carol"):
        (src / "real" / who).mkdir(parents=True)
    write_clip(src / "real" / "alice" / "silent.mp4", Clip(frames=_frames(0), fps=FPS, has_audio_track=False))
    write_clip(src / "real" / "bob" / "dub.mp4", Clip(frames=_frames(1), fps=FPS, has_audio_track=False))
    write_audio(src / "real" / "bob" / "dub.wav", _speech(1), SR)
    write_clip(src / "real" / "carol" / "talk.mp4", Clip(frames=_frames(2), fps=FPS, audio=_speech(2),
                                                         sample_rate=SR))
    return src


def test_a_clip_without_audio_imports_as_visual_only_and_a_wav_beside_one_is_its_audio(dataset, tmp_path):
    result = import_dataset("folder", dataset, tmp_path / "corpus")
    assert result.clips == 3 and result.skipped == []
    corpus = load_corpus(tmp_path / "corpus")
    m = corpus.manifest.set_index("clip_id")
    assert m["has_audio"].dtype == bool
    assert dict(m["has_audio"]) == {"real-alice-silent": False, "real-bob-dub": True, "real-carol-talk": True}

    silent = m.loc["real-alice-silent"]
    assert pd.isna(silent["audio_path"]) and pd.isna(silent["audio_source"]) and silent["sample_rate"] == 0
    assert silent["n_frames"] == N

    dub = m.loc["real-bob-dub"]  # the wav beside the track-less video, linked beside it in the corpus
    assert dub["audio_path"] == "media/bob/real-bob-dub.audio.wav" and dub["sample_rate"] == SR
    assert (tmp_path / "corpus" / dub["audio_path"]).resolve() == (dataset / "real" / "bob" / "dub.wav").resolve()
    assert pd.isna(m.loc["real-carol-talk", "audio_path"])  # its own track: nothing beside it is needed

    samples = {s.clip_id: s for s in corpus.samples()}
    wav, rate = read_audio(dataset / "real" / "bob" / "dub.wav")
    clip = samples["real-bob-dub"].clip  # the corpus clip carries the wav's audio
    assert clip.has_audio and clip.sample_rate == rate == SR
    np.testing.assert_array_equal(clip.audio, wav)
    np.testing.assert_allclose(clip.audio, _speech(1), atol=1e-4)  # the wav's content, 16-bit rounded
    assert not samples["real-alice-silent"].clip.has_audio_track
    assert corpus_info(corpus)["visual_only_clips"] == 1


def test_a_manifest_older_than_has_audio_reads_as_every_clip_having_audio(dataset, tmp_path):
    import_dataset("folder", dataset, tmp_path / "corpus")
    path = tmp_path / "corpus" / MANIFEST
    old = pd.read_parquet(path).drop(columns=["has_audio"])
    old.to_parquet(path, index=False)
    loaded = load_corpus(tmp_path / "corpus").manifest
    assert loaded["has_audio"].dtype == bool and loaded["has_audio"].all()
    assert list(loaded.columns).index("has_audio") == list(loaded.columns).index("source") + 1


@pytest.mark.slow  # end to end: the CLI, a corpus build, a face analysis
def test_build_skips_fakes_of_a_visual_only_clip_and_sync_skips_it(dataset, tmp_path, capsys):
    code, out, err = run(capsys, "corpus", "import", "folder", dataset, "-o", tmp_path / "corpus")
    assert code == 0, err
    assert "imported 3 clips" in out and "unreadable" not in err

    code, out, err = run(capsys, "corpus", "build", tmp_path / "corpus", "-o", tmp_path / "own", "--generator",
                         "desync", "--executor", "local")
    assert code == 0, err  # a skip is not a failure
    assert "visual-only" in err and "no audio track" in err
    m = load_corpus(tmp_path / "own").manifest.set_index("clip_id")
    assert sorted(m.index) == ["real-alice-silent", "real-bob-dub", "real-bob-dub.desync.0", "real-carol-talk",
                               "real-carol-talk.desync.0"]
    silent = m.loc["real-alice-silent"]  # the real clip itself is kept, whole and silent
    assert not silent["has_audio"] and silent["n_frames"] == N and silent["fakes_skipped"].startswith("no audio")
    assert not read_clip(tmp_path / "own" / silent["path"]).has_audio_track
    assert m.drop(index="real-alice-silent")["has_audio"].all()
    assert pd.isna(m.loc["real-carol-talk", "fakes_skipped"])
    assert read_clip(tmp_path / "own" / m.loc["real-bob-dub", "path"]).has_audio  # the wav, muxed in
    meta = read_meta(tmp_path / "own")
    assert meta["complete"] and meta["problems"] == []
    assert [s["item"] for s in meta["skipped"]] == ["real-alice-silent.desync.0"]
    assert "no audio track" in meta["skipped"][0]["reason"]
    code, out, _ = run(capsys, "corpus", "info", tmp_path / "own", "--json")
    info = json.loads(out)
    assert code == 0 and info["problems"] == [] and info["skipped"][0].startswith("real-alice-silent.desync.0")

    # with another clip's audio the visual-only clip gets its fake, and it never gives audio to another
    code, _, err = run(capsys, "corpus", "build", tmp_path / "corpus", "-o", tmp_path / "other", "--generator",
                       "desync", "--audio", "other", "--executor", "local")
    assert code == 0, err
    m = load_corpus(tmp_path / "other").manifest.set_index("clip_id")
    assert m.loc["real-alice-silent.desync.0", "audio_source"] in ("real-bob-dub", "real-carol-talk")
    assert m.loc["real-alice-silent.desync.0", "has_audio"]
    assert m.loc["real-bob-dub.desync.0", "audio_source"] == "real-carol-talk"
    assert m.loc["real-carol-talk.desync.0", "audio_source"] == "real-bob-dub"
    assert read_meta(tmp_path / "other")["skipped"] == []

    # the sync metric skips a clip without an audio track, with the reason, and exits 0
    code, out, err = run(capsys, "measure", dataset / "real" / "alice" / "silent.mp4", "--metrics", "sync",
                         "--json")
    assert code == 0, err
    row = json.loads(out.strip().splitlines()[-1])
    assert row["sync_skipped"] == "no audio track"
    assert not any(k == "error" or k.endswith("_error") for k in row) and "Traceback" not in err
