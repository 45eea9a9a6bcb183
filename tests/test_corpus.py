"""Corpora: manifest validation, identity-disjoint splits, silence trimming, the identity frame, and `corpus build`
end to end (local, pool killed with SIGKILL and resumed, Ray), on clips of the bundled photos made here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import assert_user_error, run  # the CLI helpers: in process, one-line user errors

from fakebench.corpus.build import BuildOptions, build_corpus, task_seed
from fakebench.corpus.importers import import_dataset
from fakebench.corpus.manifest import (
    CorpusError,
    assign_splits,
    corpus_info,
    load_corpus,
    make_manifest,
    parse_ratios,
    write_corpus,
)
from fakebench.errors import ConfigError
from fakebench.faces import choose_identity_frame
from fakebench.media import Clip, file_sha256, read_audio, read_clip, resample_audio, speech_bounds, write_clip

SR = 16000
LEAD_S, TAIL_S = 0.5, 0.3  # silence around the speech of the real clips made here


# ---------------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def real_corpus(tmp_path_factory) -> Path:
    """Two identities (the bundled photos) x two talking clips, 256x256 at 25 fps, imported as a corpus."""
    from fakebench.assets import load_photo
    from fakebench.corpus.demo import photo_crop as _photo_crop
    from fakebench.speech import synthesize
    from fakebench.synthetic import moving_photo

    root = tmp_path_factory.mktemp("real")
    for who in ("astronaut", "grace_hopper"):
        crop = _photo_crop(load_photo(who))
        for i, text in enumerate(["Place blue at F two now.", "Bin green by S nine."]):
            speech, sr, _ = synthesize(text, voice="en-us", rate_wpm=220)
            speech = resample_audio(speech, sr, SR)[: int(0.9 * SR)]
            audio = np.concatenate([np.zeros(int(LEAD_S * SR), np.float32), speech,
                                    np.zeros(int(TAIL_S * SR), np.float32)])
            n = int(round(audio.size / SR * 25))
            clip = moving_photo(crop, n_frames=n, size=(256, 256), audio=audio, sample_rate=SR, seed=i).clip
            write_clip(root / "dataset" / "real" / who / f"take{i}.mp4", clip)
    import_dataset("folder", root / "dataset", root / "corpus")
    return root / "corpus"


@pytest.fixture(scope="module")
def built(real_corpus, tmp_path_factory) -> Path:
    """The corpus built in this process from `real_corpus` with static, desync and warp (sda has no weights)."""
    out = tmp_path_factory.mktemp("built") / "fake"
    options = BuildOptions(generators=("sda", "static", "desync", "warp"), checkpoint="/nonexistent/sda.dat")
    result = build_corpus(real_corpus, out, options)
    assert result.skipped_generators.keys() == {"sda"}
    assert result.summary.failed == {}
    return out


def small_manifest(n: int = 4) -> pd.DataFrame:
    return make_manifest([{
        "clip_id": f"c{i}", "path": f"media/c{i}.mp4", "label": "real" if i % 2 else "fake", "generator": None,
        "identity": f"id{i // 2}", "source_clip": f"c{i}", "audio_source": f"c{i}", "split": "train", "fps": 25.0,
        "sample_rate": SR, "n_frames": 10, "duration_s": 0.4, "sha256": "0" * 64, "ground_truth": None,
        "source": "folder"} for i in range(n)])


def write_small_corpus(folder: Path, manifest: pd.DataFrame) -> None:
    for path in manifest["path"]:
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(b"x")
    write_corpus(folder, manifest, {"fingerprint": {"kind": "test"}})


# ---------------------------------------------------------------------------------------------- manifest

def test_manifest_round_trip_keeps_schema_order_and_types(tmp_path):
    manifest = small_manifest()
    write_small_corpus(tmp_path, manifest)
    loaded = load_corpus(tmp_path).manifest
    assert list(loaded.columns[:15]) == ["clip_id", "path", "label", "generator", "identity", "source_clip",
                                         "audio_source", "split", "fps", "sample_rate", "n_frames", "duration_s",
                                         "sha256", "ground_truth", "source"]
    pd.testing.assert_frame_equal(loaded, manifest)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda m: m.drop(columns=["identity", "sha256"]), "lacks the column(s) identity, sha256"),
    (lambda m: m.assign(clip_id=["c0", "c1", "c1", "c3"]), "1 duplicate clip id(s): c1"),
    (lambda m: m.assign(label=["real", "REAL", "fake", "deepfake"]), "2 row(s) with a bad label"),
    (lambda m: m.assign(split=["train", "dev", "test", "test"]), "unknown split (dev)"),
    (lambda m: m.assign(path=["/abs/c0.mp4", *m["path"][1:]]), "absolute paths"),
])
@pytest.mark.slow  # end to end: builds a corpus or drives the CLI
def test_hand_edited_manifests_are_refused_in_one_line(tmp_path, capsys, edit, message):
    write_small_corpus(tmp_path, small_manifest())
    edit(pd.read_parquet(tmp_path / "manifest.parquet")).to_parquet(tmp_path / "manifest.parquet")
    code, _, err = run(capsys, "corpus", "info", tmp_path)
    assert_user_error(code, "", err, message)


@pytest.mark.slow  # end to end: builds a corpus or drives the CLI
def test_missing_media_and_missing_manifest(tmp_path, capsys):
    write_small_corpus(tmp_path / "c", small_manifest())
    (tmp_path / "c" / "media" / "c2.mp4").unlink()
    code, _, err = run(capsys, "corpus", "info", tmp_path / "c")
    assert_user_error(code, "", err, "1 media file(s) listed in the manifest are missing (media/c2.mp4)")
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "corpus", "info", tmp_path / "empty")
    assert_user_error(code, "", err, "no manifest.parquet")


# ---------------------------------------------------------------------------------------------- splits

def test_splits_are_identity_disjoint_seeded_and_follow_the_ratios():
    rng = np.random.default_rng(0)
    identities = pd.Series([f"speaker{rng.integers(300)}" for _ in range(5000)])
    split = assign_splits(identities, seed=7)
    assert (pd.DataFrame({"i": identities, "s": split}).groupby("i")["s"].nunique() == 1).all()
    shares = split.value_counts(normalize=True)
    assert abs(shares["train"] - 0.8) < 0.03 and abs(shares["val"] - 0.1) < 0.03 and abs(shares["test"] - 0.1) < 0.03
    assert split.equals(assign_splits(identities, seed=7))
    assert not split.equals(assign_splits(identities, seed=8))
    # shuffling the rows changes nothing for any identity
    order = rng.permutation(len(identities))
    assert split[order].reset_index(drop=True).equals(assign_splits(identities[order], seed=7))
    two = assign_splits(pd.Series(["a", "a", "b"]), seed=0, ratios=parse_ratios("0.5,0,0.5"))
    assert sorted(set(two)) == ["test", "train"]


def test_bad_ratios():
    for text in ("0.8,0.2", "a,b,c", "-1,1,1", "0,0,0"):
        with pytest.raises(ConfigError, match="split ratios"):
            parse_ratios(text)
    assert parse_ratios("8,1,1") == pytest.approx((0.8, 0.1, 0.1))


# ---------------------------------------------------------------------------------------------- one clip

def test_speech_bounds_find_the_speech_in_silence():
    t = np.arange(int(2.0 * SR)) / SR
    audio = np.where((t >= 0.6) & (t < 1.3), 0.3 * np.sin(2 * np.pi * 180 * t), 0.0).astype(np.float32)
    audio += np.random.default_rng(0).normal(0, 1e-4, audio.size).astype(np.float32)  # -80 dBFS noise floor
    start, end = speech_bounds(audio, SR)
    assert start == pytest.approx(0.6, abs=0.011) and end == pytest.approx(1.3, abs=0.011)


@pytest.mark.slow  # end to end: builds a corpus or drives the CLI
def test_driving_audio_is_cut_like_its_clip_without_decoding_the_video(real_corpus, tmp_path):
    from fakebench.corpus.build import _absolute, read_trimmed, read_trimmed_audio
    from fakebench.media import write_audio

    corpus = load_corpus(real_corpus)
    for row in corpus.manifest.to_dict("records"):
        row = _absolute(row, real_corpus)
        clip, _ = read_trimmed(row)
        audio, sr = read_trimmed_audio(row)
        assert sr == clip.sample_rate and np.array_equal(audio, clip.audio)
        assert 0.9 * SR < audio.size < (0.9 + 2 * 0.12 + 0.1) * SR  # the speech and its pads, not LEAD_S/TAIL_S
        # a separate audio file (GRID, CREMA-D) is cut by the same rule
        wav = write_audio(tmp_path / f"{row['clip_id']}.wav", *read_audio(row["path"]))
        with_wav = {**row, "audio_path": str(wav)}
        assert np.array_equal(read_trimmed_audio(with_wav)[0], read_trimmed(with_wav)[0].audio)


@pytest.mark.slow  # end to end: builds a corpus or drives the CLI
def test_fakes_driven_by_another_clip_take_its_trimmed_audio(real_corpus, tmp_path):
    from fakebench.corpus.build import _absolute, read_trimmed

    options = BuildOptions(generators=("static",), audio="other-same-identity")
    result = build_corpus(real_corpus, tmp_path / "fake", options)
    assert result.summary.failed == {}
    m = load_corpus(tmp_path / "fake").manifest
    real_rows = {r["clip_id"]: _absolute(r, real_corpus) for r in load_corpus(real_corpus).manifest.to_dict("records")}
    fakes = m[m["label"] == "fake"]
    assert len(fakes) == 4
    for row in fakes.itertuples():
        assert row.audio_source != row.source_clip
        assert real_rows[row.audio_source]["identity"] == row.identity
        driving = read_trimmed(real_rows[row.audio_source])[0]
        assert row.n_frames == pytest.approx(driving.audio.size / SR * row.fps, abs=1)


def test_identity_frame_is_the_sharp_open_eyed_one(astronaut):
    from scipy.ndimage import gaussian_filter

    from fakebench.corpus.demo import photo_crop as _photo_crop

    crop = _photo_crop(astronaut)
    blurred = np.stack([gaussian_filter(crop, sigma=(2.5, 2.5, 0))] * 12).astype(np.uint8)
    frames = blurred.copy()
    frames[7] = crop
    index, frame, score = choose_identity_frame(Clip(frames=frames, fps=25.0))
    assert index == 7 and np.array_equal(frame, crop) and score > 0.5


# ---------------------------------------------------------------------------------------------- building

@pytest.mark.slow  # end to end: builds a corpus or drives the CLI
def test_build_makes_every_clip_with_inherited_identity_and_split(built, real_corpus):
    real = load_corpus(real_corpus).manifest.set_index("clip_id")
    m = load_corpus(built).manifest
    assert len(m) == 4 * 4 and m["clip_id"].is_unique
    assert m["generator"].fillna("real").value_counts().to_dict() == {"real": 4, "desync": 4, "static": 4, "warp": 4}
    for row in m.itertuples():
        source = real.loc[row.source_clip]
        assert (row.identity, row.split) == (source["identity"], source["split"])
        assert file_sha256(built / row.path) == row.sha256
        assert (row.label == "real") == pd.isna(row.generator) == pd.isna(row.ground_truth)
        if row.label == "fake":
            assert (built / row.ground_truth).is_file()
    info = corpus_info(load_corpus(built))
    assert info["labels"] == {"fake": 12, "real": 4}
    assert any("generator sda" in p and "does not exist" in p for p in info["problems"])
    assert info["reference_class"] == "real clips"


@pytest.mark.slow  # end to end: builds a corpus or drives the CLI
def test_real_and_fake_clips_start_and_end_with_the_same_silence(built):
    m = load_corpus(built).manifest
    for source, rows in m.groupby("source_clip"):
        bounds = {}
        for row in rows.itertuples():
            audio, sr = read_audio(built / row.path)
            start, end = speech_bounds(audio, sr)
            bounds[row.generator if isinstance(row.generator, str) else "real"] = (start, audio.size / sr - end)
        lead_real, tail_real = bounds.pop("real")
        # LEAD_S of silence was trimmed to the 0.12 s pad; then one end lost 3-12 frames (build.edge_cut)
        assert max(lead_real, tail_real) == pytest.approx(0.12, abs=0.05), source
        assert min(lead_real, tail_real) < 0.1, source
        for generator, (lead, tail) in bounds.items():
            if generator != "desync":  # desync moves the audio by design
                assert lead == pytest.approx(lead_real, abs=0.02) and tail == pytest.approx(tail_real, abs=0.05)


@pytest.mark.slow  # end to end: builds a corpus or drives the CLI
def test_same_seed_gives_an_identical_manifest(real_corpus, tmp_path):
    def build(folder: str, seed: int) -> pd.DataFrame:
        build_corpus(real_corpus, tmp_path / folder, BuildOptions(generators=("desync",), seed=seed))
        return load_corpus(tmp_path / folder).manifest

    first, again, other = build("a", 0), build("b", 0), build("c", 1)
    pd.testing.assert_frame_equal(first, again)
    fakes = first["label"] == "fake"
    assert (first.loc[fakes, "sha256"] != other.loc[fakes, "sha256"]).any()  # other shifts with another seed
    # the real clips are the same speech, their edge cut (3-12 frames at one end) drawn from the seed
    frames = first.loc[~fakes, "n_frames"].to_numpy() - other.loc[~fakes, "n_frames"].to_numpy()
    assert np.abs(frames).max() <= 9


@pytest.mark.slow  # end to end: builds a corpus or drives the CLI
def test_ray_build_gives_the_local_results(real_corpus, built, tmp_path):
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'fakebench[ray]')")
    out = tmp_path / "ray"
    result = build_corpus(real_corpus, out, BuildOptions(generators=("static", "desync")), executor="ray",
                          workers=2)
    assert result.summary.failed == {}
    on_ray = load_corpus(out).manifest
    local = load_corpus(built).manifest
    local = local[local["generator"].isna() | local["generator"].isin(["static", "desync"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(on_ray, local)


@pytest.mark.slow  # end to end: builds a corpus or drives the CLI
def test_build_bad_input_through_the_cli(real_corpus, built, tmp_path, capsys):
    code, _, err = run(capsys, "corpus", "build", real_corpus, "-o", built, "-g", "static")
    assert_user_error(code, "", err, "already holds a different corpus")
    code, _, err = run(capsys, "corpus", "build", tmp_path, "-o", tmp_path / "x", "-g", "static")
    assert_user_error(code, "", err, "is not a corpus")
    code, _, err = run(capsys, "corpus", "build", real_corpus, "-o", tmp_path / "x", "-g", "static,gan9")
    assert_user_error(code, "", err, "unknown generator(s) gan9")
    code, _, err = run(capsys, "corpus", "build", real_corpus, "-o", tmp_path / "x", "--audio", "mine")
    assert_user_error(code, "", err, "--audio must be one of own, other-same-identity, other")
    code, _, err = run(capsys, "corpus", "build", real_corpus, "-o", tmp_path / "x", "--per-clip", "0")
    assert_user_error(code, "", err, "--per-clip")
    code, _, err = run(capsys, "corpus", "build", real_corpus, "-o", tmp_path / "x", "--executor", "spark")
    assert_user_error(code, "", err, "unknown executor")


@pytest.mark.slow  # end to end: builds a corpus or drives the CLI
def test_a_clip_that_cannot_be_made_is_recorded_and_the_rest_go_on(tmp_path, real_corpus):
    dataset = real_corpus.parent / "dataset"
    for clip in dataset.glob("real/*/take0.mp4"):  # one clip per identity: no other clip of the same identity
        (tmp_path / "one" / clip.relative_to(dataset)).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "one" / clip.relative_to(dataset)).symlink_to(clip)
    import_dataset("folder", tmp_path / "one", tmp_path / "real")
    options = BuildOptions(generators=("desync",), audio="other-same-identity")
    result = build_corpus(tmp_path / "real", tmp_path / "fake", options)
    assert result.clips == 2 and len(result.summary.failed) == 2  # the two real clips are there, no fakes
    assert all("has no other clip to take audio from" in e for e in result.summary.failed.values())
    problems = corpus_info(load_corpus(tmp_path / "fake"))["problems"]
    assert sum("has no other clip" in p for p in problems) == 2
    result = build_corpus(tmp_path / "real", tmp_path / "fake", options)
    assert result.summary.done_before == 2 and len(result.summary.failed) == 2  # failures are retried


COUNTING_PLUGIN = textwrap.dedent("""
    import os
    import time

    from fakebench.generators.base import register
    from fakebench.generators.static import StaticGenerator


    @register("counting")
    class CountingGenerator(StaticGenerator):
        description = "static, logging each call's seed and taking its time"

        def generate(self, image, audio, sample_rate, *, seed=0):
            with open(os.environ["COUNT_FILE"], "a") as f:
                f.write(f"{seed}\\n")
            time.sleep(0.4)
            return super().generate(image, audio, sample_rate, seed=seed)
