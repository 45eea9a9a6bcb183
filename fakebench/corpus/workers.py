"""The modules a corpus build's pool workers need, named in a module light enough to import first.

(The pool and its forkserver preloading are `fakebench.execution`'s; which modules a corpus worker needs is the
corpus's business, and needs the generator registry, so the list lives here, a layer above execution.)

`fakebench corpus build` starts the pool's server with these before it loads its own heavier modules and
the corpus, so the server's imports (the face analysis, dlib's landmark model, what generators need) run beside
that set-up instead of after it. The generators' modules (and what each declares it needs preloaded) come
from the generator registry.
"""

from __future__ import annotations

from collections.abc import Iterable

CORPUS_WORKER_PRELOAD = (
    "fakebench.corpus.build", "fakebench.faces", "fakebench.mtcnn", "dlib",
    "fakebench.execution.face_models",  # loads dlib's 68-landmark model (about a second)
)


def corpus_worker_preload(generators: Iterable[str] | None = None) -> tuple[str, ...]:
    """`CORPUS_WORKER_PRELOAD` and the modules the generators (default: every registered one) declare."""
    from fakebench.generators.base import GENERATORS

    names = GENERATORS.names() if generators is None else list(generators)
    return tuple(dict.fromkeys((*CORPUS_WORKER_PRELOAD, *GENERATORS.preload_modules(names))))


def start_corpus_pool_server(executor: str, *extra: str) -> None:
    """With the pool executor, start its server now with the corpus workers' modules (and `extra` first)."""
    if executor == "pool":
        from fakebench.execution import start_pool_server

        start_pool_server((*extra, *corpus_worker_preload()))
