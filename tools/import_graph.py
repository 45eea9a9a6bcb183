"""Print the size and the cycles of fakebench's import graph: modules, import arrows, cycles; or check the layers.

    .venv/bin/python tools/import_graph.py              # all imports
    .venv/bin/python tools/import_graph.py --top-level  # only imports at module level (not inside functions)
    .venv/bin/python tools/import_graph.py --lint       # run import-linter's contracts (pyproject.toml)
    git archive 5e763c6 | tar -x -C /tmp/before && .venv/bin/python tools/import_graph.py --root /tmp/before

Uses grimp (installed with import-linter). grimp and import-linter read a package from its folder, but
fakebench.generators and fakebench.detectors live in generators/ and detectors/ (setuptools package-dir), so the
graph is built from a copy of the sources laid out as installed (fakebench/generators, fakebench/detectors) in a
temporary folder. A cycle is a strongly connected component of more than one module (Tarjan's algorithm).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = {"fakebench": "fakebench", "fakebench/generators": "generators", "fakebench/detectors": "detectors"}


def installed_layout(target: Path, root: Path = ROOT) -> Path:
    """Copy the Python sources of the project at `root` to `target` as they are installed; returns `target`."""
    for dest, src in LAYOUT.items():
        if not (root / src).is_dir():
            continue
        shutil.copytree(root / src, target / dest, dirs_exist_ok=True,
                        ignore=lambda folder, names: [n for n in names if not (n.endswith(".py") or
                                                                               os.path.isdir(os.path.join(folder, n)))
                                                      or n == "__pycache__"])
    return target


def strongly_connected(nodes: set[str], edges: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top-level", action="store_true", help="count only imports made at module level")
    parser.add_argument("--lint", action="store_true", help="run lint-imports on the installed layout")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the project's folder (e.g. an older commit unpacked with git archive)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fakebench-imports-") as tmp:
        installed_layout(Path(tmp), args.root)
        if args.lint:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [tmp, os.environ.get("PYTHONPATH")]))}
            lint = Path(sys.executable).with_name("lint-imports")
            code = subprocess.run([str(lint), str(ROOT / "pyproject.toml"), "--no-cache"], env=env,
                                  cwd=tmp).returncode
        sys.path.insert(0, tmp)
        cycles = report(args.top_level, Path(tmp))
    if args.lint:
        if cycles:
            print("import cycles are not allowed (imports inside functions count; `if TYPE_CHECKING:` ones not)")
        return 1 if code or cycles else 0
    return 0


def report(top_level: bool, tree: Path) -> list[list[str]]:
    """Print the graph's size and cycles; returns the cycles."""
    import grimp

    graph = grimp.build_graph("fakebench", include_external_packages=False, cache_dir=None)
    nodes = set(graph.modules)
    edges: dict[str, set[str]] = {m: set() for m in nodes}
    n_edges = 0
    for module in sorted(nodes):
        for imported in graph.find_modules_directly_imported_by(module):
            if top_level:
                details = graph.get_import_details(importer=module, imported=imported)
                if not any(_top_level(tree, module, d["line_number"]) for d in details):
                    continue
            if not top_level and all(_type_only(tree, module, d["line_number"])
                                     for d in graph.get_import_details(importer=module, imported=imported)):
                continue
            edges[module].add(imported)
            n_edges += 1
    cycles = strongly_connected(nodes, edges)
    print(f"modules: {len(nodes)}")
    print(f"import arrows: {n_edges}{' (module level only)' if top_level else ''}")
    print(f"cycles: {len(cycles)}")
    for component in cycles:
        print("  " + " <-> ".join(component))
    return cycles


def _source_lines(tree: Path, module: str) -> list[str]:
    path = tree.joinpath(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    return path.read_text(encoding="utf-8").splitlines()


def _type_only(tree: Path, module: str, line_number: int) -> bool:
    """Whether the import on `line_number` sits in an ``if TYPE_CHECKING:`` block (the nearest less indented
    line above it)."""
    lines = _source_lines(tree, module)
    line = lines[line_number - 1]
    indent = len(line) - len(line.lstrip())
    for above in reversed(lines[:line_number - 1]):
        if above.strip() and len(above) - len(above.lstrip()) < indent:
            return above.strip().startswith("if TYPE_CHECKING")
    return False


def _top_level(tree: Path, module: str, line_number: int) -> bool:
    """Whether the import on `line_number` of `module` is at module level (not indented)."""
    lines = _source_lines(tree, module)
    line = lines[line_number - 1] if 0 < line_number <= len(lines) else ""
    return not line[:1].isspace()


if __name__ == "__main__":
    sys.exit(main())
