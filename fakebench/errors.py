"""Errors a user can cause. Each message says what was wrong and how to fix it.

The CLI prints the message on one line and exits with code 2 (``EXIT_USER_ERROR``).
"""

from __future__ import annotations

EXIT_OK = 0  # everything done
EXIT_SOME_FAILED = 1  # done, with some items failed (finished ones kept, the failures listed)
EXIT_USER_ERROR = 2  # the user's input is wrong
EXIT_INTERRUPTED = 130  # interrupted (finished work kept)


class FakebenchError(Exception):
    """Base class for every error caused by the user's input, files or configuration."""

    def one_line(self) -> str:
        return " ".join(str(self).split())


class InputFileError(FakebenchError):
    """A path that is missing, empty, unreadable or unwritable."""


class MediaError(FakebenchError):
    """A file that is not the kind of media expected, or cannot be decoded."""


class AudioError(MediaError):
    """Audio that is missing, silent or too short for the job."""


class NoFaceError(FakebenchError):
    """A job needs a face and none (or no usable one) was found."""


class WeightsError(FakebenchError):
    """Model weights that are missing, corrupt, unsafe, or of the wrong architecture."""


class UnverifiedWeightsError(WeightsError):
    """A weights file that is there and loadable but is not the published one (its size or SHA-256 differs)."""


class ConfigError(FakebenchError):
    """A bad option value or configuration file."""
