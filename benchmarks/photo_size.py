"""Benchmark of a phone-size photo: `fakebench generate` on a 12 MP (4000x3000) photo, at the default
`max_side` and at full size, for the photo generators warp and static.

    python benchmarks/photo_size.py                     # warp and static, default and full size, 4 s of speech
    python benchmarks/photo_size.py --only warp --seconds 2

The photo is a real face photo that a dependency ships (scikit-image's astronaut, 512x512), placed on a
4000x3000 canvas upscaled 4.5x (Lanczos) and saved as a JPEG, as a phone would; the audio is synthesized
speech (espeak-ng) saved as a wav. Each row is one whole `fakebench generate` process (the console
script's `main`), measured from outside: wall time, peak RSS (the child's own, from wait4's rusage, which
starts afresh at exec as VmHWM does; see procmem.py), the mp4's size, its frame size, and the H.264 profile
and level it declares (read back with PyAV). "full size" is ``--option max_side=8192``: the photo's own
size. Prints a table and writes benchmarks/results/photo_size.json, with the 1-minute load average before
and after each row (the machine may be shared).
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
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results" / "photo_size.json"
GENERATORS = ("warp", "static")
SIZES = {"default": None, "full size": 8192}  # None: the generator's default max_side
PHOTO_SIZE = (4000, 3000)
SPEECH = "The quick brown fox jumps over the lazy dog while we benchmark talking faces."


def make_photo(path: Path) -> Path:
    """A 4000x3000 JPEG: the astronaut portrait upscaled onto a grey canvas (a phone photo's size)."""
    from PIL import Image

    from fakebench.assets import load_photo

    face = Image.fromarray(load_photo("astronaut"))
    side = PHOTO_SIZE[1]
    canvas = Image.new("RGB", PHOTO_SIZE, (118, 120, 124))
    canvas.paste(face.resize((side, side), Image.LANCZOS), ((PHOTO_SIZE[0] - side) // 2, 0))
    canvas.save(path, quality=92)
    return path


def make_audio(path: Path, seconds: float, sample_rate: int = 16000) -> Path:
    """Synthesized speech repeated to ``seconds``, as a wav."""
    from fakebench.media import resample_audio, write_audio
    from fakebench.speech import synthesize

    audio, sr, _ = synthesize(SPEECH)
    audio = resample_audio(audio, sr, sample_rate)
    n = int(round(seconds * sample_rate))
    write_audio(path, np.tile(audio, int(np.ceil(n / audio.size)))[:n].astype(np.float32), sample_rate)
    return path


def stream_info(path: Path) -> dict[str, Any]:
    import av

    with av.open(str(path)) as c:
        cc = c.streams.video[0].codec_context
        return {"width": cc.width, "height": cc.height, "profile": cc.profile, "level": cc.level / 10}


def run_generate(generator: str, max_side: int | None, photo: Path, audio: Path, out: Path,
                 env: dict[str, str]) -> dict[str, Any]:
    cmd = [sys.executable, "-c", "import sys; from fakebench.cli import main; sys.exit(main())", "generate",
           "-g", generator, "--image", str(photo),
           "--audio", str(audio), "-o", str(out)]
    if max_side is not None:
        cmd += ["--option", f"max_side={max_side}"]
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    load = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    code = os.waitstatus_to_exitcode(status)
    row: dict[str, Any] = {"max_side": max_side, "wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024,
                           "cpu_s": usage.ru_utime + usage.ru_stime, "load_average": load}
    if code != 0:
        tail = (stderr or stdout).strip().splitlines()[-3:]
        return {**row, "error": f"exit {code}: " + " | ".join(tail)}
    return {**row, "output_mib": out.stat().st_size / 2**20, **stream_info(out)}


def print_table(results: dict[str, Any]) -> None:
    print(f"\n{results['photo']}, {results['seconds']:g} s of speech, on {results['machine']}, "
          f"load average {results['load_average_start']} -> {results['load_average_end']}")
    print(f"{'generator':<9} {'max side':<16} {'frames':>10} {'wall s':>7} {'CPU s':>7} {'peak RSS MiB':>13} "
          f"{'mp4 MiB':>8} {'H.264':>10}   load")
    for name, rows in results["generators"].items():
        for label, r in rows.items():
            side = f"{label} ({r['max_side'] or results['default_max_side']})"
            if "error" in r:
                print(f"{name:<9} {side:<16} failed: {r['error']}")
                continue
            print(f"{name:<9} {side:<16} {r['width']:>4}x{r['height']:<5} {r['wall_s']:7.1f} {r['cpu_s']:7.1f} "
                  f"{r['peak_rss_mib']:13.0f} {r['output_mib']:8.2f} {r['profile'] + ' ' + str(r['level']):>10}"
                  f"   {r['load_average']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds of speech (default 4)")
    parser.add_argument("--only", nargs="*", help="generator names to run (default: warp static)")
    args = parser.parse_args()
    from fakebench.generators.base import DEFAULT_MAX_SIDE

    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "photo": f"{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEG (astronaut, upscaled)", "seconds": args.seconds,
        "default_max_side": DEFAULT_MAX_SIDE, "load_average_start": round(os.getloadavg()[0], 2),
        "generators": {},
    }
    with tempfile.TemporaryDirectory(prefix="fakebench-bench-") as tmp:
        t = Path(tmp)
        photo, audio = make_photo(t / "photo.jpg"), make_audio(t / "speech.wav", args.seconds)
        env = {**os.environ, "FAKEBENCH_CACHE": str(t / "cache")}
        for name in args.only or GENERATORS:
            for label, side in SIZES.items():
                print(f"{name}, {label}: running...", flush=True)
                row = run_generate(name, side, photo, audio, t / f"{name}-{side}.mp4", env)
                results["generators"].setdefault(name, {})[label] = row
    results["load_average_end"] = round(os.getloadavg()[0], 2)
    print_table(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"recorded in {RESULTS}")


if __name__ == "__main__":
    main()
