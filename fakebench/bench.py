"""A whole benchmark from one YAML file: corpus, generators, metrics, detectors, evaluation (`fakebench bench`).

The run folder RUN holds everything the report reads (see `fakebench.report`):

- ``config.yaml`` (as given) and ``run.json``: the validated config, versions, weights found (with SHA-256) and
  the substitutes used where weights are missing, and each stage's state and time;
- ``corpus/``: the corpus (a fakebench corpus folder: ``manifest.parquet`` and media);
- ``metrics.parquet``: the per-clip metrics of every clip (fakes measured against their real source clip);
- ``compare.parquet``: set metrics of each generator's fakes against the real clips;
- ``detectors/NAME/``: the trained detectors;
- ``evaluation/``: ``scores.parquet``, ``evaluation.parquet``, ``shortcut.json``, ``cross_generator.parquet``,
  ``evidence.parquet`` (the worst-misclassified clips with each detector's evidence) and, when the fakes were made
  with emotions (``corpus.*.emotion``), ``per_emotion.parquet`` (each emotion's fakes against all real clips).

Every stage resumes: a finished stage is skipped, and the corpus build, the metrics and the scores resume clip by
clip, so a killed run loses at most the clip in flight and re-running a finished run does no work.
"""

from __future__ import annotations

import json
import os
import platform
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from fakebench.errors import ConfigError, FakebenchError, InputFileError
from fakebench.io import atomic_write, write_json_atomic
from fakebench.progress import Progress, or_silent

STAGES = ("corpus", "metrics", "compare", "detectors", "evaluation", "cross_generator", "evidence")
CORPUS_KINDS = ("demo", "import", "real")
EXECUTORS = ("local", "pool", "ray")
VERSIONED_PACKAGES = ("numpy", "scipy", "scikit-learn", "pandas", "torch", "av", "librosa", "dlib-bin",
                      "facenet-pytorch", "matplotlib")
BUILD_OPTIONS = ("checkpoint", "device")  # what `fakebench.corpus.build.BuildOptions` passes to generators
WORST_CLIPS = 3  # per detector and class, in evidence.parquet


# ---------------------------------------------------------------------------------------------- the config

@dataclass(frozen=True)
class CorpusConfig:
    kind: str  # demo | import | real
    clips_per_identity: int = 2
    variants: int = 1
    layout: str | None = None  # import: the dataset layout (fakebench corpus import LAYOUT)
    path: str | None = None  # import: the dataset folder; real: an imported real corpus folder
    emotion: str | None = None  # the build's --emotion: "random" or a name, for generators with an emotion option


@dataclass(frozen=True)
class GeneratorConfig:
    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvaluationConfig:
    split: str = "test"
    perturbations: tuple[str, ...] = ()
    cross_generator: bool = False
    n_boot: int = 1000


@dataclass(frozen=True)
class BenchConfig:
    name: str
    corpus: CorpusConfig
    generators: tuple[GeneratorConfig, ...]
    metrics: tuple[str, ...] = ("sync", "blink", "quality")
    compare: tuple[str, ...] = ("fd_dlib",)
    compare_frames_per_clip: int = 8
    detectors: tuple[str, ...] = ("shortcut", "sync", "blink")
    evaluation: EvaluationConfig = EvaluationConfig()
    seed: int = 0
    executor: str = "local"
    workers: int = 1

    def to_json(self) -> dict[str, Any]:
        data = json.loads(json.dumps(asdict(self)))
        if data["corpus"].get("emotion") is None:  # runs made before the option keep their config (and its hash)
            data["corpus"].pop("emotion", None)
        return data


def _keys(where: str, given: Mapping[str, Any], allowed: Sequence[str], required: Sequence[str] = ()) -> None:
    if not isinstance(given, Mapping):
        raise ConfigError(f"{where}: expected a mapping of keys, got {type(given).__name__}")
    for key in given:
        if key not in allowed:
            raise ConfigError(f"{where}.{key}: unknown key; allowed here: {', '.join(allowed)}".lstrip("."))
    for key in required:
        if key not in given:
            raise ConfigError(f"{where}.{key}: missing; it is required".lstrip("."))


