"""Map a function over many work items: in this process, in a process pool, or on Ray; resumable.

Each item is a `Task` with a unique key. The function runs on the task's payload and returns a small
JSON-able dict (a manifest row, say); whatever big output it makes (video files) it writes itself,
atomically. Right after the function returns, the worker that ran it writes a finished-marker
``STATE/done/KEY.json`` holding the result (temp file, then rename), so:

- a task whose marker exists is never run again, whichever process or machine finished it;
- a run killed at any moment (even ``kill -9``) restarts where it stopped: at most the tasks that were
  running are redone, and a half-written file is never taken as finished (the marker comes after it);
- a task that raises is recorded in ``STATE/failed/KEY.json`` with its error, and the others go on;
  the next run tries it again.

A task may have *parts*: several results made from one shared piece of work (a corpus build makes all the
outputs of one real clip in one task, decoding the clip once). Then `fn` returns an iterable of
``(part_key, make)`` pairs and each ``make()`` returns that part's result; every part has its own marker,
so a finished part is never made again and a failing part is recorded while its siblings go on.

Tasks are taken from an iterator and only a few (two per worker) are in flight at once, and results are
written to disk rather than kept, so memory stays bounded whatever the number of tasks.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fakebench.errors import ConfigError, FakebenchError
from fakebench.io import write_json_atomic
from fakebench.progress import Progress, stage

EXECUTORS = ("local", "pool", "ray")
IN_FLIGHT_PER_WORKER = 2
_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]{0,200}$")


@dataclass(frozen=True)
class Task:
    key: str  # unique within a run; also the marker's file name (of a task without parts)
    payload: Any  # picklable: what the function needs to do this task
    parts: tuple[str, ...] = ()  # the keys of the results a task with parts makes (see the module's doc)

    @property
    def result_keys(self) -> tuple[str, ...]:
        return self.parts or (self.key,)


class WorkerCrashError(FakebenchError):
    """A pool worker process died (killed, out of memory) and took the pool down."""


@dataclass
class RunSummary:
    total: int = 0
    done_before: int = 0  # finished by an earlier run, skipped
    done_now: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # key -> one-line error
    seconds: float = 0.0

    @property
    def done(self) -> int:
        return self.done_before + self.done_now


# ---------------------------------------------------------------------------------------------- markers

def check_key(key: str) -> str:
    if not _SAFE_KEY.match(key):
        raise ConfigError(f"task key {key!r} is not usable as a file name; use letters, digits and . _ - = +")
    return key


def read_marker(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class ResumeState:
    """The markers of one run's folder: ``done/`` (results) and ``failed/`` (errors)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.done_dir = self.folder / "done"
        self.failed_dir = self.folder / "failed"

    def prepare(self) -> None:
        for d in (self.done_dir, self.failed_dir):
            d.mkdir(parents=True, exist_ok=True)
            for stale in d.glob(".*.tmp"):  # a marker being written when the last run was killed
                stale.unlink(missing_ok=True)

    def is_done(self, key: str) -> bool:
        return (self.done_dir / f"{key}.json").is_file()

    def mark_done(self, key: str, result: dict) -> None:
        write_json_atomic(self.done_dir / f"{key}.json", {"key": key, "result": result})
        (self.failed_dir / f"{key}.json").unlink(missing_ok=True)

    def mark_failed(self, key: str, error: str, kind: str) -> None:
        write_json_atomic(self.failed_dir / f"{key}.json", {"key": key, "error": error, "type": kind})

    def results(self) -> Iterator[dict]:
        """Every finished task's result, in key order (read one at a time)."""
        for path in sorted(self.done_dir.glob("*.json")):
            marker = read_marker(path)
            if marker is not None:
                yield marker["result"]

    def failures(self) -> dict[str, str]:
        out = {}
        for path in sorted(self.failed_dir.glob("*.json")):
            marker = read_marker(path)
            if marker is not None:
                out[marker["key"]] = marker["error"]
        return out


# ---------------------------------------------------------------------------------------------- workers

