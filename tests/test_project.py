"""The project's own promises: pins agree everywhere, the package imports, notebooks follow the conventions."""
import ast, configparser, json, re
from pathlib import Path
import jand

ROOT = Path(__file__).resolve().parents[1]


def settings():
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read(ROOT / "settings.ini", encoding="utf-8")
    return cfg["DEFAULT"]


def test_every_dependency_is_pinned_exactly():
    s = settings()
    reqs = s["requirements"].split() + s["dev_requirements"].split()
    assert reqs, "settings.ini lists no requirements"
    loose = [r for r in reqs if not re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][A-Za-z0-9.+]*", r)]
    assert not loose, f"unpinned requirements in settings.ini: {loose}"
    assert "torch==2.13.0" in reqs


def test_environment_yml_has_the_same_pins_as_settings_ini():
    s = settings()
    reqs = set(s["requirements"].split() + s["dev_requirements"].split())
    env = (ROOT / "environment.yml").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\s+- ([A-Za-z0-9_.\-]+==\S+)$", env, flags=re.M))
    assert listed == reqs, f"only in settings.ini: {reqs - listed}; only in environment.yml: {listed - reqs}"
    assert "python=3.11" in env


def test_package_version_matches_settings():
    assert jand.__version__ == settings()["version"]


def test_nbdev_settings_the_design_calls_for():
    s = settings()
    assert s["lib_name"] == "jand" and s["nbs_path"] == "nbs" and s["readme_nb"] == "index.ipynb"
    assert s["tst_flags"] == "slow" and s["allowed_cell_metadata_keys"] == "tags"
    assert s["console_scripts"].startswith("jand=")


def test_every_library_notebook_exports_a_module_that_exists():
    nbs = sorted((ROOT / "nbs").glob("[0-9]*.ipynb"))
    assert len(nbs) >= 8
    for nb in nbs:
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        first = "".join(cells[0]["source"])
        m = re.match(r"#\| default_exp (\S+)", first)
        assert m, f"{nb.name}: the first cell must be `#| default_exp <module>`"
        assert (ROOT / "jand" / (m.group(1).replace(".", "/") + ".py")).exists(), f"{nb.name}: jand/{m.group(1)}.py is missing"
        title = "".join(cells[1]["source"])
        assert title.startswith("# ") and "\n> " in title, f"{nb.name}: the second cell must be a `# Title` with a `> summary`"
        summary = title.split("\n> ", 1)[1].split("\n", 1)
        assert len(summary) == 1 or not summary[1].startswith(">"), \
            f"{nb.name}: write the `> summary` on one line (nbdev makes the module's docstring of its first line only)"


def test_readme_is_rendered_from_the_index_notebook():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("<!-- Generated from nbs/index.ipynb")
    assert "make test" in readme and "make reproduce" in readme


# Modules that may still import jand modules inside functions: the command line keeps its start-up fast by importing
# what a command needs when it runs.
LOCAL_IMPORTS_ALLOWED = {"cli"}
PACKAGE = ROOT / "jand"


def module_name(path: Path) -> str:
    "`path`'s module, dotted, below `jand` (`core`, `lab.runs`; a package's `__init__` is the package)."
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(p for p in parts if p != "__init__")


def library_files() -> list:
    "Every module of the package, subpackages included."
    return sorted(PACKAGE.rglob("*.py"))


def jand_imports(path: Path, name: str | None = None) -> list:
    ("`(module, local)` for each import of a jand module in `path` (the module `name`: by default where it lies); "
     "`local`: inside a function.")
    modules = {module_name(p) for p in library_files()}
    name = name or module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]

    def known(dotted: str):  # the longest prefix of `dotted` that is a jand module
        parts = dotted.split(".")
        return next((".".join(parts[:k]) for k in range(len(parts), 0, -1) if ".".join(parts[:k]) in modules), None)

    def targets(node) -> list:
        if isinstance(node, ast.Import):
            return [a.name[5:] for a in node.names if a.name.startswith("jand.")]
        base = node.module or ""
        if node.level:  # relative: `from .core import x`, `from ..core import x`, `from . import core`
            anchor = package[:len(package) - (node.level - 1)]
            root = ".".join(anchor + ([base] if base else []))
        elif base == "jand" or base.startswith("jand."):
            root = base[5:]
        else:
            return []
        return [f"{root}.{a.name}".strip(".") for a in node.names] + ([root] if root else [])

    found = []

    def visit(node, local):
        for child in ast.iter_child_nodes(node):
            inner = local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                hits = list(dict.fromkeys(m for t in targets(child) if (m := known(t))))
                names = {m for m in hits if any(m != o and o.startswith(m + ".") for o in hits)}  # most specific
                found.extend((m, local) for m in hits if m not in names)
            visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


def import_graph(local: bool = True) -> dict:
    "Module → the jand modules it imports (with `local`: inside functions too)."
    return {module_name(p): {m for m, inside in jand_imports(p) if local or not inside} for p in library_files()}


def find_cycle(graph: dict) -> list:
    "One import cycle of `graph` as `[a, b, …, a]`; `[]` when there is none."
    state, stack = {}, []

    def dfs(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := dfs(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return []

    for node in sorted(graph):
        if node not in state and (cycle := dfs(node)):
            return cycle
    return []


def test_find_cycle_finds_cycles_and_self_imports():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"deploy": {"deploy"}}) == ["deploy", "deploy"]


def test_jand_imports_sees_local_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("from .core import x\nimport jand.charset\n\ndef g():\n    from jand.model import y\n",
                 encoding="utf-8")
    assert jand_imports(f, name="m") == [("core", False), ("charset", False), ("model", True)]
    assert jand_imports(f, name="lab.m")[0] == ("lab", False)  # in a subpackage, `.core` would be `lab.core`


def test_jand_imports_resolves_imports_of_a_subpackage():
    runs = PACKAGE / "lab" / "runs.py"
    assert ("core", False) in jand_imports(runs)  # `from ..core import …`
    assert ("lab.profiles", False) in jand_imports(PACKAGE / "lab" / "lab.py")  # `from .profiles import …`
    assert module_name(PACKAGE / "lab" / "__init__.py") == "lab"


def test_no_import_cycle_even_through_function_local_imports():
    cycle = find_cycle(import_graph(local=True))
    assert not cycle, f"import cycle: {' → '.join(cycle)}"


def test_no_function_local_import_of_a_jand_module():
    local = {module_name(p): sorted({m for m, inside in jand_imports(p) if inside})
             for p in library_files() if module_name(p) not in LOCAL_IMPORTS_ALLOWED}
    local = {k: v for k, v in local.items() if v}
    assert not local, f"import these at the top of the module instead: {local}"
