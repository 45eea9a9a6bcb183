"""A training run: a folder holding its config, the prepared-data cache, checkpoints, the log, sample grids and
the state that resumes it exactly.

    RUN_DIR/config.yaml              the TrainConfig in force
    RUN_DIR/run.json                 seed, data folder, data summary (clips used, skipped and why)
    RUN_DIR/state.pt                 models, optimisers, RNG states, sampler position, step (weights_only)
    RUN_DIR/checkpoints/step-NNNNNN/ the generator in fakebench's SDA format (`generate --checkpoint` reads it)
    RUN_DIR/samples/step-NNNNNN.png  real (top) and generated (bottom) frames of the held-out clips
    RUN_DIR/train_log.parquet        losses every log_every steps; validation metrics at every checkpoint
    RUN_DIR/data_cache/              aligned crops and audio per clip, prepared once
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fakebench import weights
from fakebench.devices import resolve_device
from fakebench.errors import ConfigError, InputFileError
from fakebench.io import atomic_write, write_json_atomic

from ..checkpoint import save_fakebench
from .config import TrainConfig, load_config, save_config
from .data import PreparedData, SequenceSampler, prepare_data
from .trainer import LOSS_NAMES, Trainer
from .validation import validate, write_grid

STATE_FILE = "state.pt"
CONFIG_FILE = "config.yaml"
RUN_FILE = "run.json"
LOG_FILE = "train_log.parquet"


@dataclass
class Callbacks:
    """Hooks for a progress display; each is optional."""

    on_data: Callable[[int, int, str], None] | None = None  # (clips done, clips, current clip)
    on_start: Callable[[int, int, dict[str, Any]], None] | None = None  # (step, total steps, data summary)
    on_step: Callable[[int, dict[str, float]], None] | None = None  # (step, losses)
    on_checkpoint: Callable[[int, Path, dict[str, float]], None] | None = None  # (step, folder, validation)


@dataclass
class RunResult:
    run_dir: Path
    step: int
    steps: int
    stopped: str  # "finished", "time limit"
    minutes: float  # training time of this invocation
    total_minutes: float  # over every invocation of the run
    checkpoint: Path | None
    losses: dict[str, float] = field(default_factory=dict)  # mean over the last logged interval
    validation: dict[str, float] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step-{step:06d}"


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    found = sorted((Path(run_dir) / "checkpoints").glob("step-*"))
    return found[-1] if found else None


def train(data_dir: str | os.PathLike[str], run_dir: str | os.PathLike[str], *,
          config: str | os.PathLike[str] | TrainConfig | None = None, resume: bool = False, device: str = "auto",
          max_minutes: float | None = None, seed: int | None = None,
          callbacks: Callbacks | None = None) -> RunResult:
    """Train (or, with ``resume``, continue training) the SDA generator on the clips in ``data_dir``."""
    run = Path(run_dir)
    cb = callbacks or Callbacks()
    if max_minutes is not None and not max_minutes > 0:
        raise ConfigError(f"--max-minutes must be positive, got {max_minutes}")
    cfg, seed = _open_run(run, config, resume, seed)
    device = resolve_device(device)
    model = cfg.model.sda_config()
    data = prepare_data(data_dir, run / "data_cache", model, cfg.data, progress=cb.on_data)
    summary = data.summary()
    trainer = Trainer(cfg, device=device, seed=seed)
    sampler = SequenceSampler(data, cfg.data, model.audio_feat_samples, seed + 2, model.emotions)
    rows: list[dict[str, Any]] = []
    elapsed_before = 0.0
    if resume:
        state = weights.load_checkpoint(run / STATE_FILE, map_location=trainer.device)
        trainer.load_state_dict(state["trainer"])
        sampler.set_state(state["sampler"])
        elapsed_before = float(state["elapsed_s"])
        rows = _read_log(run, trainer.step)
    _write_json(run / RUN_FILE, {"seed": seed, "config": cfg.name, "data_dir": str(Path(data_dir).resolve()),
                                 "device": device, "data": summary})
    steps = cfg.schedule.steps
    if cb.on_start is not None:
        cb.on_start(trainer.step, steps, summary)

    started = time.monotonic()
    interval: list[dict[str, float]] = []
    saved_at = trainer.step if resume else -1
    stopped = "finished"
    validation: dict[str, float] = {}

    def elapsed() -> float:
        return elapsed_before + time.monotonic() - started

    def log_interval() -> None:
        nonlocal interval
        if interval:
            rows.append({"kind": "train", "step": trainer.step, "elapsed_s": elapsed(),
                         "lr_factor": trainer.lr_factor(trainer.step - 1),
                         **{k: float(np.mean([x[k] for x in interval])) for k in LOSS_NAMES}})
            interval = []

    def save() -> None:
        nonlocal saved_at, validation
        log_interval()  # a checkpoint between two log steps logs the steps since the last one
        validation = _save_checkpoint(run, trainer, sampler, data, rows, elapsed(), cfg)
        saved_at = trainer.step
        if cb.on_checkpoint is not None:
            cb.on_checkpoint(trainer.step, checkpoint_dir(run, trainer.step), validation)

    try:
        while trainer.step < steps:
            if max_minutes is not None and time.monotonic() - started >= max_minutes * 60:
                stopped = "time limit"
                break
            losses = trainer.train_step(sampler.sample())
            if not all(math.isfinite(v) for v in losses.values()):
                raise ConfigError(f"training diverged at step {trainer.step} (losses {losses}); lower the learning "
                                  f"rates in the config and resume from the last checkpoint")
            interval.append(losses)
            if trainer.step % cfg.schedule.log_every == 0:
                log_interval()
            if trainer.step % cfg.schedule.checkpoint_every == 0:
                save()
            if cb.on_step is not None:
                cb.on_step(trainer.step, losses)
    except KeyboardInterrupt:
        if trainer.step != saved_at:
            save()
        raise
    if trainer.step != saved_at:
        save()
    last = next((r for r in reversed(rows) if r["kind"] == "train"), {})
    return RunResult(run_dir=run, step=trainer.step, steps=steps, stopped=stopped,
                     minutes=(time.monotonic() - started) / 60, total_minutes=elapsed() / 60,
                     checkpoint=latest_checkpoint(run), losses={k: last[k] for k in LOSS_NAMES if k in last},
                     validation=validation, data=summary)


def _open_run(run: Path, config: str | os.PathLike[str] | TrainConfig | None, resume: bool,
              seed: int | None) -> tuple[TrainConfig, int]:
    """The run's config and seed: new (the folder must not hold a run) or saved (``resume``)."""
    if run.exists() and not run.is_dir():
        raise InputFileError(f"run folder {run} is a file; give a folder name")
    wanted = config if isinstance(config, TrainConfig) else load_config(config) if config is not None else None
    if resume:
        if not (run / STATE_FILE).is_file() or not (run / CONFIG_FILE).is_file():
            raise InputFileError(f"no training run to resume in {run} (no {STATE_FILE} there); start one without "
                                 "--resume")
        saved = load_config(run / CONFIG_FILE)
        if wanted is not None and wanted.to_dict() != saved.to_dict():
            raise ConfigError(f"--config differs from the config of the run in {run}; resume without --config, "
                              "or start a new run folder")
        saved_seed = int(json.loads((run / RUN_FILE).read_text())["seed"])
        if seed is not None and seed != saved_seed:
            raise ConfigError(f"--seed {seed} differs from the run's seed {saved_seed}; resume without --seed")
        return saved, saved_seed
    if (run / STATE_FILE).exists():
        raise ConfigError(f"{run} already holds a training run; pass --resume to continue it or choose a new folder")
    cfg = wanted if wanted is not None else load_config("sda-small")
    run.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run / CONFIG_FILE)
    return cfg, 0 if seed is None else int(seed)