def _typed(where: str, value: Any, kind: type, *, minimum: int | None = None) -> Any:
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        name = {int: "a whole number", str: "text", bool: "true or false", list: "a list"}.get(kind, kind.__name__)
        raise ConfigError(f"{where}: expected {name}, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{where}: must be at least {minimum}, got {value}")
    return value


def _names(where: str, value: Any, known: Sequence[str]) -> tuple[str, ...]:
    items = _typed(where, value, list)
    out = []
    for i, item in enumerate(items):
        _typed(f"{where}[{i}]", item, str)
        if item not in known:
            raise ConfigError(f"{where}[{i}]: unknown {item!r}; known: {', '.join(known)}")
        out.append(item)
    return tuple(out)


def parse_config(data: Any, *, base: Path = Path(".")) -> BenchConfig:
    """Validate a config mapping (a parsed YAML file) completely, before any work: the first problem found is a
    ConfigError naming its key (``corpus.demo.variants: expected a whole number``)."""
    from fakebench.detectors.base import DETECTORS
    from fakebench.generators.base import GENERATORS
    from fakebench.metrics.registry import available
    from fakebench.perturb import parse_perturbations

    _keys("", data, ("name", "seed", "executor", "workers", "corpus", "generators", "metrics", "compare",
                     "compare_frames_per_clip", "detectors", "evaluation"), required=("corpus", "generators"))
    name = _typed("name", data.get("name", "bench"), str)
    seed = _typed("seed", data.get("seed", 0), int, minimum=0)
    executor = _typed("executor", data.get("executor", "local"), str)
    if executor not in EXECUTORS:
        raise ConfigError(f"executor: unknown {executor!r}; one of {', '.join(EXECUTORS)}")
    workers = _typed("workers", data.get("workers", 1), int, minimum=1)

    corpus_data = data["corpus"]
    _keys("corpus", corpus_data, CORPUS_KINDS)
    if len(corpus_data) != 1:
        raise ConfigError(f"corpus: give exactly one of {', '.join(CORPUS_KINDS)}")
    kind, spec = next(iter(corpus_data.items()))
    spec = spec or {}
    if kind == "demo":
        _keys("corpus.demo", spec, ("clips_per_identity", "variants", "emotion"))
        corpus = CorpusConfig("demo", _typed("corpus.demo.clips_per_identity", spec.get("clips_per_identity", 2),
                                             int, minimum=1),
                              _typed("corpus.demo.variants", spec.get("variants", 1), int, minimum=1))
    else:
        _keys(f"corpus.{kind}", spec, ("layout", "path", "emotion") if kind == "import" else ("path", "emotion"),
              required=("layout", "path") if kind == "import" else ("path",))
        path = (base / _typed(f"corpus.{kind}.path", spec["path"], str)).resolve()
        if not path.is_dir():
            raise ConfigError(f"corpus.{kind}.path: {path} is not a folder; give the dataset's folder")
        layout = _typed("corpus.import.layout", spec["layout"], str) if kind == "import" else None
        corpus = CorpusConfig(kind, path=str(path), layout=layout)
    emotion = _emotion(f"corpus.{kind}.emotion", spec.get("emotion"))
    if emotion is not None:
        corpus = replace(corpus, emotion=emotion)

    generators = []
    for i, item in enumerate(_typed("generators", data["generators"], list)):
        where = f"generators[{i}]"
        item = {"name": item} if isinstance(item, str) else item
        _keys(where, item, ("name", "options"), required=("name",))
        gen = _typed(f"{where}.name", item["name"], str)
        if gen not in GENERATORS.names():
            raise ConfigError(f"{where}.name: unknown generator {gen!r}; known: {', '.join(GENERATORS.names())}")
        options = dict(_typed(f"{where}.options", item.get("options") or {}, dict))
        for key in options:
            if key not in BUILD_OPTIONS:
                raise ConfigError(f"{where}.options.{key}: a corpus build gives generators only "
                                  f"{' and '.join(BUILD_OPTIONS)}")
        try:
            GENERATORS.get(gen).check_options({k: v for k, v in options.items()})
        except FakebenchError as e:
            raise ConfigError(f"{where}.options: {e.one_line()}") from e
        generators.append(GeneratorConfig(gen, options))
    if not generators:
        raise ConfigError("generators: give at least one generator")
    if corpus.emotion is not None:
        emotional = [g.name for g in generators if any(o.name == "emotion" for o in GENERATORS.get(g.name).options)]
        if not emotional:
            raise ConfigError(f"corpus.{kind}.emotion: none of the generators "
                              f"({', '.join(g.name for g in generators)}) takes an emotion; add one that does "
                              f"({', '.join(_emotional_generators()) or 'none is installed'}) or remove the key")

    metrics = _names("metrics", data.get("metrics", ["sync", "blink", "quality"]), list(available("clip")))
    compare = _names("compare", data.get("compare", ["fd_dlib"]), list(available("set")))
    compare_frames = _typed("compare_frames_per_clip", data.get("compare_frames_per_clip", 8), int, minimum=1)
    detectors = _names("detectors", data.get("detectors", ["shortcut", "sync", "blink"]), DETECTORS.names())
    ev = data.get("evaluation") or {}
    _keys("evaluation", ev, ("split", "perturbations", "cross_generator", "n_boot"))
    split = _typed("evaluation.split", ev.get("split", "test"), str)
    if split not in ("train", "val", "test"):
        raise ConfigError(f"evaluation.split: {split!r} is not a split; one of train, val, test")
    perturbations = tuple(_typed(f"evaluation.perturbations[{i}]", p, str)
                          for i, p in enumerate(_typed("evaluation.perturbations", ev.get("perturbations", []),
                                                       list)))
    try:
        if perturbations:  # none is fine: the evaluation is then on clean clips only
            parse_perturbations(perturbations)
    except FakebenchError as e:
        raise ConfigError(f"evaluation.perturbations: {e.one_line()}") from e
    evaluation = EvaluationConfig(split, perturbations,
                                  _typed("evaluation.cross_generator", ev.get("cross_generator", False), bool),
                                  _typed("evaluation.n_boot", ev.get("n_boot", 1000), int, minimum=50))
    return BenchConfig(name, corpus, tuple(generators), metrics, compare, compare_frames, detectors, evaluation, seed,
                       executor, workers)


