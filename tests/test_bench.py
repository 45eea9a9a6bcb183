"""`fakebench bench`: one config runs the whole benchmark, resumes, does no work twice, and refuses a bad config
in one line before any work."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from helpers import assert_user_error, run

from fakebench.bench import STAGES, parse_config, run_bench
from fakebench.errors import ConfigError
from fakebench.tables import read_table

pytestmark = pytest.mark.slow  # builds a corpus and trains detectors

TINY = """\
name: tiny
corpus:
  demo: {clips_per_identity: 1, variants: 3}
generators: [desync, static]
metrics: [sync, blink]
compare: [fid]
detectors: [shortcut, sync, blink]
evaluation: {perturbations: ["blur:2"], cross_generator: true, n_boot: 100}
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bench")
    (root / "tiny.yaml").write_text(TINY)
    result = run_bench(root / "tiny.yaml", root / "run")
    assert result.stages_run == list(STAGES) and result.failures == 0
    return root / "run"


def test_a_small_benchmark_writes_every_table_the_report_reads(tiny_run):
    info = json.loads((tiny_run / "run.json").read_text())
    assert info["synthetic_reference"] is True and info["config"]["name"] == "tiny"
    assert all(info["stages"][s]["done"] for s in STAGES)
    assert info["corpus"]["n_identities"] == 6 and info["corpus"]["generators"] == ["desync", "static"]
    assert {"numpy", "torch", "python"} <= set(info["versions"])
    manifest = pd.read_parquet(tiny_run / "corpus" / "manifest.parquet")
    metrics = pd.DataFrame(read_table(tiny_run / "metrics.parquet")[0])
    assert sorted(metrics["clip_id"]) == sorted(manifest["clip_id"])  # every clip measured once
    desync = metrics[metrics["generator"] == "desync"]
    truth = manifest.set_index("clip_id")
    assert desync["sync_offset_frames"].notna().all()
    evaluation = pd.DataFrame(read_table(tiny_run / "evaluation" / "evaluation.parquet")[0])
    assert {("sync", "none"), ("sync", "blur:2"), ("blink", "none"), ("shortcut", "none")} <= set(
        zip(evaluation["detector"], evaluation["perturbation"], strict=True))
    sync_desync = evaluation[(evaluation["detector"] == "sync") & (evaluation["perturbation"] == "none")
                             & (evaluation["generator"] == "desync")].iloc[0]
    assert sync_desync["auc"] >= 0.75, sync_desync  # sync sees shifted audio on unseen people (3 clips a side)
    cross = pd.DataFrame(read_table(tiny_run / "evaluation" / "cross_generator.parquet")[0])
    assert set(zip(cross["trained_on"], cross["tested_on"], strict=True)) >= {("desync", "static"),
                                                                              ("static", "desync")}
    shortcut = json.loads((tiny_run / "evaluation" / "shortcut.json").read_text())
    assert shortcut["ran"] and not shortcut["found"]
    evidence = pd.DataFrame(read_table(tiny_run / "evaluation" / "evidence.parquet")[0])
    assert len(evidence) and all(isinstance(json.loads(e), list) for e in evidence["evidence"])
    assert len(truth) == len(manifest)


def test_running_a_finished_run_again_does_no_work(tiny_run, capsys):
    before = {p: p.stat().st_mtime_ns for p in tiny_run.rglob("*") if p.is_file() and p.name != "run.json"}
    code, out, err = run(capsys, "bench", tiny_run / "config.yaml", "-o", tiny_run)
    assert code == 0, err
    assert "nothing to do" in " ".join(err.split())  # rich wraps the line at the terminal width
    after = {p: p.stat().st_mtime_ns for p in tiny_run.rglob("*") if p.is_file() and p.name != "run.json"}
    assert after == before


def test_a_killed_metrics_stage_resumes_and_a_clip_that_broke_is_exit_1(tiny_run, tmp_path, capsys):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    info = json.loads((run_dir / "run.json").read_text())
    for stage in ("metrics", "compare", "detectors", "evaluation", "cross_generator", "evidence"):
        info["stages"].pop(stage)
    (run_dir / "run.json").write_text(json.dumps(info))
    for later in ("detectors", "evaluation", "cross"):  # killed during metrics: the later stages never ran
        shutil.rmtree(run_dir / later)
    rows = read_table(run_dir / "metrics.parquet")[0]
    markers = sorted((run_dir / "metrics.state" / "done").glob("*.json"))
    for marker in markers[3:]:  # as if killed after three clips, with a marker half written
        marker.unlink()
    (run_dir / "metrics.state" / "done" / ".half.json.tmp").write_text('{"key": ')
    (run_dir / "metrics.parquet").unlink()
    kept_keys = {m.stem for m in markers[:3]}
    broken = next(p for p in sorted((run_dir / "corpus").rglob("*.static.0.mp4")) if p.stem not in kept_keys)
    broken.write_bytes(b"not a video any more")
    code, _, err = run(capsys, "bench", run_dir / "config.yaml", "-o", run_dir)
    assert code == 1, err
    metrics = pd.DataFrame(read_table(run_dir / "metrics.parquet")[0])
    assert len(metrics) == len(rows)
    assert metrics.set_index("clip_id").loc[broken.stem, "error"]  # the broken clip says why
    kept = json.loads(markers[0].read_text())["result"]
    assert metrics.set_index("clip_id").loc[kept["clip_id"], "sync_offset_frames"] == kept["sync_offset_frames"]


