"""The models shipped in `models/`: each card's numbers are its model's (read again on the card's sample lines)."""
import json, subprocess, sys
from pathlib import Path
import pytest

from jand.metrics import cer
from jand.modeldir import card_checks, model_rows
from jand.store import shipped_models

SHIPPED = shipped_models()


def jand(*args):
    "The console script, as a user runs it."
    r = subprocess.run([str(Path(sys.executable).parent / "jand"), *map(str, args)], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


@pytest.mark.skipif(not SHIPPED, reason="no shipped models yet: `jand reproduce --only models` writes them")
@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_card_matches_its_model(name):
    checks = card_checks(SHIPPED[name])
    assert checks, f"{name}'s card carries no sample check"
    for data, on_card, again in checks:
        assert on_card == again, f"{name} on {data}: the card says {on_card} % CER, the model reads {again} %"


@pytest.mark.skipif(not SHIPPED, reason="no shipped models yet")
def test_shipped_models_are_listed_with_their_metrics():
    rows = model_rows()
    assert [r["model"] for r in rows] == list(SHIPPED)
    assert all("CER" in r["metrics"] and r["MB"] < 20 for r in rows)  # small enough for the repository


@pytest.mark.skipif("student" not in SHIPPED, reason="no shipped Student yet")
def test_the_readme_example_reads_lines_with_no_training(tmp_path):
    "The README's first commands: eight synthetic lines by writers of the test split, read by the shipped Student."
    jand("synth", tmp_path / "lines", "--train", "0", "--val", "0", "--test", "8", "--seed", "7")
    read = tmp_path / "read.json"
    jand("predict", "--model", "student", tmp_path / "lines" / "test", "--format", "json", "--out", read)
    rows = json.loads(read.read_text(encoding="utf-8"))
    refs = [Path(r["image"]).with_suffix("").with_suffix(".gt.txt").read_text(encoding="utf-8").strip() for r in rows]
    assert len(rows) == 8
    assert cer(refs, [r["text"] for r in rows]).value < 25  # read, not guessed (the card states the test CER)
