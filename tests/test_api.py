"""The curated API of `import fakebench`: lazy, torch-free to import, every name resolves."""

from __future__ import annotations

import json
import subprocess
import sys

import fakebench


def test_import_fakebench_does_not_import_torch():
    code = ("import sys, fakebench; import json; "
            "print(json.dumps([m for m in ('torch', 'av', 'pandas', 'rich') if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


def test_every_public_name_resolves():
    for name in fakebench.__all__:
        assert getattr(fakebench, name) is not None, name
    assert fakebench.measure.__name__ == "measure_clips" and fakebench.compare.__name__ == "compare_sets"
    assert issubclass(fakebench.FakebenchError, Exception)
    assert "warp" in fakebench.GENERATORS.names()
    assert isinstance(fakebench.__version__, str) and fakebench.__version__
    assert set(fakebench.__all__) <= set(dir(fakebench))
    assert set(fakebench.__all__) == {*fakebench._API, "__version__"}


def test_unknown_names_raise_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        fakebench.nope  # noqa: B018
