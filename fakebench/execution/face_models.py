"""Imported for its effect: loads dlib's 68-landmark model (about a second) and the MTCNN weights into this process.

A process pool names this module in its forkserver preload list, so the models are read once in the server
and its workers fork with them already in memory, instead of each worker reading them itself. Without a
model nothing happens here: the worker that needs it reports the missing model on its own.
"""

from fakebench.faces import _shape_predictor
from fakebench.mtcnn import load_networks

for _load in (_shape_predictor, load_networks):
    try:
        _load()
    except Exception:  # noqa: BLE001 - a missing model is reported by the work that needs it, not at preload
        pass