def _emotion(where: str, value: Any) -> str | None:
    """The corpus build's emotion: None, "random" or one of the expression metric's emotions."""
    if value is None:
        return None
    from fakebench.corpus.build import check_emotion

    value = _typed(where, value, str)
    try:
        check_emotion(value)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e.one_line().removeprefix('--emotion ')}") from e
    return value


def _emotional_generators() -> list[str]:
    from fakebench.generators.base import GENERATORS

    return [n for n in GENERATORS.names() if any(o.name == "emotion" for o in GENERATORS.get(n).options)]


def load_config(path: str | os.PathLike) -> BenchConfig:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"{p}: no such config file; give a benchmark YAML (examples: benchmarks/configs/)")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML ({' '.join(str(e).split())[:140]})") from e
    try:
        return parse_config(data, base=p.resolve().parent)
    except ConfigError as e:
        raise ConfigError(f"{p.name}: {e.one_line()}") from e


# ---------------------------------------------------------------------------------------------- the run

@dataclass
class BenchResult:
    run: Path
    stages_run: list[str]  # the stages that did work in this call (empty: everything was done already)
    failures: int  # clips a metric or a detector could not handle
    shortcut: dict[str, Any] | None


class RunState:
    """run.json: the config and environment, and each stage's state."""

    def __init__(self, folder: Path, config: BenchConfig) -> None:
        self.path = folder / "run.json"
        self.data: dict[str, Any] = json.loads(self.path.read_text()) if self.path.is_file() else {}
        made = config.to_json()
        if self.data and self.data.get("config") != made:
            raise ConfigError(f"{folder} holds a run of another config; choose a new folder, or give the config it "
                              "was made with to resume it")
        if not self.data:
            from fakebench.tables import config_hash, fakebench_version

            self.data = {"name": config.name, "fakebench_version": fakebench_version(), "config": made,
                         "config_hash": config_hash(made), "seed": config.seed, "versions": versions(),
                         "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "stages": {}}
            self.save()

    def done(self, stage: str) -> bool:
        return bool(self.data["stages"].get(stage, {}).get("done"))

    def finish(self, stage: str, seconds: float, **extra: Any) -> None:
        self.data["stages"][stage] = {"done": True, "seconds": round(seconds, 2), **extra}
        self.save()

    def save(self) -> None:
        write_json_atomic(self.path, self.data, indent=1)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return out


def weights_state() -> dict[str, dict[str, Any]]:
    from fakebench.weights import list_weights, sha256_of

    out = {}
    for loc in list_weights(verify=False):
        out[loc.name] = {"status": "found" if loc.found else "missing", "path": str(loc.path) if loc.path else None,
                         "where": loc.where, "checksum": loc.checksum,
                         "sha256": sha256_of(loc.path) if loc.found and loc.path and Path(loc.path).is_file() else None}
    return out


def run_bench(config_path: str | os.PathLike, output: str | os.PathLike, *, progress: Progress | None = None,
              on_stage: Callable[[str, bool], None] | None = None) -> BenchResult:
    """Run (or resume) the benchmark of CONFIG in OUTPUT. ``on_stage(stage, skipped)`` is told as each stage
    starts. Raises ConfigError for a bad config before any work."""
    config = load_config(config_path)
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise ConfigError(f"{output} is a file; give a folder for the run")
    if output.is_dir() and any(output.iterdir()) and not (output / "run.json").is_file():
        raise ConfigError(f"{output} holds other files; give an empty or new folder for the run")
    output.mkdir(parents=True, exist_ok=True)
    state = RunState(output, config)
    if not (output / "config.yaml").is_file():
        atomic_write(output / "config.yaml", lambda f: f.write(Path(config_path).read_bytes()))
    progress = or_silent(progress)
    ran, failures = [], 0
    steps: dict[str, Callable[[], dict[str, Any]]] = {
        "corpus": lambda: stage_corpus(config, output, progress),
        "metrics": lambda: stage_metrics(config, output, progress),
        "compare": lambda: stage_compare(config, output),
        "detectors": lambda: stage_detectors(config, output, progress),
        "evaluation": lambda: stage_evaluation(config, output, progress),
        "cross_generator": lambda: stage_cross_generator(config, output, progress),
        "evidence": lambda: stage_evidence(config, output),
    }
    for stage in STAGES:
        if state.done(stage):
            if on_stage:
                on_stage(stage, True)
            continue
        if on_stage:
            on_stage(stage, False)
        t0 = time.perf_counter()
        extra = steps[stage]() or {}
        failures += int(extra.get("failures", 0))
        state.finish(stage, time.perf_counter() - t0, **extra)
        ran.append(stage)
    state.data["weights"] = weights_state()
    state.data["substitutes"] = state.data["stages"].get("compare", {}).get("substitutes", [])
    state.data["synthetic_reference"] = config.corpus.kind == "demo"
    state.data["corpus"] = corpus_summary(output / "corpus")
    if ran:
        state.data["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    state.save()
    failures = sum(int(s.get("failures", 0)) for s in state.data["stages"].values())
    shortcut_file = output / "evaluation" / "shortcut.json"
    shortcut = json.loads(shortcut_file.read_text()) if shortcut_file.is_file() else None
    return BenchResult(output, ran, failures, shortcut)


def corpus_summary(folder: Path) -> dict[str, Any]:
    from fakebench.corpus.manifest import load_corpus

    m = load_corpus(folder, check_files=False).manifest
    return {"path": "corpus", "n_clips": int(len(m)), "n_identities": int(m["identity"].nunique()),
            "generators": sorted(str(g) for g in m["generator"].dropna().unique())}


# ---------------------------------------------------------------------------------------------- stages

def stage_corpus(config: BenchConfig, output: Path, progress: Progress) -> dict[str, Any]:
    from fakebench.corpus.build import BuildOptions, build_corpus

    generators = tuple(g.name for g in config.generators)
    options = {k: v for g in config.generators for k, v in g.options.items()}
    c = config.corpus
    if c.kind == "demo":
        from fakebench.corpus.demo import make_demo_corpus

        make_demo_corpus(output / "corpus", clips_per_identity=c.clips_per_identity, variants=c.variants,
                         generators=generators, seed=config.seed, workers=config.workers, executor=config.executor,
                         progress=progress, emotion=c.emotion)
        return {}
    real = Path(c.path)
    if c.kind == "import":
        from fakebench.corpus.importers import import_dataset

        real = output / "real"
        import_dataset(c.layout, c.path, real, seed=config.seed, progress=progress)
    result = build_corpus(real, output / "corpus", BuildOptions(generators=generators, seed=config.seed,
                                                                checkpoint=options.get("checkpoint"),
                                                                device=options.get("device", "auto"),
                                                                emotion=c.emotion),
                          workers=config.workers, executor=config.executor, progress=progress)
    return {"failures": len(result.summary.failed)}


class UsableClips:
    """The run's corpus less the clips the metrics stage could not read (each is a failure there, once): the later
    stages work on the rest instead of stopping at them."""

    def __init__(self, corpus: Any, unreadable: set[str]) -> None:
        self.corpus, self.unreadable = corpus, unreadable

    def samples(self, split: str | None = None, label: str | None = None) -> list:
        return [s for s in self.corpus.samples(split=split, label=label) if s.clip_id not in self.unreadable]


def _corpus(output: Path, *, usable_only: bool = True) -> Any:
    from fakebench.corpus.manifest import load_corpus
    from fakebench.tables import read_table

    corpus = load_corpus(output / "corpus")
    if not usable_only:
        return corpus
    metrics = output / "metrics.parquet"
    rows = read_table(metrics)[0] if metrics.is_file() else []
    return UsableClips(corpus, {r["clip_id"] for r in rows if r.get("error")})


@dataclass(frozen=True)
class MeasureJob:
    clip_id: str
    path: str
    fields: dict[str, Any]  # label, generator, identity, split: copied into the row
    metrics: tuple[str, ...]
    reference: str | None  # a fake's real source clip


def measure_one(job: MeasureJob) -> dict[str, Any]:
    """The metrics row of one clip (a `run_tasks` task: module level, picklable in and out)."""
    from fakebench.io import to_jsonable
    from fakebench.metrics.measure import measure_clips
    from fakebench.metrics.registry import get_metric
    from fakebench.samples import Sample

    sample = Sample.from_path(job.path, clip_id=job.clip_id)
    specs = {m: get_metric(m, "clip") for m in job.metrics}
    wanted = [m for m, spec in specs.items() if not spec.needs_reference or job.reference is not None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # each row keeps its metrics' warnings
        row = next(iter(measure_clips([sample], wanted, reference=job.reference,
                                      reference_for=[m for m in wanted if specs[m].source_reference])))
    sample.release()
    return to_jsonable({"clip_id": job.clip_id, **job.fields, **row})


def stage_metrics(config: BenchConfig, output: Path, progress: Progress) -> dict[str, Any]:
    """Per-clip metrics of every clip, each fake against its real source clip (identity, PSNR/SSIM/LMD; a metric
    registered with ``source_reference=False`` measures every clip alike, without one), on the config's executor;
    each clip's row is kept as it finishes, so a killed run resumes where it stopped."""
    from fakebench.execution import ResumeState, Task, run_tasks
    from fakebench.tables import Provenance, write_table

    corpus = _corpus(output, usable_only=False)
    samples = corpus.samples()
    by_id = {s.clip_id: s for s in samples}
    tasks = []
    for s in samples:
        source = s.meta.get("source_clip") if s.label == "fake" else None
        reference = str(by_id[source].path) if source in by_id and source != s.clip_id else None
        fields = {"label": s.label, "generator": s.meta.get("generator") or "", "identity": s.identity,
                  "split": s.split}
        tasks.append(Task(s.clip_id, MeasureJob(s.clip_id, str(s.path), fields, config.metrics, reference)))
    state_folder = output / "metrics.state"
    run_tasks(measure_one, tasks, state_folder, executor=config.executor, workers=config.workers,
              total=len(tasks), description="metrics", progress=progress)
    state = ResumeState(state_folder)
    rows = {r["clip_id"]: r for r in state.results()}
    failed = state.failures()
    for key, why in failed.items():
        rows.setdefault(key, {"clip_id": key, **tasks[[t.key for t in tasks].index(key)].payload.fields,
                              "error": why})
    ordered = [rows[s.clip_id] for s in samples if s.clip_id in rows]
    failures = sum(1 for r in ordered if "error" in r or any(k.endswith("_error") for k in r))
    write_table(output / "metrics.parquet", ordered, Provenance.make("metrics", config={"metrics": config.metrics}))
    return {"failures": failures}


def stage_compare(config: BenchConfig, output: Path) -> dict[str, Any]:
    """Set metrics of each generator's fakes against the real clips (the real side sampled and featurised once).
    A metric whose weights are missing is not computed: the row says why, and the substitute the metric gives
    in its place (fd_dlib for FID) is named in run.json's substitutes."""
    from fakebench.errors import WeightsError
    from fakebench.metrics.measure import compare_sets
    from fakebench.tables import Provenance, write_table

    corpus = _corpus(output)
    real = corpus.samples(label="real")
    fakes = {g.name: [s for s in corpus.samples(label="fake") if s.meta.get("generator") == g.name]
             for g in config.generators}
    fakes = {k: v for k, v in fakes.items() if v}
    rows, substitutes = [], set()
    if real and fakes and config.compare:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                results = compare_sets(real, fakes, list(config.compare), seed=config.seed,
                                       frames_per_clip=config.compare_frames_per_clip)
            except WeightsError as e:
                results = {name: {f"{m}_skipped": e.one_line() for m in config.compare} for name in fakes}
        notes = sorted({str(w.message) for w in caught})
        for name, result in results.items():
            for metric in dict.fromkeys([*config.compare, *([result["fid_substitute"]] if "fid_substitute" in
                                                              result else [])]):
                value = result.get(metric)
                why = str(result.get(f"{metric}_skipped", "")).split(" (looked in")[0]
                rows.append({"generator": name, "metric": metric, "value": value, "n_real": len(real),
                             "n_fake": len(fakes[name]), "note": why or "; ".join(notes)})
            if "fid_substitute" in result:
                why = str(result.get("fid_skipped", "no Inception weights")).split(" (looked in")[0]
                substitutes.add(f"FID not computed ({why}); {result['fid_substitute']} is given in its place")
    write_table(output / "compare.parquet", rows, Provenance.make("compare", config={"compare": config.compare}))
    for s in real:
        s.release()
    return {"substitutes": sorted(substitutes)}


def stage_detectors(config: BenchConfig, output: Path, progress: Progress) -> dict[str, Any]:
    from fakebench.detection import train_detector

    corpus = _corpus(output)
    train, val = corpus.samples(split="train"), corpus.samples(split="val")
    progress.start(len(config.detectors), "training detectors")
    seconds = {}
    for name in config.detectors:
        folder = output / "detectors" / name
        if not (folder / "detector.json").is_file():
            t0 = time.perf_counter()
            train_detector(name, train, val, folder, seed=config.seed, info={"corpus": "corpus"})
            seconds[name] = round(time.perf_counter() - t0, 2)
        progress.advance()
    progress.finish()
    return {"train_seconds": seconds}


def stage_evaluation(config: BenchConfig, output: Path, progress: Progress) -> dict[str, Any]:
    from fakebench.detection import evaluate_detectors, load_detectors
    from fakebench.perturb import parse_perturbations

    corpus = _corpus(output)
    detectors = load_detectors([output / "detectors" / n for n in config.detectors])
    samples = corpus.samples(split=config.evaluation.split)
    total = None

    def tick(done: int, n: int) -> None:
        nonlocal total
        if total is None:
            total = n
            progress.start(n, "evaluating")
        progress.advance()

    run = evaluate_detectors(detectors, samples, output / "evaluation",
                             perturbations=parse_perturbations(config.evaluation.perturbations)
                             if config.evaluation.perturbations else [],
                             shortcut_fit=(corpus.samples(split="train"), corpus.samples(split="val")),
                             n_boot=config.evaluation.n_boot, seed=config.seed, progress=tick)
    progress.finish()
    write_json_atomic(output / "evaluation" / "shortcut.json", _plain(run.shortcut), indent=1)
    if run.failures:
        from fakebench.tables import Provenance, write_table

        write_table(output / "evaluation" / "failures.parquet", run.failures, Provenance.make("failures"))
    return {"failures": len(run.failures)}


def _plain(value: Any) -> Any:
    from fakebench.io import to_jsonable

    return to_jsonable(value)


def stage_cross_generator(config: BenchConfig, output: Path, progress: Progress) -> dict[str, Any]:
    """Each detector trained on one generator's fakes (and the real clips), tested on every generator's."""
    import pandas as pd

    from fakebench.detection import keep_generators, train_detector
    from fakebench.detectors.base import DetectorBase, is_corpus_check
    from fakebench.evaluation import evaluate_scores
    from fakebench.tables import Provenance, write_table

    generators = [g.name for g in config.generators]
    names = [n for n in config.detectors if not is_corpus_check(n)]
    if not config.evaluation.cross_generator or len(generators) < 2 or not names:
        return {"skipped": "cross_generator is off or fewer than two generators"}
    corpus = _corpus(output)
    train, val = corpus.samples(split="train"), corpus.samples(split="val")
    test = corpus.samples(split=config.evaluation.split)
    rows = []
    progress.start(len(names) * len(generators), "cross-generator")
    for name in names:
        for trained_on in generators:
            folder = output / "cross" / name / trained_on
            if (folder / "detector.json").is_file():
                detector = DetectorBase.load(folder)
            else:
                detector = train_detector(name, keep_generators(train, [trained_on]),
                                          keep_generators(val, [trained_on]), folder, seed=config.seed,
                                          info={"train_generators": [trained_on]})
            scored = detector.score(test)
            frame = pd.DataFrame({"label": [s.label for s in test], "score": scored.p_fake,
                                  "identity": [s.identity for s in test],
                                  "generator": [s.meta.get("generator") or "" for s in test]})
            frame = frame[frame["score"].notna()]
            for tested_on in generators:
                part = frame[(frame["label"] == "real") | (frame["generator"] == tested_on)]
                if part["label"].nunique() < 2:
                    continue
                m = evaluate_scores(part["label"], part["score"], part["identity"], n_boot=config.evaluation.n_boot,
                                    seed=config.seed)
                rows.append({"detector": name, "trained_on": trained_on, "tested_on": tested_on,
                             **{k: m.get(k) for k in ("auc", "auc_ci_low", "auc_ci_high", "n_real", "n_fake",
                                                      "n_identities")}})
            progress.advance()
            for s in test:
                s.release()
    progress.finish()
    write_table(output / "evaluation" / "cross_generator.parquet", rows,
                Provenance.make("cross_generator", config={"detectors": names, "generators": generators}))
    return {}


def stage_evidence(config: BenchConfig, output: Path) -> dict[str, Any]:
    """The worst-misclassified test clips of each detector (real clips scored most fake, fakes scored most real)
    with every detector's evidence on them, in words."""
    import pandas as pd

    from fakebench.detection import detect_clips, load_detectors
    from fakebench.detectors.base import is_corpus_check
    from fakebench.tables import Provenance, read_table, write_table

    scores_path = output / "evaluation" / "scores.parquet"
    if not scores_path.is_file():
        return {"skipped": "no scores"}
    scores = pd.DataFrame(read_table(scores_path)[0])
    scores = scores[(scores["perturbation"] == "none") & ~scores["detector"].map(is_corpus_check)]
    corpus = _corpus(output)
    by_id = {s.clip_id: s for s in corpus.samples(split=config.evaluation.split)}
    detectors = load_detectors([output / "detectors" / n for n in config.detectors if not is_corpus_check(n)])
    rows = []
    scores["label"] = scores["label"].map(lambda v: "fake" if v in (1, "fake") else "real")  # stored as 0/1
    for name, part in scores.groupby("detector", sort=True):
        worst = pd.concat([part[part["label"] == "real"].nlargest(WORST_CLIPS, "score"),
                           part[part["label"] == "fake"].nsmallest(WORST_CLIPS, "score")])
        for r in worst.itertuples():
            sample = by_id.get(r.clip_id)
            if sample is None or name not in detectors:
                continue
            verdict = detect_clips([sample], {name: detectors[name]})[0]
            per = verdict.detectors[0]
            rows.append({"clip_id": r.clip_id, "path": os.path.relpath(sample.path, output),
                         "label": r.label, "generator": r.generator, "detector": name, "p_fake": float(r.score),
                         "evidence": json.dumps(per.get("evidence", [])), "frames": json.dumps(per.get("frames", []))})
            sample.release()
    write_table(output / "evaluation" / "evidence.parquet", rows, Provenance.make("evidence"))
    return {}
