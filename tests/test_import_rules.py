"""The import rules of the README's "What may import what", enforced on the source with ``ast``.

Every ``import`` of a facecore module in ``facecore/`` is read, at module level, inside functions
and under ``if TYPE_CHECKING:``, plus the names a package's ``__init__`` exports lazily
(``_EXPORTS``, imported on first use). The test fails on:

(a) a cycle among modules (imports inside functions count: hiding one there is still a cycle);
(b) two subpackages that import each other, both ways;
(c) an arrow that runs up :data:`LAYERS` (sideways within a layer is allowed, (a) and (b) permitting);
(d) facecore importing streamlit (the dashboard calls the library, never the reverse).

Imports of facecore modules inside functions, outside ``cli/``, are kept to :data:`IN_FUNCTION`
(each there for import cost, none to dodge a cycle); the test prints them. ``cli/`` imports each
command's modules inside the command so ``python -m facecore --help`` stays quick. What remains:

* ``gallery.dlib_embedder`` -> ``gallery.dlib_net`` and ``gallery.run_embedder`` ->
  ``recognize.models``: listing galleries and embedders (``gallery.store`` imports the embedders)
  stays free of torch; torch comes with the dlib network or with a trained run used as the embedder;
* ``gallery.enroll`` -> ``data.loaders``: enrolling photos with SFace (OpenCV) needs no torch; the
  loaders' batch decoding (torch) only enrolls a dataset's crops;
* ``live.recognizer`` -> ``recognize.models`` (``load_recognizer``) and ``live.galleries`` ->
  ``gallery.match``: the live recognizer (and its settings, ICE servers) are imported without
  loading torch; torch comes when a recognizer is built or a gallery reloaded.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "facecore"

#: The layers, bottom first: a module may import its own layer (sideways) and the layers below.
LAYERS: list[tuple[str, ...]] = [
    # shared: no facecore imports beyond each other
    (
        "facecore", "facecore._lazy", "facecore.constants", "facecore.errors", "facecore.workspace",
        "facecore.mode", "facecore.device", "facecore.download", "facecore.pretrained", "facecore.draw",
    ),
    ("facecore.models", "facecore.detect"),
    ("facecore.data",),
    ("facecore.recognize",),
    ("facecore.gallery", "facecore.train"),
    ("facecore.evaluate",),
    ("facecore.live",),
    ("facecore.bundle", "facecore.api"),
    ("facecore.cli", "facecore.__main__"),
]  # fmt: skip

#: ``(module, imported module)`` pairs imported inside a function, outside ``cli/`` (see above).
IN_FUNCTION = {
    ("facecore.gallery.dlib_embedder", "facecore.gallery.dlib_net"),
    ("facecore.gallery.enroll", "facecore.data.loaders"),
    ("facecore.gallery.run_embedder", "facecore.recognize.models"),
    ("facecore.live.galleries", "facecore.gallery.match"),
    ("facecore.live.recognizer", "facecore.recognize.models"),
}
MAX_IN_FUNCTION = 10


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The facecore module ``name`` is, or is inside (``a.b.func`` -> ``a.b``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


class _Imports(ast.NodeVisitor):
    """``(target module, line, in a function, under TYPE_CHECKING)`` for each facecore import."""

    def __init__(self, module: str, is_package: bool) -> None:
        self.module, self.is_package = module, is_package
        self.found: list[tuple[str, int, bool, bool]] = []
        self.streamlit: list[int] = []
        self._depth = 0
        self._type_checking = 0

    def _function(self, node: ast.AST) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_If(self, node: ast.If) -> None:
        guarded = "TYPE_CHECKING" in ast.unparse(node.test)
        self._type_checking += guarded
        for child in node.body:
            self.visit(child)
        self._type_checking -= guarded
        for child in node.orelse:
            self.visit(child)

    def _add(self, name: str, line: int) -> None:
        if name.split(".")[0] == "streamlit":
            self.streamlit.append(line)
        if name.split(".")[0] != "facecore":
            return
        target = _resolve(name)
        if target and target != self.module:
            self.found.append((target, line, self._depth > 0, self._type_checking > 0))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.module.split(".") if self.is_package else self.module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            name = ".".join(base + ([node.module] if node.module else []))
        else:
            name = node.module or ""
        subs = [f"{name}.{a.name}" for a in node.names if f"{name}.{a.name}" in MODULES]
        if subs:  # from facecore.train import distributed: the submodule, not the package
            for sub in subs:
                self._add(sub, node.lineno)
        else:
            self._add(name, node.lineno)


def _lazy_exports(module: str, tree: ast.Module) -> list[str]:
    """The modules a package's ``_EXPORTS`` dict names (imported on first use of a name)."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_EXPORTS" for t in node.targets):
            value = ast.literal_eval(node.value)
            return [module + v if v.startswith(".") else v for v in value.values()]
    return []