@pytest.mark.parametrize(("config", "needle"), [
    ({"corpus": {"demo": {}}, "generators": ["desync"], "colour": 1}, "colour: unknown key"),
    ({"corpus": {"demo": {"variants": "six"}}, "generators": ["desync"]}, "corpus.demo.variants: expected a whole"),
    ({"corpus": {"real": {"path": "/no/such/folder"}}, "generators": ["desync"]}, "corpus.real.path"),
    ({"corpus": {"demo": {}}, "generators": ["nope"]}, "generators[0].name: unknown generator"),
    ({"corpus": {"demo": {}}, "generators": ["desync"], "detectors": ["sync", "oracle"]}, "detectors[1]"),
    ({"corpus": {"demo": {}}, "generators": ["desync"], "evaluation": {"perturbations": ["blur:9"]}},
     "evaluation.perturbations"),
    ({"generators": ["desync"]}, "corpus: missing"),
])
def test_a_bad_config_is_one_line_naming_the_key(config, needle):
    with pytest.raises(ConfigError) as caught:
        parse_config(config)
    assert needle in caught.value.one_line()


def test_a_bad_config_exits_2_before_any_work(tmp_path, capsys):
    import yaml

    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"corpus": {"demo": {"clips_per_identity": 0}},
                                                       "generators": ["desync"]}))
    code, out, err = run(capsys, "bench", tmp_path / "bad.yaml", "-o", tmp_path / "run")
    assert_user_error(code, out, err, "corpus.demo.clips_per_identity")
    assert not (tmp_path / "run").exists()
    (tmp_path / "broken.yaml").write_text("corpus: [unclosed")
    code, out, err = run(capsys, "bench", tmp_path / "broken.yaml", "-o", tmp_path / "run")
    assert_user_error(code, out, err, "not valid YAML")


def test_the_example_configs_are_valid():
    from fakebench.bench import load_config

    folder = Path(__file__).resolve().parents[1] / "benchmarks" / "configs"
    configs = sorted(folder.glob("*.yaml"))
    assert {c.name for c in configs} >= {"demo.yaml"}
    for config in configs:
        try:
            load_config(config)
        except ConfigError as e:  # a dataset config names a folder this machine need not have
            assert "path" in e.one_line(), (config, e.one_line())


def test_demo_runs_its_config_and_writes_the_report(tiny_run, tmp_path, capsys):
    """`fakebench demo --config` = bench + report; here on the finished tiny run, so no stage works again."""
    import shutil

    shutil.copytree(tiny_run, tmp_path / "demo" / "run")
    code, out, err = run(capsys, "demo", "-o", tmp_path / "demo", "--config", tmp_path / "demo" / "run" / "config.yaml")
    assert code == 0, err
    index = tmp_path / "demo" / "report" / "index.html"
    assert index.is_file() and str(index) in out


def test_fakes_made_with_emotions_are_evaluated_per_emotion(tiny_run, tmp_path):
    """`corpus.real.emotion: random` reaches the corpus build: the warp fakes get emotions (desync, which has no
    emotion option, none), the expression metric measures every clip, and the evaluation writes per_emotion.parquet
    with one row per emotion of the test fakes, n_fake as the manifest counts them, against every real test clip."""
    import yaml

    from fakebench.report import write_report

    config = {"name": "emotions", "corpus": {"real": {"path": str(tiny_run / "corpus" / "reference"),
                                                      "emotion": "random"}},
              "generators": ["warp", "desync"], "metrics": ["expression"], "compare": [], "detectors": ["blink"],
              "evaluation": {"n_boot": 50}}
    (tmp_path / "emotions.yaml").write_text(yaml.safe_dump(config))
    result = run_bench(tmp_path / "emotions.yaml", tmp_path / "run")
    assert result.failures == 0
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["config"]["corpus"]["emotion"] == "random"
    manifest = pd.read_parquet(tmp_path / "run" / "corpus" / "manifest.parquet")
    warp = manifest[manifest["generator"] == "warp"]
    assert warp["emotion"].notna().all() and manifest[manifest["generator"] != "warp"]["emotion"].isna().all()
    metrics = pd.DataFrame(read_table(tmp_path / "run" / "metrics.parquet")[0])
    assert metrics["expression_emotion"].notna().all() and len(metrics) == len(manifest)
    # real and fake clips read alike (population norms), not the fakes against their source clips
    assert (metrics["expression_neutral"] == "population norms").all()
    assert metrics.loc[metrics["label"] == "fake", "reference"].notna().all()

    test = manifest[manifest["split"] == "test"]
    fakes = test[test["label"] == "fake"]
    want = fakes["emotion"].fillna("not set").value_counts().to_dict()
    rows, _ = read_table(tmp_path / "run" / "evaluation" / "per_emotion.parquet")
    blink = [r for r in rows if r["detector"] == "blink" and r["perturbation"] == "none"]
    assert {r["emotion"]: r["n_fake"] for r in blink} == want
    assert all(r["n_real"] == int((test["label"] == "real").sum()) for r in blink)
    for r in blink:  # each emotion's fakes against all real test clips: the mean intensity is theirs
        asked = fakes[fakes["emotion"] == r["emotion"]]["emotion_intensity"]
        assert (r["mean_intensity"] is None or r["mean_intensity"] != r["mean_intensity"]) if r["emotion"] == \
            "not set" else math.isclose(r["mean_intensity"], asked.mean())

    index = write_report([tmp_path / "run"], tmp_path / "report")
    html = index.read_text()
    assert "Detectors by the fakes&#39; emotion" in html or "Detectors by the fakes' emotion" in html
    assert "expression not neutral (share)" in html
