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


def test_readme_is_rendered_from_the_index_notebook():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("<!-- Generated from nbs/index.ipynb")
    assert "make test" in readme and "make reproduce" in readme


# Modules that may still import jand modules inside functions: the command line keeps its start-up fast by importing
# what a command needs when it runs; `reproduce` is being split (issue 32) and loses its local imports then.
LOCAL_IMPORTS_ALLOWED = {"cli", "reproduce"}


def jand_imports(path: Path) -> list:
    "`(module, local)` for each import of a jand module in `path`; `local`: inside a function."
    modules = {p.stem for p in (ROOT / "jand").glob("*.py")}
    found = []

    def visit(node, local):
        for child in ast.iter_child_nodes(node):
            inner = local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level == 1:  # `from .core import x`, or `from . import core`
                    names = [base] if base else [a.name for a in child.names]
                elif base == "jand":  # `from jand import core`
                    names = [a.name for a in child.names]
                else:
                    names = [base.split(".")[1]] if base.startswith("jand.") else []
                found.extend((n.split(".")[0], local) for n in names if n.split(".")[0] in modules)
            elif isinstance(child, ast.Import):
                found.extend((a.name.split(".")[1], local) for a in child.names
                             if a.name.startswith("jand.") and a.name.split(".")[1] in modules)
            visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


def import_graph(local: bool = True) -> dict:
    "Module → the jand modules it imports (with `local`: inside functions too)."
    return {p.stem: {m for m, inside in jand_imports(p) if local or not inside}
            for p in sorted((ROOT / "jand").glob("*.py"))}


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
    f.write_text("from .core import x\nimport jand.charset\n\ndef g():\n    from jand.model import y\n", encoding="utf-8")
    assert jand_imports(f) == [("core", False), ("charset", False), ("model", True)]


def test_no_import_cycle_even_through_function_local_imports():
    cycle = find_cycle(import_graph(local=True))
    assert not cycle, f"import cycle: {' → '.join(cycle)}"


def test_no_function_local_import_of_a_jand_module():
    local = {p.stem: sorted({m for m, inside in jand_imports(p) if inside})
             for p in sorted((ROOT / "jand").glob("*.py")) if p.stem not in LOCAL_IMPORTS_ALLOWED}
    local = {k: v for k, v in local.items() if v}
    assert not local, f"import these at the top of the module instead: {local}"
