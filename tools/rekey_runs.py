"""Rename the run folders of a runs folder to the keys this revision gives them (`jand.reproduce.config_key`).

    python tools/rekey_runs.py runs/reproduce/quick/runs

For runs copied from a reproduction of another revision whose keys differ (before bf05f32 a distilled or fine-tuned
run's key held its Teacher's absolute path): renamed, they are found again instead of trained a second time. A model
path of another runs folder counts as the run folder of the same name here.
"""
import sys
from dataclasses import replace
from pathlib import Path
from jand.reproduce import MODEL_OPTIONS, config_key, finished
from jand.training import run_config


def here(path, runs:Path, renamed:dict):
    "`path` (a model file of some run folder) as the same run's model file in `runs`, after the renames so far."
    p = Path(path)
    name = renamed.get(p.parent.name, p.parent.name)
    return str(runs / name / p.name) if (runs / name).is_dir() else path


def rekey(runs:Path) -> dict:
    "Rename every finished run of `runs` whose folder name is not its key; returns old → new names."
    renamed = {}
    for _ in MODEL_OPTIONS + ("",):  # a run keys on the runs it names: repeat until their names settle
        for run in sorted(p for p in runs.iterdir() if finished(p) and (p / "config.json").exists()):
            cfg = run_config(run)
            cfg = replace(cfg, **{k: here(getattr(cfg, k), runs, renamed) for k in MODEL_OPTIONS if getattr(cfg, k)})
            name = f"{cfg.model}-{config_key(cfg)}"
            if name != run.name and not (runs / name).exists():
                run.rename(runs / name)
                renamed[run.name] = name
    return renamed


if __name__ == "__main__":
    for old, new in rekey(Path(sys.argv[1])).items():
        print(f"{old} → {new}")
