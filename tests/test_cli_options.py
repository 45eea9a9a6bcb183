"""The options shared by commands are declared once (fakebench.cli.options) and look the same everywhere."""

from __future__ import annotations

import typer

from fakebench.cli.app import app


def _commands(command, path: tuple[str, ...] = ()):
    yield path, command
    if hasattr(command, "commands"):  # a group (typer may bring its own copy of click)
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))


def test_shared_options_have_one_declaration_and_flags_no_placeholder():
    seen = {}
    for path, command in _commands(typer.main.get_command(app)):
        for param in command.params:
            if "--json" in getattr(param, "opts", ()):
                assert param.is_flag and param.metavar == "", path  # no <bool> after the flag
                seen.setdefault("json", []).append(path)
            if "--device" in getattr(param, "opts", ()):
                assert "cuda:N" in param.help, path
                seen.setdefault("device", []).append(path)
            if "--workers" in getattr(param, "opts", ()):
                assert param.default is None and not param.show_default, path
                seen.setdefault("workers", []).append(path)
    assert len(seen["json"]) >= 4 and len(seen["device"]) >= 3 and len(seen["workers"]) >= 2, seen


def test_no_command_shows_a_value_placeholder_after_an_on_off_flag():
    """`<bool>` after a flag reads as if it took a value, and `--resume true` is then rejected."""
    from fakebench.cli import main

    flags = 0
    for path, command in _commands(typer.main.get_command(app)):
        if any(getattr(p, "is_flag", False) for p in command.params):
            flags += 1
        import contextlib
        import io

        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            assert main([*path, "--help"]) == 0
        assert "<bool>" not in text.getvalue(), path
        assert "--help" in text.getvalue(), path
    assert flags >= 8
