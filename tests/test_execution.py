"""Executors: the same results in-process, in a process pool and on Ray; failure isolation; resume."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fakebench.errors import ConfigError
from fakebench.execution import ResumeState, Task, run_tasks, threads_per_worker
from fakebench.media import decoder_threads


def square(payload: dict) -> dict:
    """The work of the tests: append to a call log, fail on request, report the worker's torch threads."""
    import torch

    with open(payload["log"], "a") as f:
        f.write(f"{payload['n']}\n")
    if payload["n"] in payload.get("fail", ()):
        raise ValueError(f"bad item {payload['n']}")
    return {"n": payload["n"], "square": payload["n"] ** 2, "threads": torch.get_num_threads(),
            "decoder_threads": decoder_threads(), "pid": os.getpid()}


def tasks(log: Path, n: int, fail: tuple[int, ...] = ()) -> list[Task]:
    return [Task(f"item-{i:03d}", {"n": i, "log": str(log), "fail": fail}) for i in range(n)]


def calls(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


def results(state: Path) -> dict[int, int]:
    return {r["n"]: r["square"] for r in ResumeState(state).results()}


def test_local_runs_every_task_isolates_failures_and_resumes(tmp_path):
    log = tmp_path / "calls.txt"
    summary = run_tasks(square, tasks(log, 8, fail=(3, 5)), tmp_path / "state", progress=False)
    assert (summary.total, summary.done_now, summary.done_before) == (8, 6, 0)
    assert set(summary.failed) == {"item-003", "item-005"}
    assert "ValueError: bad item 3" in summary.failed["item-003"]
    assert results(tmp_path / "state") == {i: i * i for i in range(8) if i not in (3, 5)}
    assert ResumeState(tmp_path / "state").failures().keys() == {"item-003", "item-005"}

    # the second run redoes only the failed ones; they succeed now, and their failure records go
    summary = run_tasks(square, tasks(log, 8), tmp_path / "state", progress=False)
    assert (summary.done_before, summary.done_now, summary.failed) == (6, 2, {})
    assert sorted(calls(log)) == sorted([*range(8), 3, 5])
    assert results(tmp_path / "state") == {i: i * i for i in range(8)}
    assert ResumeState(tmp_path / "state").failures() == {}


def test_a_half_written_marker_is_not_taken_as_finished(tmp_path):
    state = tmp_path / "state"
    (state / "done").mkdir(parents=True)
    (state / "done" / ".item-000.json.abc.tmp").write_text('{"key": "item-000", "res')  # killed mid-write
    log = tmp_path / "calls.txt"
    summary = run_tasks(square, tasks(log, 2), state, progress=False)
    assert summary.done_now == 2 and calls(log) == [0, 1]
    assert not list((state / "done").glob(".*"))
    marker = json.loads((state / "done" / "item-000.json").read_text())
    assert marker == {"key": "item-000", "result": {**marker["result"], "n": 0, "square": 0}}


def test_pool_gives_the_local_results_with_one_torch_thread_per_worker(tmp_path):
    log = tmp_path / "calls.txt"
    pulled = []

    def lazily():
        for task in tasks(log, 10, fail=(4,)):
            pulled.append(task.key)
            yield task

    in_flight = []
    summary = run_tasks(square, lazily(), tmp_path / "state", executor="pool", workers=2, progress=False,
                        on_result=lambda key, ok, error: in_flight.append(len(pulled) - len(in_flight) - 1))
    assert summary.done_now == 9 and list(summary.failed) == ["item-004"]
    assert results(tmp_path / "state") == {i: i * i for i in range(10) if i != 4}
    workers = list(ResumeState(tmp_path / "state").results())
    share = threads_per_worker(2)  # the cores shared among the workers (1 each on a 2-core machine)
    assert {r["threads"] for r in workers} == {share}
    assert {r["decoder_threads"] for r in workers} == {share}
    assert len({r["pid"] for r in workers} - {os.getpid()}) >= 1
    assert max(in_flight) <= 2 * 2  # tasks are pulled lazily: at most two per worker ahead of the results


def test_bad_options_and_keys_are_user_errors(tmp_path):
    log = tmp_path / "calls.txt"
    with pytest.raises(ConfigError, match="unknown executor"):
        run_tasks(square, tasks(log, 1), tmp_path / "s", executor="dask", progress=False)
    with pytest.raises(ConfigError, match="workers"):
        run_tasks(square, tasks(log, 1), tmp_path / "s", workers=0, progress=False)
    with pytest.raises(ConfigError, match="two tasks have the key"):
        run_tasks(square, tasks(log, 2) + tasks(log, 1), tmp_path / "s", progress=False)
    with pytest.raises(ConfigError, match="not usable as a file name"):
        run_tasks(square, [Task("../escape", {"n": 0, "log": str(log)})], tmp_path / "s", progress=False)


# Ray: tests/test_corpus.py builds a corpus on a local Ray instance and compares it with the local build.


def die_on(payload: dict) -> dict:
    if payload["n"] == payload["die"]:
        os._exit(3)  # the worker process dies, as when the kernel kills it for memory
    return square(payload)


def test_a_dead_pool_worker_stops_the_run_with_a_clear_error_and_the_rerun_finishes(tmp_path):
    from fakebench.execution import WorkerCrashError

    log = tmp_path / "calls.txt"
    work = [Task(t.key, {**t.payload, "die": 2}) for t in tasks(log, 6)]
    with pytest.raises(WorkerCrashError, match="worker process died .* making one of .*item-002"):
        run_tasks(die_on, work, tmp_path / "state", executor="pool", workers=2, progress=False)
    before = set(results(tmp_path / "state"))
    assert 2 not in before
    work = [Task(t.key, {**t.payload, "die": -1}) for t in tasks(log, 6)]
    summary = run_tasks(die_on, work, tmp_path / "state", executor="pool", workers=2, progress=False)
    assert summary.done_before == len(before) and results(tmp_path / "state") == {i: i * i for i in range(6)}
