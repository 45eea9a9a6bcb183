"""Corpora: the manifest and its validation, dataset layouts and importers, fake-corpus builds, the demo corpus."""
