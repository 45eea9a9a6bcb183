"""The `fakebench` command: the typer app and its entry point. The only part of fakebench that prints."""

from fakebench.cli.app import app, main

__all__ = ["app", "main"]