def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and `taskset` narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# Threads each pool or Ray worker gives torch and the video decoders. One: a pool's parallelism is across
# tasks (one worker per core by default). Measured on a corpus build (32 clips of 256x256, 2 cores, one worker):
# 74.5 s with one thread, 86-96 s with two (torch's OpenMP threads spin between the small ops of a clip and
# compete with the worker itself), 78 s with two passive ones; benchmarks/corpus.py.
WORKER_THREADS = 1


def init_worker(modules: tuple[str, ...] = (), threads: int = 1) -> None:
    """Per worker process: `threads` torch and video-decoder threads (a user's $FAKEBENCH_DECODER_THREADS wins
    for the decoders), and the modules that register plugins (generators defined outside fakebench) imported, so
    their registries match the parent's."""
    from fakebench.media import DECODER_THREADS_ENV

    os.environ.setdefault(DECODER_THREADS_ENV, str(threads))
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass
    for name in modules:
        importlib.import_module(name)


Outcome = tuple[str, bool, str]  # (result key, finished, one-line error)


def run_one(fn: Callable[[Any], Any], task: Task, state_folder: str) -> list[Outcome]:
    """Run one task and write a marker per result; the parts finished earlier are skipped. Returns one outcome
    per result made or tried. Never raises for the task's errors."""
    state = ResumeState(state_folder)
    if not task.parts:
        return [_run_and_mark(state, task.key, lambda: fn(task.payload))]
    outcomes = []
    try:
        for key, make in fn(task.payload):
            if key not in task.parts:
                raise ValueError(f"task {task.key} made a result {key!r} that is not one of its parts")
            if not state.is_done(key):
                outcomes.append(_run_and_mark(state, key, make))
    except Exception as e:  # the task's own set-up failed: every part not yet tried fails with it
        tried = {o[0] for o in outcomes}
        outcomes += [_mark_failed(state, key, e) for key in task.parts if key not in tried and not state.is_done(key)]
    return outcomes


def _run_and_mark(state: ResumeState, key: str, make: Callable[[], dict]) -> Outcome:
    try:
        result = make()
    except Exception as e:  # isolation: one bad clip must not stop the others
        return _mark_failed(state, key, e)
    state.mark_done(key, result)
    return key, True, ""


def _mark_failed(state: ResumeState, key: str, e: Exception) -> Outcome:
    message = e.one_line() if isinstance(e, FakebenchError) else f"{type(e).__name__}: {' '.join(str(e).split())}"
    state.mark_failed(key, message[:2000], type(e).__name__)
    return key, False, message


# ---------------------------------------------------------------------------------------------- running

def check_executor(executor: str, workers: int) -> None:
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a whole number >= 1, got {workers!r}")


def run_tasks(fn: Callable[[Any], Any], tasks: Iterable[Task], state_folder: str | os.PathLike, *,
              executor: str = "local", workers: int = 1, total: int | None = None, description: str = "tasks",
              progress: Progress | None = None, ray_address: str | None = None,
              plugin_modules: tuple[str, ...] = (),
              preload: tuple[str, ...] = (),
              on_result: Callable[[str, bool, str], None] | None = None) -> RunSummary:
    """Run `fn` over `tasks` (skipping finished ones) and return counts; results stay in the markers.

    ``fn`` must be a module-level function (it is pickled for pool and Ray workers); it returns the task's
    result, or for a task with parts an iterable of ``(part_key, make)`` (see the module's doc). ``plugin_modules`` are
    imported in each worker first. ``preload`` names modules slow to import that `fn` needs: the pool imports
    them once, in the server its workers fork from. ``on_result(key, finished, error)`` is called in this
    process per result. ``progress`` (see `fakebench.progress`) is advanced once per result, finished earlier,
    now, or failed.
    """
    check_executor(executor, workers)
    state = ResumeState(state_folder)
    state.prepare()
    summary = RunSummary()
    t0 = time.perf_counter()
    seen: set[str] = set()

    def pending() -> Iterator[Task]:
        for task in tasks:
            unfinished = False
            for key in task.result_keys:
                check_key(key)
                if key in seen:
                    raise ConfigError(f"two tasks have the key {key!r}; every clip id must be unique")
                seen.add(key)
                summary.total += 1
                if state.is_done(key):
                    summary.done_before += 1
                    bar.advance()
                else:
                    unfinished = True
            if unfinished:
                yield task

    def record(outcomes: list[Outcome]) -> None:
        for key, finished, error in outcomes:
            if finished:
                summary.done_now += 1
            else:
                summary.failed[key] = error
            bar.advance(failed=not finished)
            if on_result is not None:
                on_result(key, finished, error)

    with stage(progress, total, description) as bar:
        if executor == "local":
            for task in pending():
                record(run_one(fn, task, str(state.folder)))
        elif executor == "pool":
            _run_pool(fn, pending(), str(state.folder), workers, plugin_modules, preload, record)
        else:
            _run_ray(fn, pending(), str(state.folder), workers, plugin_modules, record, ray_address)
    summary.seconds = time.perf_counter() - t0
    return summary


