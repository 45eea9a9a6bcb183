"""Importers on miniature trees in each dataset's real layout: identities, labels, columns, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import assert_user_error, run  # the CLI helpers: in process, one-line user errors

from fakebench.corpus.importers import LayoutError, import_dataset
from fakebench.corpus.manifest import corpus_info, load_corpus
from fakebench.media import Clip, write_audio, write_clip


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """Tiny files to copy into the trees: a clip with sound, one without, a wav, and a damaged 'video'."""
    folder = tmp_path_factory.mktemp("media")
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(5120) / 16000)).astype(np.float32)
    write_clip(folder / "talk.mp4", Clip(frames=frames, fps=25.0, audio=tone, sample_rate=16000))
    write_clip(folder / "mute.mp4", Clip(frames=frames, fps=25.0, has_audio_track=False))
    write_audio(folder / "speech.wav", tone, 16000)
    (folder / "damaged.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    return {p.stem: p for p in folder.iterdir()}


def put(media: dict[str, Path], kind: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(media[kind], target)


def manifest_of(folder: Path) -> pd.DataFrame:
    return load_corpus(folder).manifest.set_index("clip_id")


def assert_identity_disjoint(frame: pd.DataFrame) -> None:
    assert (frame.groupby("identity")["split"].nunique() == 1).all()


@pytest.mark.slow
def test_grid_speakers_with_separate_audio(tmp_path, media, capsys):
    src = tmp_path / "GRID"
    for speaker, sentence in [("s1", "bbaf2n"), ("s1", "bbaf3s"), ("s2", "lgaz8p"), ("s12", "pwij3p")]:
        put(media, "mute", src / "video" / speaker / f"{sentence}.mpg")
        put(media, "speech", src / "audio" / speaker / f"{sentence}.wav")
    put(media, "damaged", src / "video" / "s2" / "broken.mpg")
    code, out, err = run(capsys, "corpus", "import", "grid", src, "-o", tmp_path / "corpus")
    assert code == 1, err  # done, with one item failed
    assert "imported 4 clips" in out and "1 unreadable clip(s) skipped" in err
    m = manifest_of(tmp_path / "corpus")
    assert sorted(m.index) == ["grid-s1-bbaf2n", "grid-s1-bbaf3s", "grid-s12-pwij3p", "grid-s2-lgaz8p"]
    assert m.loc["grid-s1-bbaf3s", "identity"] == "grid-s1" and m.loc["grid-s12-pwij3p", "identity"] == "grid-s12"
    assert (m["label"] == "real").all() and (m["source"] == "grid").all()
    assert m.loc["grid-s2-lgaz8p", "audio_path"] == "media/grid-s2/grid-s2-lgaz8p.audio.wav"
    assert (m["sample_rate"] == 16000).all() and (m["n_frames"] == 8).all() and (m["fps"] == 25.0).all()
    assert (tmp_path / "corpus" / m.loc["grid-s1-bbaf2n", "path"]).is_symlink()  # --link is the default
    assert_identity_disjoint(m)
    info = corpus_info(load_corpus(tmp_path / "corpus"))
    assert "broken.mpg" in info["problems"][0]
    # every speaker's clips here are copies of one tiny file: the same bytes under several identities
    assert len(info["problems"]) == 2 and info["problems"][1].startswith("byte-identical clips under different "
                                                                        "identities or splits (leakage)")
    code, out, _ = run(capsys, "corpus", "info", tmp_path / "corpus")
    assert code == 1 and "2 problem(s)" in out and "broken.mpg" in out.replace("\n", "")  # rich wraps lines


def test_crema_d_names_give_actor_sentence_emotion_level(tmp_path, media):
    src = tmp_path / "CREMA-D"
    for name in ("1001_DFA_ANG_XX", "1001_IEO_HAP_HI", "1002_TIE_SAD_LO"):
        put(media, "mute", src / "VideoMP4" / f"{name}.mp4")
        put(media, "speech", src / "AudioWAV" / f"{name}.wav")
    put(media, "talk", src / "VideoMP4" / "README_clip.mp4")  # not a CREMA-D name: ignored
    import_dataset("crema-d", src, tmp_path / "corpus", mode="copy")
    m = manifest_of(tmp_path / "corpus")
    assert sorted(m.index) == ["crema-1001_DFA_ANG_XX", "crema-1001_IEO_HAP_HI", "crema-1002_TIE_SAD_LO"]
    row = m.loc["crema-1001_IEO_HAP_HI"]
    assert (row["identity"], row["sentence"], row["emotion"], row["level"]) == ("crema-1001", "IEO", "HAP", "HI")
    assert not (tmp_path / "corpus" / row["path"]).is_symlink()  # --copy
    assert_identity_disjoint(m)


def test_lrs2_and_lrs3_folders_with_transcripts(tmp_path, media):
    src = tmp_path / "LRS"
    put(media, "talk", src / "main" / "5535415699068794046" / "00001.mp4")
    (src / "main" / "5535415699068794046" / "00001.txt").write_text("Text:  THE WEATHER TODAY\nConf:  4\n")
    put(media, "talk", src / "main" / "5535415699068794046" / "00002.mp4")
    put(media, "talk", src / "trainval" / "0af00UcTOSc" / "50001.mp4")
    put(media, "talk", src / "0Fi83BHQsMA" / "00003.mp4")  # LRS3 without a subset folder
    put(media, "talk", src / "main" / "5535415699068794046" / "notes.mp4")  # not numbered: ignored
    import_dataset("lrs", src, tmp_path / "corpus")
    m = manifest_of(tmp_path / "corpus")
    assert sorted(m.index) == ["lrs-0Fi83BHQsMA-00003", "lrs-main-5535415699068794046-00001",
                               "lrs-main-5535415699068794046-00002", "lrs-trainval-0af00UcTOSc-50001"]
    assert m.loc["lrs-main-5535415699068794046-00001", "text"] == "THE WEATHER TODAY"
    assert m.loc["lrs-trainval-0af00UcTOSc-50001", "identity"] == "lrs-0af00UcTOSc"
    assert m["audio_path"].isna().all()  # audio inside the mp4
    assert set(m["identity"]) == {"lrs-5535415699068794046", "lrs-0af00UcTOSc", "lrs-0Fi83BHQsMA"}
    assert_identity_disjoint(m)


def test_fakeavceleb_categories_and_methods(tmp_path, media):
    src = tmp_path / "FakeAVCeleb_v1.2"
    put(media, "talk", src / "RealVideo-RealAudio" / "African" / "men" / "id00076" / "00109.mp4")
    put(media, "talk", src / "FakeVideo-RealAudio" / "African" / "men" / "id00076" / "00109_id00166_faceswap.mp4")
    put(media, "talk", src / "RealVideo-FakeAudio" / "Asian (East)" / "women" / "id00080" / "00010_fake.mp4")
    put(media, "talk", src / "FakeVideo-FakeAudio" / "African" / "men" / "id00076" / "00109_2_id00166_wavtolip.mp4")
    (src / "meta_data.csv").write_text(
        "source,target1,target2,method,category,type,race,gender,path\n"
        "id00076,-,-,real,A,RealVideo-RealAudio,African,men,00109.mp4\n"
        "id00076,id00166,-,faceswap,C,FakeVideo-RealAudio,African,men,00109_id00166_faceswap.mp4\n"
        "id00076,id00166,-,faceswap-wav2lip,D,FakeVideo-FakeAudio,African,men,00109_2_id00166_wavtolip.mp4\n")
    import_dataset("fakeavceleb", src, tmp_path / "corpus")
    m = manifest_of(tmp_path / "corpus")
    assert len(m) == 4
    by_category = m.set_index("category")
    assert by_category.loc["RealVideo-RealAudio", "label"] == "real"
    assert pd.isna(by_category.loc["RealVideo-RealAudio", "generator"])
    assert (by_category.drop("RealVideo-RealAudio")["label"] == "fake").all()
    assert by_category.loc["FakeVideo-RealAudio", "method"] == "faceswap"
    assert by_category.loc["FakeVideo-FakeAudio", "generator"] == "faceswap-wav2lip"
    assert by_category.loc["RealVideo-FakeAudio", "method"] == "unknown"  # not in meta_data.csv
    assert by_category.loc["RealVideo-FakeAudio", "identity"] == "fakeavceleb-id00080"
    assert by_category.loc["RealVideo-FakeAudio", "race"] == "Asian (East)"
    assert set(m["identity"]) == {"fakeavceleb-id00076", "fakeavceleb-id00080"}
    assert_identity_disjoint(m)


def test_folder_of_real_and_fake_and_csv(tmp_path, media):
    src = tmp_path / "mine"
    put(media, "talk", src / "real" / "alice" / "a1.mp4")
    put(media, "talk", src / "real" / "alice" / "a2.mp4")
    put(media, "talk", src / "fake" / "alice" / "a1_swap.mp4")
    put(media, "talk", src / "real" / "bob.mp4")
    import_dataset("folder", src, tmp_path / "corpus")
    m = manifest_of(tmp_path / "corpus")
    assert dict(m["label"]) == {"fake-alice-a1_swap": "fake", "real-alice-a1": "real", "real-alice-a2": "real",
                                "real-bob": "real"}
    assert dict(m["identity"]) == {"fake-alice-a1_swap": "alice", "real-alice-a1": "alice",
                                   "real-alice-a2": "alice", "real-bob": "bob"}
    assert m.loc["fake-alice-a1_swap", "generator"] == "unknown"

    (src / "clips.csv").write_text("path,label,identity,generator,split\nreal/alice/a1.mp4,real,alice,,test\n"
                                   "fake/alice/a1_swap.mp4,fake,alice,faceswap,test\nreal/bob.mp4,real,bob,,train\n")
    import_dataset("folder", src / "clips.csv", tmp_path / "from_csv")
    m = manifest_of(tmp_path / "from_csv")
    assert dict(m["split"]) == {"fake-fake-alice-a1_swap": "test", "real-real-alice-a1": "test",
                                "real-real-bob": "train"}
    assert m.loc["fake-fake-alice-a1_swap", "generator"] == "faceswap"


def test_copied_corpus_can_be_moved(tmp_path, media):
    src = tmp_path / "mine"
    put(media, "talk", src / "real" / "alice" / "a1.mp4")
    import_dataset("folder", src, tmp_path / "corpus", mode="copy")
    shutil.move(tmp_path / "corpus", tmp_path / "elsewhere")
    assert len(load_corpus(tmp_path / "elsewhere").manifest) == 1


@pytest.mark.slow
def test_wrong_layout_says_what_was_expected_and_found(tmp_path, media, capsys):
    src = tmp_path / "LRS"
    put(media, "talk", src / "main" / "5535415699068794046" / "00001.mp4")
    code, _, err = run(capsys, "corpus", "import", "grid", src, "-o", tmp_path / "corpus")
    assert_user_error(code, "", err, "does not have the grid layout", "Expected: GRID", "Found:", "1 .mp4", "main/")
    code, _, err = run(capsys, "corpus", "import", "fakeavceleb", src, "-o", tmp_path / "corpus")
    assert_user_error(code, "", err, "RealVideo-RealAudio")
    code, _, err = run(capsys, "corpus", "import", "imagenet", src, "-o", tmp_path / "corpus")
    assert_user_error(code, "", err, "unknown dataset layout")
    code, _, err = run(capsys, "corpus", "import", "lrs", tmp_path / "nowhere", "-o", tmp_path / "corpus")
    assert_user_error(code, "", err, "does not exist")
    assert not (tmp_path / "corpus").exists()


@pytest.mark.slow
def test_all_clips_unreadable_and_duplicate_names(tmp_path, media, capsys):
    src = tmp_path / "mine"
    put(media, "damaged", src / "real" / "alice" / "a1.mp4")
    put(media, "damaged", src / "real" / "alice" / "a2.mp4")  # (a clip without audio imports: visual-only)
    code, _, err = run(capsys, "corpus", "import", "folder", src, "-o", tmp_path / "corpus")
    assert_user_error(code, "", err, "none of the 2 clips", "could be read")
    (src / "clips.csv").write_text("path,label\nreal/alice/a1.mp4,real\nreal/alice/a1.mp4,real\n")
    code, _, err = run(capsys, "corpus", "import", "folder", src / "clips.csv", "-o", tmp_path / "c2")
    assert_user_error(code, "", err, "occur twice")
    (src / "bad.csv").write_text("file,kind\nreal/alice/a1.mp4,real\n")
    code, _, err = run(capsys, "corpus", "import", "folder", src / "bad.csv", "-o", tmp_path / "c3")
    assert_user_error(code, "", err, "needs the columns path and label")


@pytest.mark.slow
def test_output_holding_a_different_corpus_is_refused(tmp_path, media, capsys):
    src = tmp_path / "mine"
    put(media, "talk", src / "real" / "alice" / "a1.mp4")
    import_dataset("folder", src, tmp_path / "corpus")
    import_dataset("folder", src, tmp_path / "corpus")  # the same import again: allowed, idempotent
    code, _, err = run(capsys, "corpus", "import", "folder", src, "-o", tmp_path / "corpus", "--seed", "3")
    assert_user_error(code, "", err, "already holds a different corpus")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    code, _, err = run(capsys, "corpus", "import", "folder", src, "-o", tmp_path / "other")
    assert_user_error(code, "", err, "not a fakebench corpus")


@pytest.mark.slow
def test_import_help_documents_every_layout(capsys):
    code, out, _ = run(capsys, "corpus", "import", "--help")
    assert code == 0
    text = " ".join(out.split())
    for needle in ("s1/bbaf2n.mpg", "1001_DFA_ANG_XX", "trainval/0Fi83BHQsMA/00002.mp4", "FakeVideo-FakeAudio",
                   "SRC/real/alice/clip1.mp4"):
        assert needle in text.replace("│", "").replace("  ", " ") or needle in out, needle


def test_layout_error_is_a_corpus_error():
    from fakebench.corpus.manifest import CorpusError

    assert issubclass(LayoutError, CorpusError)
