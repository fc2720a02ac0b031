"""The house (issue 28): a README of one screen whose links resolve, and a library
without import cycles, imports inside functions counted."""
from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_readme_is_one_screen_with_both_commands_first():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 250
    head = "\n".join(lines[:30])
    assert "make run" in head and "make test" in head


def test_every_relative_link_of_the_docs_resolves():
    docs = [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").rglob("*.md"))]
    bad = []
    for doc in docs:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
            if re.match(r"[a-z]+://", target):
                continue
            path, _, anchor = target.partition("#")
            file = (doc.parent / path).resolve() if path else doc
            if not file.exists():
                bad.append(f"{doc.relative_to(REPO)}: {target} (no such file)")
            elif anchor and file.suffix == ".md":
                text = file.read_text()
                ids = set(re.findall(r'<a id="([^"]+)"', text))
                ids |= {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", text, re.M)}
                if anchor not in ids:
                    bad.append(f"{doc.relative_to(REPO)}: {target} (no such anchor)")
    assert not bad, bad


def module_name(path: Path, root: Path) -> str:
    """``mie_core/scoring/fusion.py`` -> ``mie_core.scoring.fusion`` (a package: its name)."""
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path) -> dict[str, set[str]]:
    """module -> the package's modules it imports anywhere in its body (functions included),
    by dotted name; ``from pkg import mod`` counts as importing ``pkg.mod`` where that is a
    module, else ``pkg``; importing ``a.b.c`` also runs ``a.b``'s ``__init__``."""
    files = sorted(package.rglob("*.py"))
    mods = {module_name(p, package) for p in files}
    graph = {}
    for p in files:
        me = module_name(p, package)
        here = me if p.name == "__init__.py" else me.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = {f"{mod}.{a.name}" if f"{mod}.{a.name}" in mods else mod for a in node.names}
            elif isinstance(node, ast.Import):
                targets = {a.name for a in node.names}
            else:
                continue
            for t in targets:
                parts = t.split(".")
                # a.b.c imports the packages a.b on its way
                deps |= {".".join(parts[:k]) for k in range(2, len(parts) + 1)} & mods
        graph[me] = deps - {me, package.name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .a import x\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    (pkg / "sub").mkdir()
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "d.py").write_text("from pkg.sub import e\n")
    (pkg / "sub" / "e.py").write_text("def g():\n    from ..sub.d import y\n")
    assert cycles(import_graph(pkg)) == [["pkg.a", "pkg.b"], ["pkg.sub.d", "pkg.sub.e"]]


def test_mie_core_is_subpackages_by_concern_with_few_top_modules():
    top = sorted(p.name for p in (REPO / "mie_core").glob("*.py"))
    subs = sorted(p.parent.name for p in (REPO / "mie_core").glob("*/__init__.py"))
    assert len(top) <= 6, top
    assert len(subs) >= 4, subs


def test_mie_core_has_no_import_cycle():
    assert cycles(import_graph(REPO / "mie_core")) == []
