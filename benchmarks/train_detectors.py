"""Training time of every registered detector on the demo corpus, 2 cores, CPU.

    python benchmarks/train_detectors.py [--corpus DIR] [--no-record]

Target (issue "Detectors"): each detector trains in at most 5 minutes on the demo corpus on 2 cores. The corpus is
the demo benchmark's (benchmarks/configs/demo.yaml: 2 clips per identity, 6 looks of each bundled photo, fakes
from desync, static and sda), built once into --corpus (default: a temporary folder) unless it is there already.
Each detector is trained on the train split with the val split for model selection, then scored on the test
split (held-out person) so the table shows what the time bought. Prints a table and writes
benchmarks/results/train_detectors.json with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "train_detectors.json"
TARGET_S = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="Demo corpus folder (built here when missing).")
    parser.add_argument("--only", help="Comma-separated detectors to (re)measure; recorded rows of the others kept.")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    from fakebench.corpus.demo import make_demo_corpus
    from fakebench.corpus.manifest import load_corpus
    from fakebench.detection import train_detector
    from fakebench.detectors.base import DETECTORS
    from fakebench.evaluation import evaluate_scores

    with tempfile.TemporaryDirectory(prefix="fakebench-train-bench-") as tmp:
        folder = args.corpus or Path(tmp) / "demo"
        if not (folder / "manifest.parquet").is_file():
            make_demo_corpus(folder, clips_per_identity=2, variants=6, generators=("desync", "static", "sda"),
                             workers=2, executor="pool")
        corpus = load_corpus(folder)
        train, val, test = (corpus.samples(split=s) for s in ("train", "val", "test"))
        for sample in (*train, *val, *test):  # face tracks cached first: the timing is the training itself
            _ = sample.track
            sample.release()
        load_before = os.getloadavg()[0]
        rows = []
        names = args.only.split(",") if args.only else DETECTORS.names()
        for name in names:
            t0 = time.perf_counter()
            detector = train_detector(name, train, val, Path(tmp) / "detectors" / name, seed=0)
            seconds = time.perf_counter() - t0
            scored = detector.score(test)
            ok = [i for i, p in enumerate(scored.p_fake) if p == p]
            auc = evaluate_scores([test[i].label for i in ok], [scored.p_fake[i] for i in ok],
                                  [test[i].identity for i in ok], n_boot=200)["auc"]
            rows.append({"detector": name, "train_s": round(seconds, 1), "test_auc": round(float(auc), 3),
                         "n_train": len(train), "n_val": len(val), "n_test": len(ok)})
            for sample in (*train, *val, *test):
                sample.release()
    print(f"{'detector':<16s}{'train s':>10s}{'test AUC':>10s}  (target: <= {TARGET_S:.0f} s each)")
    for r in rows:
        flag = "" if r["train_s"] <= TARGET_S else "  OVER TARGET"
        print(f"{r['detector']:<16s}{r['train_s']:>10.1f}{r['test_auc']:>10.3f}{flag}")
    if not args.no_record:
        stamp = {"date": time.strftime("%Y-%m-%d %H:%M"),
                 "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
        rows = [{**r, **stamp} for r in rows]
        if args.only and RESULTS.is_file():
            rows = [r for r in json.loads(RESULTS.read_text())["rows"] if r["detector"] not in names] + rows
        record = {**stamp, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                  "corpus": "demo: 2 clips x 6 looks x 2 photos, fakes desync/static/sda",
                  "rows": sorted(rows, key=lambda r: r["detector"])}
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(record, indent=1) + "\n")
        print(f"recorded in {RESULTS}")


if __name__ == "__main__":
    main()
