"""Imported for its effect: loads dlib's 68-landmark model (about a second) into this process.

A process pool names this module in its forkserver preload list, so the model is read once in the server
and its workers fork with it already in memory, instead of each worker reading it itself. Without the
model nothing happens here: the worker that needs it reports the missing model on its own.
"""

from fakebench.faces import _shape_predictor

try:
    _shape_predictor()
except Exception:  # noqa: BLE001 - a missing model is reported by the work that needs it, not at preload
    pass
