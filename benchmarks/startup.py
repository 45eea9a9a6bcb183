"""Benchmark of `fakebench analyze`'s start-up: whole-process time for a 20 s 176x144 clip and its fixed costs.

    python benchmarks/startup.py                      # the working tree; 3 whole-process runs
    git archive c41ddb1 | tar -x -C /tmp/before       # an older version, measured the same way:
    python benchmarks/startup.py --root /tmp/before --label before

Target (issue 15 section 4): `fakebench analyze` of a 20 s 176x144 25 fps clip, cold cache, whole process,
at >= 3x real time (<= 6.7 s). The clip is the one benchmarks/analyze.py makes (a bundled real photo under
smooth head motion, H.264 with speech). Fixed costs are measured in fresh processes: the interpreter's start,
importing the CLI and fakebench.faces, importing torch (for reference: not on the analyze path since the
NumPy MTCNN), loading the face detector, loading dlib's landmark model, the first frames, then the rate per
frame with everything loaded. Prints a table and records benchmarks/results/startup.json (one entry per
--label, with the load average: others share the cores, and a loaded machine is slower).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "startup.json"
SECONDS, SIZE, FPS = 20.0, (144, 176), 25.0
CLI = "import sys; from fakebench.cli import main; sys.exit(main(sys.argv[1:]))"


def child_breakdown(clip: Path) -> dict:
    """Run in a fresh process: time each fixed cost in the order `fakebench analyze` meets it."""
    import inspect

    t0 = time.perf_counter()
    out: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal t0
        now = time.perf_counter()
        out[name] = round(now - t0, 3)
        t0 = now

    import fakebench.cli  # noqa: F401
    import fakebench.faces as faces
    lap("import_cli_and_faces_s")
    new = "device" not in inspect.signature(faces._mtcnn).parameters
    if not new:  # the facenet-pytorch detector: torch first, then facenet_pytorch's package
        import torch  # noqa: F401
        lap("import_torch_s")
    detector = faces._mtcnn(20) if new else faces._mtcnn("cpu", 20)
    lap("detector_load_s")
    faces._shape_predictor()
    lap("dlib_model_load_s")
    from fakebench.media import Clip, read_clip

    frames = read_clip(clip).frames
    t0 = time.perf_counter()
    faces.analyze(Clip(frames=frames[:2], fps=FPS), use_cache=False)
    lap("first_frames_s")  # two frames: one detection, one landmark fit, one tracked frame
    track = faces.analyze(clip, use_cache=False)
    lap("analysis_s")
    out["frames"] = track.n_frames
    out["frames_per_s"] = round(track.n_frames / out["analysis_s"], 1)
    out["detector"] = type(detector).__module__
    return out


def timed(cmd: list[str], env: dict) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + system of the child) of one command, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    # Run from a neutral folder: `python -c` puts the working directory first on sys.path, ahead of --root.
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])}... failed:\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout


def measure(clip: Path, root: Path | None, runs: int) -> dict:
    env = dict(os.environ)
    if root is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    py = sys.executable
    load_before = os.getloadavg()[0]
    start = min(timed([py, "-c", "pass"], env)[0] for _ in range(5))
    torch_s = min(timed([py, "-c", "import torch"], env)[0] for _ in range(2)) - start
    facenet_s = min(timed([py, "-c", "import torch, facenet_pytorch"], env)[0] for _ in range(2)) - start - torch_s
    whole = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as cache:
            wall, cpu, stdout = timed([py, "-c", CLI, "analyze", str(clip), "--json"], env | {"FAKEBENCH_CACHE": cache})
        summary = json.loads(stdout)
        assert summary["clip"] == str(clip), summary
        assert not summary["cache_hit"] and summary["face_frames"] == summary["frames"], summary
        whole.append((wall, cpu))
    _, _, stdout = timed([py, __file__, "--child", str(clip)], env)
    breakdown = json.loads(stdout.strip().splitlines()[-1])
    wall = statistics.median(w for w, _ in whole)
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"), "source": str(root or Path(__file__).resolve().parent.parent),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "whole_process_s": [round(w, 2) for w, _ in whole], "whole_process_cpu_s": [round(c, 2) for _, c in whole],
        "median_s": round(wall, 2), "realtime_factor": round(SECONDS / wall, 2),
        "breakdown": {"python_start_s": round(start, 3), **breakdown,
                      "reference_import_torch_s": round(torch_s, 3),
                      "reference_import_facenet_pytorch_after_torch_s": round(facenet_s, 3)},
        "target_realtime>=3": SECONDS / wall >= 3.0,
    }


def print_table(results: dict) -> None:
    print(f"\n`fakebench analyze`, {SIZE[1]}x{SIZE[0]} {SECONDS:g} s {FPS:g} fps clip, cold cache, whole process, "
          f"on {platform.machine()}, {os.cpu_count()} cores")
    labels = list(results)
    rows = [("whole process, median s", "median_s"), ("real-time factor (goal >= 3)", "realtime_factor"),
            ("CPU s of the runs", "whole_process_cpu_s"), ("load average (before, after)", "load_average")]
    keys = list(dict.fromkeys(k for r in results.values() for k in r["breakdown"]))
    print(f"{'':44}" + "".join(f"{label:>22}" for label in labels))
    for name, key in rows:
        print(f"{name:44}" + "".join(f"{str(results[label][key]):>22}" for label in labels))
    for key in keys:
        print(f"  {key:42}" + "".join(f"{str(results[label]['breakdown'].get(key, '-')):>22}" for label in labels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="measure the fakebench sources under this folder instead")
    parser.add_argument("--label", default="current", help="the entry of the results file to (re)write")
    parser.add_argument("--runs", type=int, default=3, help="whole-process runs (the median is reported)")
    parser.add_argument("--clip", type=Path, help="use this clip instead of making one")
    parser.add_argument("--no-record", action="store_true", help="print only; leave the results file alone")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_breakdown(args.child)))
        return
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        clip = args.clip.resolve() if args.clip else None
        if clip is None:
            sys.path.insert(0, str(Path(__file__).parent))
            from analyze import make_clip

            clip = Path(tmp) / "clip_176x144_20s.mp4"
            make_clip(clip, SIZE, SECONDS, FPS)
        result = measure(clip, args.root, args.runs)
    results = {**previous.get("versions", {}), args.label: result}
    print_table(results)
    print(f"target (>= 3x real time): {'met' if result['target_realtime>=3'] else 'NOT met'} "
          f"({result['realtime_factor']}x, load average {result['load_average']})")
    if not args.no_record:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        record = {"machine": f"{platform.machine()}, {os.cpu_count()} cores",
                  "clip": f"{SIZE[1]}x{SIZE[0]}, {SECONDS:g} s, {FPS:g} fps", "versions": results}
        RESULTS.write_text(json.dumps(record, indent=1) + "\n")
        print(f"recorded in {RESULTS}")


if __name__ == "__main__":
    main()