""")


@pytest.mark.slow  # end to end: builds a corpus or drives the CLI
def test_killed_build_resumes_without_redoing_or_corrupting(real_corpus, tmp_path):
    (tmp_path / "plugin").mkdir()
    (tmp_path / "plugin" / "countgen.py").write_text(COUNTING_PLUGIN)
    log = tmp_path / "calls.txt"
    out = tmp_path / "fake"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "plugin"), os.environ.get("PYTHONPATH", "")]),
           "COUNT_FILE": str(log)}
    script = "import sys, countgen; from fakebench.cli import main; sys.exit(main(sys.argv[1:]))"
    command = [sys.executable, "-c", script,
               "corpus", "build", str(real_corpus), "-o", str(out), "-g", "counting", "--per-clip", "2",
               "--workers", "2", "--executor", "pool"]
    fakes = [f"{c}.counting.{k}" for c in load_corpus(real_corpus).manifest["clip_id"] for k in range(2)]
    seed_of = {str(task_seed(0, f)): f for f in fakes}

    proc = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    done = out / ".build-state" / "done"
    deadline = time.monotonic() + 180
    while len(list(done.glob("*.counting.*.json"))) < 2:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the build made no progress"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the build, its forkserver and its workers: like a power cut
    proc.wait()
    finished = {p.stem for p in done.glob("*.counting.*.json")}
    calls_before = log.read_text().split()
    assert 2 <= len(finished) < len(fakes), "the kill did not land mid-way"
    assert not (out / "manifest.parquet").exists()

    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    calls_after = [seed_of[s] for s in log.read_text().split()[len(calls_before):]]
    assert not set(calls_after) & finished, "a finished clip was made again"
    assert sorted(calls_after) == sorted(set(fakes) - finished), "each unfinished clip is made exactly once"

    m = load_corpus(out).manifest
    assert m["clip_id"].is_unique and set(m["clip_id"][m["label"] == "fake"]) == set(fakes) and len(m) == 4 + 8
    for row in m.itertuples():
        assert file_sha256(out / row.path) == row.sha256
        assert read_clip(out / row.path).n_frames == row.n_frames
    assert not [p for p in (out / "media").rglob(".*")], "a temporary file was left behind"
    with pytest.raises(CorpusError, match="different corpus"):
        build_corpus(real_corpus, out, BuildOptions(generators=("static",)))


@pytest.mark.slow  # end to end: builds a corpus or drives the CLI
def test_demo_corpus_marks_its_synthetic_reference_class(tmp_path, capsys):
    from fakebench.corpus.demo import make_demo_corpus

    make_demo_corpus(tmp_path / "demo", clips_per_identity=1, generators=("static",), executor="local")
    m = load_corpus(tmp_path / "demo").manifest
    assert (m["source"] == "synthetic-reference").all() and set(m["identity"]) == {"astronaut", "grace_hopper"}
    assert m["generator"].fillna("real").value_counts().to_dict() == {"real": 2, "static": 2}
    reference = load_corpus(tmp_path / "demo" / "reference").manifest
    assert reference["voice"].nunique() == 2 and reference["text"].nunique() == 2
    assert reference["ground_truth"].notna().all()  # the reference clips are warp animations, with their truth
    assert (m.groupby("identity")["split"].nunique() == 1).all() and set(m["split"]) == {"train", "test"}
    code, out, _ = run(capsys, "corpus", "info", tmp_path / "demo")
    assert code == 0 and out.splitlines()[0].startswith("reference class: SYNTHETIC REFERENCE")


@pytest.mark.slow  # end to end: builds a corpus
def test_demo_corpus_with_emotions_gives_the_reference_class_emotions_too(tmp_path):
    """With --emotion the real (reference) clips show seeded emotions as the fakes do, so that an expression says
    nothing of the label; the corpus manifest keeps each real clip's emotion, and a generator without an emotion
    option (static) records none."""
    import json

    from fakebench.corpus.demo import make_demo_corpus
    from fakebench.speech import EMOTIONS

    make_demo_corpus(tmp_path / "demo", clips_per_identity=2, generators=("static",), executor="local",
                     emotion="random", seed=1)
    m = load_corpus(tmp_path / "demo").manifest
    real, static = m[m["label"] == "real"], m[m["generator"] == "static"]
    assert len(real) == 4 and real["emotion"].isin(EMOTIONS).all() and real["emotion_intensity"].notna().all()
    assert static["emotion"].isna().all()
    reference = load_corpus(tmp_path / "demo" / "reference").manifest.set_index("clip_id")
    assert real.set_index("clip_id")["emotion"].to_dict() == reference["emotion"].to_dict()
    for _, row in reference.iterrows():
        truth = json.loads((tmp_path / "demo" / "reference" / row["ground_truth"]).read_text())
        assert truth["emotion"] == row["emotion"] and truth["intensity"] == pytest.approx(row["emotion_intensity"])


@pytest.mark.slow  # end to end: builds a corpus or drives the CLI
def test_emotion_random_gives_each_warp_fake_a_recorded_seeded_emotion(real_corpus, tmp_path, capsys):
    import json

    from fakebench.corpus.build import EMOTION_INTENSITY, emotion_of
    from fakebench.speech import EMOTIONS

    dataset = real_corpus.parent / "dataset"
    for clip in dataset.glob("real/*/take0.mp4"):  # two clips: one per identity
        (tmp_path / "two" / clip.relative_to(dataset)).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "two" / clip.relative_to(dataset)).symlink_to(clip)
    import_dataset("folder", tmp_path / "two", tmp_path / "real")
    code, _, err = run(capsys, "corpus", "build", tmp_path / "real", "-o", tmp_path / "fake", "-g", "warp,desync",
                       "--emotion", "random", "--seed", "3", "--executor", "local")
    assert code == 0, err
    corpus = load_corpus(tmp_path / "fake")
    manifest = corpus.manifest.set_index("clip_id")
    is_warp = manifest["generator"].fillna("") == "warp"
    warp, others = manifest[is_warp], manifest[~is_warp]  # the real clips and desync's fakes (it has no emotion)
    assert len(warp) == 2 and len(others) == 4
    assert others["emotion"].isna().all() and others["emotion_intensity"].isna().all()
    options = BuildOptions(generators=("warp", "desync"), seed=3, emotion="random")
    for clip_id, row in warp.iterrows():
        assert row["emotion"] in EMOTIONS
        assert EMOTION_INTENSITY[0] <= row["emotion_intensity"] <= EMOTION_INTENSITY[1]
        # the same seed draws the same emotion; the fake's ground truth has it
        assert emotion_of("warp", options, task_seed(3, clip_id)) == (row["emotion"], row["emotion_intensity"])
        truth = json.loads((corpus.folder / row["ground_truth"]).read_text())
        assert (truth["emotion"], truth["intensity"]) == (row["emotion"], pytest.approx(row["emotion_intensity"]))
    assert emotion_of("desync", options, 1) == (None, None)
    draws = {emotion_of("warp", options, seed)[0] for seed in range(200)}
    assert draws == set(EMOTIONS)  # uniform over the seven
    assert emotion_of("warp", BuildOptions(generators=("warp",), emotion="sad"), 5) == ("sad", 0.6)
    assert "emotion" not in BuildOptions(generators=("warp",)).fingerprint()  # corpora made before keep theirs
    assert BuildOptions(generators=("warp",), emotion="sad").fingerprint()["emotion"] == "sad"

    code, _, err = run(capsys, "corpus", "build", tmp_path / "real", "-o", tmp_path / "x", "-g", "warp",
                       "--emotion", "bored")
    assert_user_error(code, "", err, "--emotion must be random or one of neutral, happy", "'bored'")
