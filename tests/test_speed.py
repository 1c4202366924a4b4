"""The speed table behind `jand bench model`: Teacher vs Student, the ratio rows and their verdicts."""
from dataclasses import replace
import csv
import pytest
from jand.charset import Charset
from jand.model import STUDENT_ATTENTION, student_config
from jand.speed import bench_rows, run_bench, speed_ratio_rows

CS = Charset.from_texts(["the quick brown fox jumps over the lazy dog"])
TINY_T = student_config(len(CS), attention=replace(STUDENT_ATTENTION, n_blocks=2))
TINY_S = student_config(len(CS), attention=replace(STUDENT_ATTENTION, n_blocks=1))


def test_speed_ratio_rows_and_verdicts():
    rows = [{"model": m, "device": "cpu", "mode": "inference", "batch": 16, "input": "64x512", "lines_per_s": v}
            for m, v in (("teacher", 100.0), ("student", 250.0))]
    rows += [{"model": m, "device": "cpu", "mode": "train", "batch": 16, "input": "64x512", "lines_per_s": v}
             for m, v in (("teacher", 10.0), ("student", 15.0))]
    r = speed_ratio_rows(rows)
    assert [x["speed_ratio"] for x in r] == [2.5, 1.5]
    assert r[0]["verdict"] == "met" and "verdict" not in r[1]
    assert speed_ratio_rows(rows[:1]) == []


def test_tiny_bench_writes_its_table(tmp_path):
    res = run_bench(tmp_path, teacher=TINY_T, student=TINY_S, batches=(2,), shapes=((32, 64), (32, (40, 80))),
                    train_batch=2, train_shapes=((32, 64),), seconds=0.02, devices=["cpu"], isolate=False, verbose=False)
    rows = list(csv.DictReader(open(res["csv"], encoding="utf-8")))
    assert {r["model"] for r in rows} == {"teacher", "student", "student/teacher"}
    assert "prov_git" in rows[0] and "Student ÷ Teacher" in res["md"].read_text(encoding="utf-8")


@pytest.mark.slow
def test_fresh_process_benchmark_of_the_reference_models(tmp_path):
    rows = bench_rows(batches=(1,), shapes=((64, 256),), train_batch=None, seconds=0.2, devices=["cpu"], verbose=False)
    assert len(rows) == 3 and rows[-1]["model"] == "student/teacher"