def _scan() -> tuple[dict[str, set[str]], list[tuple[str, int, str]], list[tuple[str, int]]]:
    edges: dict[str, set[str]] = defaultdict(set)
    in_function: list[tuple[str, int, str]] = []
    streamlit: list[tuple[str, int]] = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        visitor = _Imports(module, path.name == "__init__.py")
        visitor.visit(tree)
        streamlit += [(module, line) for line in visitor.streamlit]
        for target, line, in_func, _ in visitor.found:
            edges[module].add(target)
            if in_func:
                in_function.append((module, line, target))
        if module != "facecore":  # the top package's exports are the public API, a facade over all
            for target in _lazy_exports(module, tree):
                edges[module].add(_resolve(target) or target)
    return edges, in_function, streamlit


EDGES, IN_FUNCTION_FOUND, STREAMLIT = _scan()


def _layer(module: str) -> int:
    for i, layer in enumerate(LAYERS):
        if module in layer:
            return i
    for i, layer in enumerate(LAYERS):
        if any(module.startswith(prefix + ".") for prefix in layer if prefix != "facecore"):
            return i
    raise AssertionError(f"{module} is in no layer of LAYERS: add it")


def _folder(module: str) -> str | None:
    """The subpackage a module belongs to (``facecore.gallery.store`` -> ``gallery``), else None."""
    parts = module.split(".")
    if len(parts) >= 2 and (PACKAGE / parts[1]).is_dir():
        return parts[1]
    return None


def _cycles() -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(EDGES.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(MODULES):
        if module not in index:
            visit(module)
    return found


def test_the_scan_sees_the_package() -> None:
    assert len(MODULES) > 60
    assert "facecore.recognize.models" in EDGES["facecore.live.inference"]
    found = {(m, t) for m, _, t in IN_FUNCTION_FOUND}
    assert ("facecore.live.recognizer", "facecore.recognize.models") in found


def test_no_import_cycle() -> None:
    assert _cycles() == []


def test_no_two_subpackages_import_each_other() -> None:
    arrows = {
        (_folder(a), _folder(b)) for a, targets in EDGES.items() for b in targets if _folder(a) != _folder(b)
    }
    both_ways = sorted({tuple(sorted(p)) for p in arrows if None not in p and (p[1], p[0]) in arrows})
    assert both_ways == []


def test_no_arrow_runs_up_the_layers() -> None:
    up = [
        f"{a} (layer {_layer(a)}) -> {b} (layer {_layer(b)})"
        for a, targets in sorted(EDGES.items())
        for b in sorted(targets)
        if _layer(b) > _layer(a)
    ]
    assert up == []


def test_facecore_never_imports_streamlit() -> None:
    assert STREAMLIT == []


def test_in_function_imports_outside_cli() -> None:
    outside = sorted((m, line, t) for m, line, t in IN_FUNCTION_FOUND if not m.startswith("facecore.cli"))
    print(f"\n{len(outside)} in-function imports of facecore modules outside cli/:")
    for module, line, target in outside:
        print(f"  {module}:{line} -> {target}")
    assert {(m, t) for m, _, t in outside} <= IN_FUNCTION, "a new in-function import: hoist it, or say why"
    assert len(outside) < MAX_IN_FUNCTION
