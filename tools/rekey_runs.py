"""Rename the run folders of a runs folder to the keys this revision gives them (`jand.reproduce.config_key`).

    python tools/rekey_runs.py runs/reproduce/quick/runs

For runs copied from a reproduction of another revision whose keys differ (before bf05f32 a distilled or fine-tuned
run's key held its Teacher's absolute path): renamed, they are found again instead of trained a second time. A model
path of another runs folder counts as the run folder of the same name here.
"""
import sys
from dataclasses import replace
from pathlib import Path
from jand.lab.runs import MODEL_OPTIONS, finished, run_name
from jand.training import run_config


def here(path, runs:Path, renamed:dict):
    "`path` (a model file of some run folder) as the same run's model file in `runs`, after the renames so far."
    p = Path(path)
    name = renamed.get(p.parent.name, p.parent.name)
    return str(runs / name / p.name) if (runs / name).is_dir() else path


def rekey(runs:Path) -> dict:
    "Rename every finished run of `runs` whose folder name is not its key; returns old → new names."
    renamed, settled = {}, False
    while not settled:  # a run keys on the runs it names: repeat until their names settle
        settled = True
        for run in sorted(p for p in runs.iterdir() if finished(p) and (p / "config.json").exists()):
            cfg = run_config(run)
            name = run_name(replace(cfg, **{k: here(getattr(cfg, k), runs, renamed)
                                            for k in MODEL_OPTIONS if getattr(cfg, k)}))
            if name == run.name:
                continue
            if (runs / name).exists():
                print(f"{run.name}: left as it is, {name} exists already", file=sys.stderr)
                continue
            run.rename(runs / name)
            renamed[run.name], settled = name, False
    return renamed


if __name__ == "__main__":
    for old, new in rekey(Path(sys.argv[1])).items():
        print(f"{old} → {new}")