def _save_checkpoint(run: Path, trainer: Trainer, sampler: SequenceSampler, data: PreparedData,
                     rows: list[dict[str, Any]], elapsed_s: float, cfg: TrainConfig) -> dict[str, float]:
    """Weights, validation row and sample grid, then the state, then the log (a resume trims the log)."""
    step = trainer.step
    ckpt = trainer.checkpoint(f"fakebench train-generator ({cfg.name}, step {step})")
    save_fakebench(ckpt, checkpoint_dir(run, step))
    metrics, pairs = validate(trainer, data)
    write_grid(pairs, run / "samples" / f"step-{step:06d}.png")
    rows.append({"kind": "val", "step": step, "elapsed_s": elapsed_s, **metrics})
    state = {"trainer": trainer.state_dict(), "sampler": sampler.state(), "elapsed_s": elapsed_s,
             "format": "fakebench-sda-train", "format_version": 1}
    weights.save_checkpoint(state, run / STATE_FILE)
    _write_log(run, rows)
    return metrics


def _read_log(run: Path, step: int) -> list[dict[str, Any]]:
    path = run / LOG_FILE
    if not path.is_file():
        return []
    table = pd.read_parquet(path)
    table = table[table["step"] <= step]
    return [{k: v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))}
            for row in table.to_dict("records")]


def _write_log(run: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write(run / LOG_FILE, lambda f: pd.DataFrame(rows).to_parquet(f, index=False))


def _write_json(path: Path, value: Any) -> None:
    write_json_atomic(path, value, indent=1)
