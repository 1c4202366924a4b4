"""Give runs trained at an earlier revision this revision's training-code hash, where the code is proven the same.

    python tools/rehash_runs.py --from REV runs/reproduce/quick/runs [...]

A run's summary names the hash of the training code that made it (`jand.lab.runs.training_code`). Before cdf0ea2 that
hash read each module of the list whole, in order (`old_hash`), so moving a definition between modules changed it;
today's hash (`code_hash`) reads what the code does, wherever it sits. This tool reads the training modules as they
were at revision REV (`git show`), and when today's hash of that code equals this checkout's `training_code()`, the
code that trained them is this checkout's: every finished run whose summary names REV's old hash
gets this checkout's hash, and keeps the hash it had under `training_code_before`. Any other run is left as it is (it
reads as made by other training code, as before). When the code differs, nothing is rewritten.
"""
import ast, hashlib, subprocess, sys
from pathlib import Path
from jand.lab.runs import TRAINING_CODE, code_hash, finished, training_code
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


def old_hash(sources: dict) -> str | None:
    "The old hash of the modules `sources` (name → text); None when a module it read is missing."
    if not set(OLD_MODULES) <= set(sources):
        return None
    h = hashlib.sha1()
    for name in OLD_MODULES:
        h.update(old_fingerprint(sources[name]).encode())
    return h.hexdigest()[:10]


def sources_at(rev: str, root: Path = Path(".")) -> dict:
    "The training modules (old and today's list) as they were at git revision `rev`, by name; absent ones left out."
    out = {}
    for name in dict.fromkeys((*OLD_MODULES, *TRAINING_CODE)):
        shown = subprocess.run(["git", "show", f"{rev}:jand/{name}.py"], cwd=root, capture_output=True, text=True)
        if shown.returncode == 0:
            out[name] = shown.stdout
    return out


def rehash(runs: Path, then: dict, now: str) -> list:
    ("Give every finished run of `runs` whose hash is the old hash of the code `then` the hash `now`, when today's "
     "hash of `then` is `now` (the same code); returns the runs rewritten.")
    old, done = old_hash(then), []
    if old is None or code_hash(list(then.values())) != now:
        return []
    for run in sorted(p for p in runs.iterdir() if p.is_dir() and finished(p)):
        summary = read_summary(run)
        if summary.get("training_code") == old:
            write_summary(run, {**summary, "training_code": now, "training_code_before": summary["training_code"]})
            done.append(run.name)
    return done


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] != "--from":
        raise SystemExit(__doc__)
    then, now = sources_at(sys.argv[2]), training_code()
    same = code_hash(list(then.values())) == now
    print(f"training code at {sys.argv[2]}: old hash {old_hash(then)}, today's {code_hash(list(then.values()))}; "
          f"this checkout: {now} ({'the same code' if same else 'other code: nothing rewritten'})")
    for folder in sys.argv[3:]:
        if not Path(folder).is_dir():
            raise SystemExit(f"{folder}: no such folder of runs")
        names = rehash(Path(folder), then, now)
        print(f"{folder}: {len(names)} run(s) rehashed" + (f": {', '.join(names)}" if names else ""))
