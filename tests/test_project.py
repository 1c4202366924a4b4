"""The project's own promises: pins agree everywhere, the package imports, notebooks follow the conventions."""
import configparser, json, re
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
