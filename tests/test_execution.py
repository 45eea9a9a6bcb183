"""Executors: the same results in-process, in a process pool and on Ray; failure isolation; resume."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import pytest

from fakebench.errors import ConfigError
from fakebench.execution import WORKER_THREADS, ResumeState, Task, run_tasks
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
    summary = run_tasks(square, tasks(log, 8, fail=(3, 5)), tmp_path / "state")
    assert (summary.total, summary.done_now, summary.done_before) == (8, 6, 0)
    assert set(summary.failed) == {"item-003", "item-005"}
    assert "ValueError: bad item 3" in summary.failed["item-003"]
    assert results(tmp_path / "state") == {i: i * i for i in range(8) if i not in (3, 5)}
    assert ResumeState(tmp_path / "state").failures().keys() == {"item-003", "item-005"}

    # the second run redoes only the failed ones; they succeed now, and their failure records go
    summary = run_tasks(square, tasks(log, 8), tmp_path / "state")
    assert (summary.done_before, summary.done_now, summary.failed) == (6, 2, {})
    assert sorted(calls(log)) == sorted([*range(8), 3, 5])
    assert results(tmp_path / "state") == {i: i * i for i in range(8)}
    assert ResumeState(tmp_path / "state").failures() == {}


def test_a_half_written_marker_is_not_taken_as_finished(tmp_path):
    state = tmp_path / "state"
    (state / "done").mkdir(parents=True)
    (state / "done" / ".item-000.json.abc.tmp").write_text('{"key": "item-000", "res')  # killed mid-write
    log = tmp_path / "calls.txt"
    summary = run_tasks(square, tasks(log, 2), state)
    assert summary.done_now == 2 and calls(log) == [0, 1]
    assert not list((state / "done").glob(".*"))
    marker = json.loads((state / "done" / "item-000.json").read_text())
    assert marker == {"key": "item-000", "result": {**marker["result"], "n": 0, "square": 0}}


def test_pool_gives_the_local_results_with_one_torch_and_decoder_thread_per_worker(tmp_path):
    log = tmp_path / "calls.txt"
    pulled = []

    def lazily():
        for task in tasks(log, 10, fail=(4,)):
            pulled.append(task.key)
            yield task

    in_flight = []
    summary = run_tasks(square, lazily(), tmp_path / "state", executor="pool", workers=2,
                        on_result=lambda key, ok, error: in_flight.append(len(pulled) - len(in_flight) - 1))
    assert summary.done_now == 9 and list(summary.failed) == ["item-004"]
    assert results(tmp_path / "state") == {i: i * i for i in range(10) if i != 4}
    workers = list(ResumeState(tmp_path / "state").results())
    assert {r["threads"] for r in workers} == {r["decoder_threads"] for r in workers} == {WORKER_THREADS} == {1}
    assert len({r["pid"] for r in workers} - {os.getpid()}) >= 1
    assert max(in_flight) <= 2 * 2  # tasks are pulled lazily: at most two per worker ahead of the results


def test_bad_options_and_keys_are_user_errors(tmp_path):
    log = tmp_path / "calls.txt"
    with pytest.raises(ConfigError, match="unknown executor"):
        run_tasks(square, tasks(log, 1), tmp_path / "s", executor="dask")
    with pytest.raises(ConfigError, match="workers"):
        run_tasks(square, tasks(log, 1), tmp_path / "s", workers=0)
    with pytest.raises(ConfigError, match="two tasks have the key"):
        run_tasks(square, tasks(log, 2) + tasks(log, 1), tmp_path / "s")
    with pytest.raises(ConfigError, match="not usable as a file name"):
        run_tasks(square, [Task("../escape", {"n": 0, "log": str(log)})], tmp_path / "s")


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
        run_tasks(die_on, work, tmp_path / "state", executor="pool", workers=2)
    before = set(results(tmp_path / "state"))
    assert 2 not in before
    work = [Task(t.key, {**t.payload, "die": -1}) for t in tasks(log, 6)]
    summary = run_tasks(die_on, work, tmp_path / "state", executor="pool", workers=2)
    assert summary.done_before == len(before) and results(tmp_path / "state") == {i: i * i for i in range(6)}


# Tasks with parts: one piece of shared set-up, several results, each with its own marker.

def squares_of_group(payload: dict):
    """Set-up once per group (logged as 'setup G'), then one part per member; fails on request."""
    with open(payload["log"], "a") as f:
        f.write(f"setup-{payload['group']}\n")
    if payload.get("setup_fails"):
        raise OSError(f"cannot open group {payload['group']}")
    for n in payload["members"]:
        yield f"part-{n:03d}", functools.partial(square, {"n": n, "log": payload["log"], "fail": payload["fail"]})


def group_tasks(log: Path, groups: int, size: int, fail: tuple[int, ...] = (), setup_fails: tuple[int, ...] = ()):
    out = []
    for g in range(groups):
        members = list(range(g * size, (g + 1) * size))
        out.append(Task(f"group-{g}", {"group": g, "members": members, "log": str(log), "fail": fail,
                                       "setup_fails": g in setup_fails},
                        parts=tuple(f"part-{n:03d}" for n in members)))
    return out


def setups(log: Path) -> list[str]:
    return [line for line in log.read_text().split() if line.startswith("setup-")]


def part_calls(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split() if not line.startswith("setup-")]


@pytest.mark.parametrize("executor", ["local", "pool"])
def test_parts_are_counted_isolated_and_resumed_one_by_one(tmp_path, executor):
    log, state = tmp_path / "calls.txt", tmp_path / "state"
    seen = []
    summary = run_tasks(squares_of_group, group_tasks(log, 3, 3, fail=(4,), setup_fails=(2,)), state,
                        executor=executor, workers=2, on_result=lambda k, ok, e: seen.append(k))
    # group 1's bad member fails alone; group 2's set-up failure fails all three of its parts
    assert summary.total == 9 and summary.done_now == 5
    assert set(summary.failed) == {"part-004", "part-006", "part-007", "part-008"}
    assert "OSError: cannot open group 2" in summary.failed["part-007"]
    assert sorted(seen) == [f"part-{n:03d}" for n in range(9)]
    assert results(state) == {n: n * n for n in (0, 1, 2, 3, 5)}
    assert sorted(setups(log)) == ["setup-0", "setup-1", "setup-2"]

    # resume: group 0 is finished and not even set up again; group 1 redoes only its failed part
    log.unlink()
    summary = run_tasks(squares_of_group, group_tasks(log, 3, 3), state, executor=executor, workers=2)
    assert (summary.total, summary.done_before, summary.done_now, summary.failed) == (9, 5, 4, {})
    assert sorted(setups(log)) == ["setup-1", "setup-2"]
    assert sorted(part_calls(log)) == [4, 6, 7, 8]
    assert results(state) == {n: n * n for n in range(9)}
    assert ResumeState(state).failures() == {}


def stray_part(payload: dict):
    yield "not-mine", lambda: {"n": 0, "square": 0}


def test_a_part_that_is_not_declared_fails_its_task_rather_than_writing_a_stray_marker(tmp_path):
    summary = run_tasks(stray_part, [Task("g", {}, parts=("a", "b"))], tmp_path / "state")
    assert set(summary.failed) == {"a", "b"} and "not one of its parts" in summary.failed["a"]
    assert not ResumeState(tmp_path / "state").is_done("not-mine")


def test_part_keys_must_be_unique_across_tasks(tmp_path):
    log = tmp_path / "calls.txt"
    twice = group_tasks(log, 1, 2) + [Task("other", {}, parts=("part-001",))]
    with pytest.raises(ConfigError, match="two tasks have the key 'part-001'"):
        run_tasks(squares_of_group, twice, tmp_path / "state")


class RecordingProgress:
    """A `fakebench.progress.Progress` that records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def start(self, total, description):
        self.calls.append(("start", total, description))

    def advance(self, n=1, *, failed=False):
        self.calls.append(("advance", n, failed))

    def note(self, message):
        self.calls.append(("note", message))

    def finish(self):
        self.calls.append(("finish",))


def test_progress_counts_finished_failed_and_earlier_results(tmp_path):
    log = tmp_path / "calls.txt"
    first = RecordingProgress()
    run_tasks(square, tasks(log, 4, fail=(2,)), tmp_path / "state", total=4, description="squares", progress=first)
    assert first.calls[0] == ("start", 4, "squares") and first.calls[-1] == ("finish",)
    assert sorted(first.calls[1:-1]) == [("advance", 1, False)] * 3 + [("advance", 1, True)]
    again = RecordingProgress()
    run_tasks(square, tasks(log, 4), tmp_path / "state", total=4, progress=again)
    assert [c for c in again.calls if c[0] == "advance"] == [("advance", 1, False)] * 4  # 3 earlier, 1 now
