"""Rewrite the training-code hash of runs trained before `jand.lab.runs.code_hash` (one hash per module, in order) to
the hash this revision gives the same code, where the old hash proves the code the same.

    python tools/rehash_runs.py runs/reproduce/quick/runs [...]

The old hash read each module of `TRAINING_CODE` whole, in order, so moving a definition between modules changed it.
A run whose summary names the old hash of *this checkout's* code was trained by the code this checkout holds: its
summary gets this revision's `training_code()`, and the old one is kept under `training_code_v1`. A run with any other
hash is left as it is (it reads as made by other training code, as before). Only the revision that brought the new
hash can prove anything: once a module of the list has changed, the old hash of the checkout matches no run.
"""
import ast, hashlib, sys
from pathlib import Path
import jand
from jand.lab.runs import TRAINING_CODE, finished, training_code
from jand.runfolder import read_summary, write_summary

OLD_MODULES = ("core", "charset", "normalise", "images", "preprocess", "readers", "sources", "synth", "prose", "digits",
               "loading", "curriculum", "backbone", "attention", "baselines", "model", "store", "runfolder", "modeldir",
               "kd", "decoding", "metrics", "training")  # the list the old hash read, in its order


def old_fingerprint(source: str) -> str:
    "The old per-module fingerprint: the module's syntax tree without docstrings, as text."
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def old_training_code() -> str:
    "The old hash of this checkout's code (`None` when a module it read is gone)."
    folder, h = Path(jand.__file__).parent, hashlib.sha1()
    for name in OLD_MODULES:
        if not (folder / f"{name}.py").exists():
            return None
        h.update(old_fingerprint((folder / f"{name}.py").read_text(encoding="utf-8")).encode())
    return h.hexdigest()[:10]


def rehash(runs: Path) -> list:
    "Give every finished run of `runs` trained by this checkout's code (by the old hash) the new hash; returns them."
    old, new, done = old_training_code(), training_code(), []
    for run in sorted(p for p in runs.iterdir() if p.is_dir() and finished(p)):
        summary = read_summary(run)
        if old and summary.get("training_code") == old:
            write_summary(run, {**summary, "training_code": new, "training_code_v1": old})
            done.append(run.name)
    return done


if __name__ == "__main__":
    if not sys.argv[1:]:
        raise SystemExit(__doc__)
    print(f"old hash of this checkout: {old_training_code()}; new: {training_code()} ({len(TRAINING_CODE)} modules)")
    for folder in sys.argv[1:]:
        names = rehash(Path(folder))
        print(f"{folder}: {len(names)} run(s) rehashed" + (f": {', '.join(names)}" if names else ""))
