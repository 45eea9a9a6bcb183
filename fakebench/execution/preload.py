"""The modules a corpus build's pool workers need, named in a module light enough to import first.

`fakebench corpus build` starts the pool's server with these before it loads its own heavier modules and
the corpus, so the server's seconds of imports (torch, facenet-pytorch, dlib's landmark model) run beside
that set-up instead of after it.
"""

CORPUS_WORKER_PRELOAD = (
    "fakebench.corpus.build", "torch", "fakebench.faces", "facenet_pytorch", "dlib",
    "fakebench.execution.face_models",  # loads dlib's 68-landmark model (about a second)
    "scipy.ndimage", "scipy.spatial", "fakebench.generators.warp", "fakebench.generators.static",
    "fakebench.generators.desync",
)


def start_corpus_pool_server(executor: str, *extra: str) -> None:
    """With the pool executor, start its server now with the corpus workers' modules (and `extra` first)."""
    if executor == "pool":
        from fakebench.execution import start_pool_server

        start_pool_server((*extra, *CORPUS_WORKER_PRELOAD))
