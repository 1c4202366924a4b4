"""tools/rehash_runs.py: a run trained by this checkout's code (by the old per-module hash) gets the new hash."""
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("rehash_runs", ROOT / "tools" / "rehash_runs.py")
rehash_runs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rehash_runs)


def _run(folder: Path, code: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.pt").write_text("")
    (folder / "summary.json").write_text(json.dumps({"steps": 1, "training_code": code}))
    return folder


def test_only_runs_of_this_code_by_the_old_hash_are_rehashed(tmp_path):
    old, new = rehash_runs.old_training_code(), rehash_runs.training_code()
    assert old is not None and old != new
    mine, other = _run(tmp_path / "teacher-0000000001", old), _run(tmp_path / "teacher-0000000002", "0123456789")
    assert rehash_runs.rehash(tmp_path) == [mine.name]
    summary = json.loads((mine / "summary.json").read_text())
    assert (summary["training_code"], summary["training_code_v1"]) == (new, old)
    assert json.loads((other / "summary.json").read_text())["training_code"] == "0123456789"  # left as it was
    assert rehash_runs.rehash(tmp_path) == []  # once only
