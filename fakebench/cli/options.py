"""Options shared by several commands, declared once: ``--json``, ``--device``, ``--seed``, ``--workers``.

Use the aliases as parameter types (``as_json: JsonFlag = False``); where a command needs its own help text, the
factory gives the same option with that text (``seed: seed_option("Seed of the split.") = 0``). ``--json`` has an
empty metavar: typer would otherwise show a ``<bool>`` placeholder after a flag that takes no value.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

DEVICE_HELP = "auto (CUDA when present, else the CPU), cpu, cuda or cuda:N."
WORKERS_HELP = "Parallel worker processes. Default: the usable CPU cores."


def json_flag(help: str = "Print JSON instead of a table.") -> Any:
    return Annotated[bool, typer.Option("--json", help=help, show_default=False, metavar="")]  # no <bool>


def device_option(help: str = DEVICE_HELP, *, optional: bool = False) -> Any:
    """``--device``; ``optional`` for commands whose default (None) leaves the choice to a plug-in."""
    if optional:
        return Annotated[str | None, typer.Option("--device", help=help, show_default=False)]
    return Annotated[str, typer.Option("--device", help=help)]


def seed_option(help: str = "Seed: the same seed gives the same output.", *, optional: bool = False) -> Any:
    if optional:
        return Annotated[int | None, typer.Option("--seed", help=help, show_default=False)]
    return Annotated[int, typer.Option("--seed", help=help)]


def workers_option(help: str = WORKERS_HELP) -> Any:
    return Annotated[int | None, typer.Option("--workers", help=help, show_default=False)]


def allow_unverified_weights_flag() -> Any:
    from fakebench.weights import ALLOW_UNVERIFIED_ENV, ALLOW_UNVERIFIED_FLAG

    return Annotated[bool, typer.Option(
        ALLOW_UNVERIFIED_FLAG, show_default=False,
        help=f"Use weights files whose size or SHA-256 is not the published one (your own model), as "
             f"{ALLOW_UNVERIFIED_ENV}=1 does; they are still loaded safely, and every result says "
             "weights_verified: false. Without it such a file is refused (exit 2).")]


JsonFlag = json_flag()
AllowUnverifiedWeights = allow_unverified_weights_flag()
Device = device_option()
Seed = seed_option()
Workers = workers_option()
