"""tools/rehash_runs.py: a run trained by code proven the same as this checkout's gets this checkout's hash."""
import importlib.util
import json
from pathlib import Path
import jand
from jand.lab.runs import TRAINING_CODE

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("rehash_runs", ROOT / "tools" / "rehash_runs.py")
rehash_runs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rehash_runs)


def _run(folder: Path, code: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.pt").write_text("")
    (folder / "summary.json").write_text(json.dumps({"steps": 1, "training_code": code}))
    return folder


def _sources() -> dict:
    folder = Path(jand.__file__).parent
    names = dict.fromkeys((*rehash_runs.OLD_MODULES, *TRAINING_CODE))
    return {n: (folder / f"{n}.py").read_text(encoding="utf-8") for n in names if (folder / f"{n}.py").exists()}


def test_runs_of_the_same_code_by_either_hash_are_rehashed(tmp_path):
    then, now = _sources(), rehash_runs.training_code()
    old = rehash_runs.old_hash(then)
    assert old is not None and old != now
    mine, other = _run(tmp_path / "teacher-0000000001", old), _run(tmp_path / "teacher-0000000002", "0123456789")
    assert rehash_runs.rehash(tmp_path, then, now) == [mine.name]
    summary = json.loads((mine / "summary.json").read_text())
    assert (summary["training_code"], summary["training_code_before"]) == (now, old)
    assert json.loads((other / "summary.json").read_text())["training_code"] == "0123456789"  # left as it was
    assert rehash_runs.rehash(tmp_path, then, now) == []  # once only


def test_other_code_rewrites_nothing(tmp_path):
    then = _sources()
    changed = {**then, "training": then["training"] + "\nEXTRA = 1\ndef extra(): return EXTRA\n"}
    run = _run(tmp_path / "teacher-0000000001", rehash_runs.old_hash(changed))
    assert rehash_runs.rehash(tmp_path, changed, rehash_runs.training_code()) == []
    assert json.loads((run / "summary.json").read_text())["training_code"] == rehash_runs.old_hash(changed)
