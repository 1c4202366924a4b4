"""The library notebooks are committed executed, with outputs produced by the code that is committed beside them."""
import importlib.util, json
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("notebooks_tool", ROOT / "tools" / "notebooks.py")
notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(notebooks)


@pytest.mark.parametrize("path", notebooks.library_notebooks(), ids=lambda p: p.name)
def test_notebook_carries_fresh_outputs(path):
    assert notebooks.problems(path) == [], f"{path.name}: {notebooks.problems(path)}"


def _copy(tmp_path, edit=None):
    nb = json.loads((ROOT / "nbs" / "01_charset.ipynb").read_text(encoding="utf-8"))
    if edit:
        edit(nb)
    out = tmp_path / "nb.ipynb"
    out.write_text(json.dumps(nb), encoding="utf-8")
    return out


def test_a_source_edit_without_re_execution_is_caught(tmp_path):
    def edit(nb):
        cell = next(c for c in nb["cells"] if c["cell_type"] == "code" and c.get("outputs"))
        cell["source"] = cell["source"] + ["\nprint('changed')"]
    assert notebooks.problems(_copy(tmp_path)) == []
    assert any("code changed" in p for p in notebooks.problems(_copy(tmp_path, edit)))


def test_markdown_edits_keep_outputs_fresh(tmp_path):
    def edit(nb):
        next(c for c in nb["cells"] if c["cell_type"] == "markdown")["source"].append("\nA new sentence.")
    assert notebooks.problems(_copy(tmp_path, edit)) == []


def test_a_notebook_without_outputs_or_stamp_is_caught(tmp_path):
    def strip(nb):
        for c in nb["cells"]:
            if c["cell_type"] == "code":
                c["outputs"] = []
        nb["metadata"].pop(notebooks.STAMP, None)
    found = notebooks.problems(_copy(tmp_path, strip))
    assert "no outputs" in found and any("never stamped" in p for p in found)
