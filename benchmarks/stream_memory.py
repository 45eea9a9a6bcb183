"""Peak memory and time of `fakebench generate` against audio length: 1, 5 and 10 minutes of song.

    python benchmarks/stream_memory.py                  # warp: 1, 5, 10 minutes (about 10 minutes on 2 busy cores)
    python benchmarks/stream_memory.py --generator sda  # the sda generator (its default checkpoint)
    python benchmarks/stream_memory.py --minutes 1,2 --no-record

Target (issue 18, "Expressive generation"): a long song streams through generation to the writer in bounded
memory: the peak at 10 minutes within 10-20% of the peak at 1 minute. The audio is espeak-ng singing "Twinkle,
twinkle" (`fakebench.speech.sing`, made offline), repeated to length, written as 16-bit wav at espeak's 22050 Hz;
the photo is the bundled astronaut, animated at --max-side 256 (256x256 frames, so that 10 minutes of video encode
in minutes on a 2-core machine; the frames' size does not change what is measured: whether memory grows with the
clip's length). Each run is `fakebench generate` in a fresh process whose own high-water mark (VmHWM, see
procmem.py) is recorded; for contrast, one row holds the whole clip in memory as before streaming (warp's
`generate` then `save`, 1 minute). Prints a table and writes benchmarks/results/stream_memory.json with the load
average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "stream_memory.json"
MAX_SIDE = 256


def child(report: Path, argv: list[str]) -> None:
    """Run `fakebench ARGV` (or, with argv[0] == "whole", generate-then-save) and record this process's peak."""
    from procmem import peak_rss_mib

    code = 0
    try:
        if argv[0] == "whole":
            from fakebench.assets import load_photo
            from fakebench.generators.base import create
            from fakebench.media import read_audio

            audio, sr = read_audio(argv[1])
            create(argv[3], max_side=MAX_SIDE).generate(load_photo("astronaut"), audio, sr).save(argv[2])
        else:
            from fakebench.cli import main

            sys.argv = ["fakebench", *argv]
            main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    report.write_text(json.dumps({"peak_rss_mib": round(peak_rss_mib(), 1), "exit_code": code}))


def run(argv: list[str], tmp: Path) -> dict:
    report = tmp / "report.json"
    report.unlink(missing_ok=True)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--child", str(report), "--", *argv], capture_output=True,
                          text=True, timeout=7200)
    seconds = time.perf_counter() - t0
    if done.returncode != 0 or not report.is_file():
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr[-2000:]}")
    result = json.loads(report.read_text())
    if result["exit_code"] != 0:
        raise SystemExit(f"{' '.join(argv)} exited {result['exit_code']}: {done.stdout[-1000:]} {done.stderr[-1000:]}")
    return {"peak_rss_mib": result["peak_rss_mib"], "seconds": round(seconds, 1), "load_before": round(load, 2),
            "load_after": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", default="1,5,10")
    parser.add_argument("--generator", default="warp", help="warp (default) or sda")
    parser.add_argument("--no-whole", action="store_true", help="Skip the whole-clip contrast row.")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.child:
        child(args.child, [a for a in rest if a != "--"])
        return

    import numpy as np

    from fakebench.assets import load_photo
    from fakebench.media import write_audio, write_image
    from fakebench.speech import DEMO_LYRICS, DEMO_NOTES, sing

    minutes = [float(m) for m in args.minutes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="fakebench-stream-") as tmp:
        tmp = Path(tmp)
        photo = write_image(tmp / "astronaut.png", load_photo("astronaut"))
        song, sr = sing(DEMO_LYRICS, DEMO_NOTES)
        for m in minutes:
            audio = write_audio(tmp / f"song_{m:g}min.wav", np.resize(song, int(m * 60 * sr)), sr)
            out = tmp / f"song_{m:g}min.mp4"
            measured = run(["generate", "--generator", args.generator, "--image", str(photo), "--audio", str(audio),
                            "--max-side", str(MAX_SIDE), "-o", str(out)], tmp)
            truth = json.loads(out.with_suffix(".json").read_text())
            rows.append({"generator": args.generator, "path": "fakebench generate (streamed)", "audio_minutes": m,
                         "frames": truth["n_frames"], "singing": truth.get("singing"), **measured})
            print(f"{m:g} min: {measured}", flush=True)
            out.unlink()
        if not args.no_whole:
            audio = tmp / f"song_{minutes[0]:g}min.wav"
            measured = run(["whole", str(audio), str(tmp / "whole.mp4"), args.generator], tmp)
            rows.append({"generator": args.generator, "path": "generate() + save (whole clip held)",
                         "audio_minutes": minutes[0],
                         "frames": None, "singing": None, **measured})
    base = rows[0]["peak_rss_mib"]
    print(f"\n{'path':38} {'audio min':>9} {'frames':>7} {'peak MiB':>9} {'vs first':>8} {'seconds':>8}")
    for r in rows:
        print(f"{r['path']:38} {r['audio_minutes']:9g} {r['frames'] or '':>7} {r['peak_rss_mib']:9.1f} "
              f"{r['peak_rss_mib'] / base - 1:+8.1%} {r['seconds']:8.1f}")
    if not args.no_record:  # rows of the other generators are kept
        RESULTS.parent.mkdir(exist_ok=True)
        kept = []
        if RESULTS.is_file():
            kept = [{"generator": "warp", **r} for r in json.loads(RESULTS.read_text()).get("rows", [])]
            kept = [r for r in kept if r["generator"] != args.generator]
        RESULTS.write_text(json.dumps({"benchmark": "stream_memory", "max_side": MAX_SIDE, "cpu_count": os.cpu_count(),
                                       "machine": platform.machine(), "python": platform.python_version(),
                                       "rows": kept + rows}, indent=1) + "\n")
        print(f"recorded {RESULTS}")


if __name__ == "__main__":
    main()