def start_pool_server(preload: Iterable[str]):
    """Start the server the pool's workers fork from, importing `preload` there, and return the pool's
    multiprocessing context. The server imports in the background: a command that calls this first does its own
    set-up meanwhile. Once started, the server keeps its modules (a later call's `preload` is ignored).

    forkserver: workers fork from a clean server process (no torch threads started, unlike this one may have),
    so forking is safe and quick, and the heavy modules are imported once for all workers."""
    import multiprocessing as mp
    from multiprocessing import forkserver

    context = mp.get_context("forkserver")
    context.set_forkserver_preload(list(dict.fromkeys(m for m in preload if m != "__main__")))
    forkserver.ensure_running()
    return context


def _run_pool(fn, tasks: Iterator[Task], folder: str, workers: int, modules: tuple[str, ...],
              preload: tuple[str, ...], record) -> None:
    context = start_pool_server((fn.__module__, "torch", *preload, *modules))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=init_worker,
                             initargs=(modules, WORKER_THREADS)) as pool:
        in_flight: dict[Future, str] = {}

        def collect(return_when: str) -> None:
            finished, _ = wait(in_flight, return_when=return_when)
            for f in finished:
                key = in_flight.pop(f)
                try:
                    outcome = f.result()
                except BrokenProcessPool:
                    running = ", ".join(sorted([key, *in_flight.values()]))
                    raise WorkerCrashError(f"a worker process died (killed, or out of memory?) while making one of "
                                           f"{running}; finished work is kept: run the same command again to "
                                           "resume") from None
                record(outcome)

        for task in tasks:
            in_flight[pool.submit(run_one, fn, task, folder)] = task.key
            if len(in_flight) >= workers * IN_FLIGHT_PER_WORKER:
                collect(FIRST_COMPLETED)
        while in_flight:
            collect(FIRST_COMPLETED)


def _run_ray(fn, tasks: Iterator[Task], folder: str, workers: int, modules: tuple[str, ...], record,
             address: str | None) -> None:
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'fakebench[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_cpus=1)(_ray_task)
    in_flight: dict = {}  # ObjectRef -> task key
    tasks_by_key: dict[str, Task] = {}

    def collect() -> None:
        finished, _ = ray.wait(list(in_flight), num_returns=1)
        for ref in finished:
            task = tasks_by_key.pop(in_flight.pop(ref))
            try:
                outcomes = ray.get(ref)
            except ray.exceptions.RayError as e:  # the worker died: the task failed, the others go on
                message = f"the Ray worker died: {' '.join(str(e).split())[:300]}"
                state = ResumeState(folder)
                outcomes = [(k, False, message) for k in task.result_keys if not state.is_done(k)]
                for k, _, _ in outcomes:
                    state.mark_failed(k, message, type(e).__name__)
            record(outcomes)

    try:
        for task in tasks:
            in_flight[remote.remote(fn, task, folder, modules)] = task.key
            tasks_by_key[task.key] = task
            if len(in_flight) >= workers * IN_FLIGHT_PER_WORKER:
                collect()
        while in_flight:
            collect()
    finally:
        if started_here:
            ray.shutdown()


def _ray_task(fn, task: Task, folder: str, modules: tuple[str, ...]) -> list[Outcome]:
    init_worker(modules, threads=WORKER_THREADS)  # each Ray task reserves one CPU (num_cpus=1)
    return run_one(fn, task, folder)
