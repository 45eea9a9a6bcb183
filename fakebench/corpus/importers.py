"""Importers: a public audio-visual dataset on disk, in its own layout -> a fakebench corpus.

Each importer knows its dataset's real layout and takes identities (and labels, categories, methods)
from the dataset's structure. Media are linked (symlinks, the default) or copied into ``CORPUS/media``;
the manifest points there with relative paths. Files that cannot be read are skipped, counted, and
listed in ``corpus.json`` (``fakebench corpus info`` shows them).

A clip's audio is its own audio track, or the separate audio file its dataset keeps apart (GRID, CREMA-D), or,
for a video without an audio track, an audio file of the same name beside it (``clip.wav``, ``.flac``, ``.m4a``,
``.mp3`` or ``.ogg``, in that order of preference); a separate file is linked or copied beside the clip and named
in the manifest's ``audio_path``. A clip with none of these is imported as visual-only (``has_audio`` false, no
``audio_source``, ``sample_rate`` 0), as visual-only datasets are; audio-driven steps skip it.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fakebench.corpus.layouts import LAYOUTS
from fakebench.corpus.manifest import (
    DEFAULT_RATIOS,
    CorpusError,
    assign_splits,
    claim_output,
    make_manifest,
    write_corpus,
)
from fakebench.errors import ConfigError, FakebenchError
from fakebench.io import atomic_symlink, atomic_write
from fakebench.media import VIDEO_EXTENSIONS
from fakebench.progress import Progress, track

AUDIO_EXTS = (".wav", ".flac", ".m4a", ".mp3", ".ogg")  # separate audio files, in order of preference
FAKEAVCELEB_CATEGORIES = ("RealVideo-RealAudio", "FakeVideo-RealAudio", "RealVideo-FakeAudio", "FakeVideo-FakeAudio")
LRS_SUBSETS = {"main", "pretrain", "trainval", "test", "val"}



class LayoutError(CorpusError):
    """A dataset folder that does not have the layout its importer expects."""


@dataclass
class FoundClip:
    """One clip found in a dataset, before any file is read."""

    video: Path
    identity: str
    name: str  # unique within the dataset; becomes the clip id
    label: str = "real"
    audio: Path | None = None  # separate audio file, when the dataset keeps audio apart (else see audio_beside)
    generator: str | None = None
    columns: dict[str, Any] = field(default_factory=dict)  # dataset-specific manifest columns


@dataclass
class ImportResult:
    folder: Path
    clips: int
    skipped: list[dict[str, str]]


# ---------------------------------------------------------------------------------------------- the layouts

def _walk_files(src: Path) -> list[Path]:
    out = []
    for root, dirs, files in os.walk(src, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out += [Path(root) / f for f in sorted(files) if not f.startswith(".")]
    return out


def describe_tree(src: Path) -> str:
    """What a folder holds, in a few words: its top entries and file types."""
    top = sorted(p.name + ("/" if p.is_dir() else "") for p in src.iterdir()) if src.is_dir() else []
    kinds = Counter(p.suffix.lower() or "(no extension)" for p in _walk_files(src))
    files = ", ".join(f"{n} {ext}" for ext, n in kinds.most_common(6)) or "no files"
    shown = ", ".join(top[:8]) + (f" and {len(top) - 8} more" if len(top) > 8 else "")
    return f"top level: {shown or 'empty'}; files: {files}"


def _mismatch(layout: str, src: Path, what: str) -> LayoutError:
    return LayoutError(f"{src} does not have the {layout} layout ({what}). Expected: {LAYOUTS[layout]} "
                       f"Found: {describe_tree(src)}")


def _nearest(path: Path, src: Path, pattern: re.Pattern) -> str | None:
    for part in reversed(path.relative_to(src).parts[:-1]):
        if pattern.match(part):
            return part
    return None


def find_grid(src: Path) -> list[FoundClip]:
    speaker = re.compile(r"^s\d{1,2}$")
    videos, audio = [], {}
    for f in _walk_files(src):
        who = _nearest(f, src, speaker)
        if who is None:
            continue
        if f.suffix.lower() in VIDEO_EXTENSIONS:
            videos.append((who, f))
        elif f.suffix.lower() in AUDIO_EXTS:
            audio[(who, f.stem)] = f
    if not videos:
        raise _mismatch("grid", src, "no videos inside speaker folders named s1 ... s34")
    return [FoundClip(video=f, identity=f"grid-{who}", name=f"grid-{who}-{f.stem}", audio=audio.get((who, f.stem)),
                      columns={"sentence": f.stem})
            for who, f in videos]


def find_crema_d(src: Path) -> list[FoundClip]:
    pattern = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
    videos, audio = [], {}
    for f in _walk_files(src):
        m = pattern.match(f.stem)
        if m is None:
            continue
        if f.suffix.lower() in VIDEO_EXTENSIONS:
            videos.append((m, f))
        elif f.suffix.lower() in AUDIO_EXTS:
            audio[f.stem] = f
    if not videos:
        raise _mismatch("crema-d", src, "no video named like 1001_DFA_ANG_XX")
    return [FoundClip(video=f, identity=f"crema-{m[1]}", name=f"crema-{f.stem}", audio=audio.get(f.stem),
                      columns={"sentence": m[2], "emotion": m[3], "level": m[4]})
            for m, f in videos]


def find_lrs(src: Path) -> list[FoundClip]:
    found = []
    for f in _walk_files(src):
        if f.suffix.lower() != ".mp4" or not f.stem.isdigit():
            continue
        parts = f.relative_to(src).parts
        if len(parts) == 2:
            subset, folder = "", parts[0]
        elif len(parts) == 3 and parts[0] in LRS_SUBSETS:
            subset, folder = parts[0], parts[1]
        else:
            continue
        transcript = f.with_suffix(".txt")
        text = _lrs_text(transcript) if transcript.is_file() else None
        name = "-".join(p for p in ("lrs", subset, _safe(folder), f.stem) if p)
        found.append(FoundClip(video=f, identity=f"lrs-{_safe(folder)}", name=name,
                               columns={"subset": subset or None, "text": text}))
    if not found:
        raise _mismatch("lrs", src, "no numbered mp4 clips in ID/00001.mp4 or SUBSET/ID/00001.mp4 folders")
    return found


def _lrs_text(path: Path) -> str | None:
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("Text:"):
            return line[5:].strip()
    return None


def find_fakeavceleb(src: Path) -> list[FoundClip]:
    present = [c for c in FAKEAVCELEB_CATEGORIES if (src / c).is_dir()]
    if not present:
        raise _mismatch("fakeavceleb", src, f"none of the category folders {', '.join(FAKEAVCELEB_CATEGORIES)}")
    methods = _fakeavceleb_methods(src / "meta_data.csv")
    found = []
    for category in present:
        for f in _walk_files(src / category):
            parts = f.relative_to(src / category).parts
            if f.suffix.lower() not in VIDEO_EXTENSIONS or len(parts) != 4:
                continue
            race, gender, who, _ = parts
            real = category == "RealVideo-RealAudio"
            method = "real" if real else methods.get((category, who, f.name), "unknown")
            found.append(FoundClip(
                video=f, identity=f"fakeavceleb-{_safe(who)}",
                name=f"fakeavceleb-{category}-{_safe(who)}-{_safe(f.stem)}",
                label="real" if real else "fake", generator=None if real else method,
                columns={"category": category, "method": method, "race": race, "gender": gender}))
    if not found:
        raise _mismatch("fakeavceleb", src, "no videos at CATEGORY/RACE/GENDER/IDENTITY/FILE.mp4")
    return found


def _fakeavceleb_methods(path: Path) -> dict[tuple[str, str, str], str]:
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and not {"method", "type", "source", "path"} <= set(rows[0]):
        raise LayoutError(f"{path} lacks the columns method, type, source and path that FakeAVCeleb's "
                          f"meta_data.csv has (found {', '.join(rows[0])})")
    return {(r["type"], r["source"], r["path"]): r["method"] for r in rows}


def find_folder(src: Path) -> list[FoundClip]:
    if src.is_file() and src.suffix.lower() == ".csv":
        return _find_csv(src)
    found = []
    for label in ("real", "fake"):
        base = src / label
        if not base.is_dir():
            continue
        for f in _walk_files(base):
            if f.suffix.lower() not in VIDEO_EXTENSIONS:
                continue
            parts = f.relative_to(base).parts
            who = parts[0] if len(parts) > 1 else f.stem
            found.append(FoundClip(video=f, identity=_safe(who), label=label,
                                   name=f"{label}-{_safe('-'.join(parts)[: -len(f.suffix)])}",
                                   generator="unknown" if label == "fake" else None))
    if not found:
        raise _mismatch("folder", src, "no videos in real/ or fake/ subfolders, and SRC is not a CSV file")
    return found


def _find_csv(path: Path) -> list[FoundClip]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    columns = set(rows[0]) if rows else set()
    if not {"path", "label"} <= columns:
        raise LayoutError(f"{path} needs the columns path and label (found {', '.join(sorted(columns)) or 'none'}). "
                          f"Expected: {LAYOUTS['folder']}")
    found = []
    for i, r in enumerate(rows, start=2):
        if r["label"] not in ("real", "fake"):
            raise LayoutError(f"{path} line {i}: label {r['label']!r} is not real or fake")
        video = path.parent / r["path"]
        who = r.get("identity") or video.stem
        extra = {"split": r["split"]} if r.get("split") else {}
        found.append(FoundClip(video=video, identity=_safe(who), label=r["label"],
                               name=f"{r['label']}-{_safe(r['path'].rsplit('.', 1)[0].replace('/', '-'))}",
                               generator=(r.get("generator") or "unknown") if r["label"] == "fake" else None,
                               columns=extra))
    if not found:
        raise LayoutError(f"{path} lists no clips")
    return found


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", text).strip("_") or "x"


FINDERS: dict[str, Callable[[Path], list[FoundClip]]] = {
    "grid": find_grid, "crema-d": find_crema_d, "lrs": find_lrs, "fakeavceleb": find_fakeavceleb,
    "folder": find_folder,
}


# ---------------------------------------------------------------------------------------------- importing

def import_dataset(layout: str, src: str | os.PathLike, output: str | os.PathLike, *, mode: str = "link",
                   seed: int = 0, ratios: tuple[float, float, float] = DEFAULT_RATIOS,
                   progress: Progress | None = None) -> ImportResult:
    """Find the dataset's clips, link or copy them into OUTPUT/media, and write the manifest with splits.

    ``progress`` (see `fakebench.progress`) is advanced once per clip found."""
    if layout not in FINDERS:
        raise ConfigError(f"unknown dataset layout {layout!r}; choose one of {', '.join(FINDERS)}")
    if mode not in ("link", "copy"):
        raise ConfigError(f"mode must be link or copy, got {mode!r}")
    src, out = Path(src), Path(output)
    if not src.exists():
        raise LayoutError(f"{src} does not exist; give the dataset's folder")
    if src.is_file() and not (layout == "folder" and src.suffix.lower() == ".csv"):
        raise LayoutError(f"{src} is a file; give the dataset's folder (a CSV file only works with `folder`)")
    found = FINDERS[layout](src)
    duplicated = [n for n, c in Counter(c.name for c in found).items() if c > 1]
    if duplicated:
        raise CorpusError(f"{src}: {len(duplicated)} clip names occur twice ({', '.join(duplicated[:5])}); "
                          "clip ids must be unique: remove the copies")
    fingerprint = {"kind": "import", "layout": layout, "source": str(src.resolve()), "mode": mode, "seed": seed,
                   "ratios": [round(r, 6) for r in ratios]}
    claim_output(out, fingerprint)
    rows, skipped = [], []
    for clip in track(found, progress, f"importing {layout}"):
        try:
            rows.append(_import_clip(clip, out, mode, layout))
        except FakebenchError as e:
            skipped.append({"item": str(clip.video), "error": e.one_line()})
    if not rows:
        raise CorpusError(f"none of the {len(found)} clips found in {src} could be read "
                          f"(first problem: {skipped[0]['error']})")
    manifest = make_manifest(rows)
    if "split" in manifest and manifest["split"].isna().any():
        manifest["split"] = assign_splits(manifest["identity"], seed=seed, ratios=ratios)
    write_corpus(out, manifest, {"fingerprint": fingerprint, "complete": True, "problems": skipped,
                                 "dataset": layout})
    return ImportResult(folder=out, clips=len(manifest), skipped=skipped)


def _import_clip(clip: FoundClip, out: Path, mode: str, layout: str) -> dict[str, Any]:
    from fakebench.errors import MediaError
    from fakebench.media import file_sha256, probe

    info = probe(clip.video)
    if not info.has_video or info.is_image:
        raise MediaError(f"{clip.video} has no video stream")
    audio = clip.audio
    if audio is None and not info.has_audio:
        audio = audio_beside(clip.video)  # a visual-only video with its audio kept beside it
    sample_rate = info.sample_rate if info.has_audio else 0
    if audio is not None:
        audio_info = probe(audio)
        if not audio_info.has_audio:
            raise MediaError(f"{audio} has no audio stream")
        sample_rate = audio_info.sample_rate
    has_audio = audio is not None or info.has_audio  # else a visual-only clip
    video_rel = Path("media") / clip.identity / f"{clip.name}{clip.video.suffix.lower()}"
    _place(clip.video, out / video_rel, mode)
    audio_rel = None
    if audio is not None:
        audio_rel = Path("media") / clip.identity / f"{clip.name}.audio{audio.suffix.lower()}"
        _place(audio, out / audio_rel, mode)
    n_frames = info.n_frames_estimate
    return {
        "clip_id": clip.name, "path": video_rel.as_posix(), "label": clip.label, "generator": clip.generator,
        "identity": clip.identity, "source_clip": clip.name, "audio_source": clip.name if has_audio else None,
        "split": clip.columns.get("split"), "fps": info.fps, "sample_rate": sample_rate, "n_frames": n_frames,
        "duration_s": round(n_frames / info.fps, 4) if info.fps else info.duration_s,
        "sha256": file_sha256(clip.video), "ground_truth": None, "source": layout, "has_audio": has_audio,
        "audio_path": audio_rel.as_posix() if audio_rel else None,
        **{k: v for k, v in clip.columns.items() if k != "split"},
    }


def audio_beside(video: Path) -> Path | None:
    """An audio file of the same name next to `video` (``clip.wav`` for ``clip.mp4``), in `AUDIO_EXTS` order."""
    for ext in AUDIO_EXTS:
        for suffix in (ext, ext.upper()):
            candidate = video.with_suffix(suffix)
            if candidate.is_file():
                return candidate
    return None


def _place(src: Path, target: Path, mode: str) -> None:
    """Link (absolute symlink) or copy `src` to `target`, atomically; an existing target is replaced."""
    if mode == "link":
        atomic_symlink(src.resolve(), target)
    else:
        atomic_write(target, lambda tmp: shutil.copyfile(src, tmp), mode=None)
