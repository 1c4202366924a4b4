"""Execute the library notebooks in place, the way `nbdev_test` runs them, so they carry their outputs; stamp each
with a hash of the code it ran, and check that the committed outputs still belong to the committed code.

    python tools/notebooks.py run [NOTEBOOK ...]    # execute (default: nbs/*.ipynb), keep outputs, stamp
    python tools/notebooks.py check [NOTEBOOK ...]  # exit 1 naming every notebook without fresh outputs
    python tools/notebooks.py adopt EXECUTED ...    # outputs of `jand reproduce`'s executed copies into nbs/experiments
    python tools/notebooks.py bare NOTEBOOK ...     # drop an experiment notebook's outputs (code changed, not rerun)
    python tools/notebooks.py restamp NOTEBOOK ...  # code changed where no output can differ (imports): stamp again

Cells flagged `#| slow` or `#| eval: false` and `nbdev_export()` cells are skipped, as in `nbdev_test`; a notebook
that raises is left untouched. The stamp lives in the notebook metadata (`jand.code_sha1`, kept by `nbdev_clean`
through `allowed_metadata_keys = jand` in settings.ini).
"""
import base64, hashlib, io, json, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAMP = "jand"  # notebook metadata key
# Figures as JPEG at screen resolution: scans of noisy paper are megabytes as PNG, a few dozen kB as JPEG
FIGURES = ("from matplotlib_inline.backend_inline import set_matplotlib_formats\n"
           "set_matplotlib_formats('jpeg', pil_kwargs={'quality': 80})")


def library_notebooks() -> list:
    "The notebooks that document the package (the experiment notebooks are executed by `jand reproduce`)."
    return sorted((ROOT / "nbs").glob("*.ipynb"))


def code_sha1(nb: dict) -> str:
    "Hash of a notebook's code cells, in order: what its outputs were produced by."
    code = [("".join(c["source"]) if isinstance(c["source"], list) else c["source"]).strip()
            for c in nb["cells"] if c["cell_type"] == "code"]
    return hashlib.sha1("\0".join(code).encode("utf-8")).hexdigest()


def has_outputs(nb: dict) -> bool: return any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")


def problems(path) -> list:
    "Why the outputs committed in `path` are not fresh (an empty list: they are)."
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    found = [] if has_outputs(nb) else ["no outputs"]
    stamped = nb.get("metadata", {}).get(STAMP, {}).get("code_sha1")
    if stamped is None:
        found.append("never stamped: run `make notebooks`")
    elif stamped != code_sha1(nb):
        found.append("its code changed since it was executed: run `make notebooks`")
    return found


def execute(path) -> float:
    "Run `path` in its folder as `nbdev_test` would, write its outputs and stamp into it; seconds taken."
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    from fastcore.xtras import working_directory
    from nbdev.process import NBProcessor
    from nbdev.frontmatter import FrontmatterProc
    path = Path(path).resolve()
    nb = NBProcessor(path, procs=FrontmatterProc, process=True).nb
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []  # execnb writes a cell's outputs only when it has some: an old warning would stay
    skip = {"slow"}

    def not_run(cell):
        if cell.cell_type != "code" or "nbdev_export" + "(" in cell.source:
            return True
        directives = getattr(cell, "directives_", {}) or {}
        return directives.get("eval:", [""])[0].lower() == "false" or bool(skip & directives.keys())

    t0 = time.perf_counter()
    with working_directory(path.parent):
        shell = CaptureShell(path)
        shell.run(FIGURES)
        shell.run_all(nb, exc_stop=True, preproc=not_run)
    raw = read_nb(path)
    ran = {c.get("id"): c for c in nb.cells}
    for cell in raw.cells:
        if cell.cell_type == "code" and cell.get("id") in ran:
            cell.outputs = ran[cell.id].get("outputs", [])
            cell.execution_count = ran[cell.id].get("execution_count")
    raw.metadata[STAMP] = {"code_sha1": code_sha1(raw)}
    write_nb(raw, path)
    return time.perf_counter() - t0


NOTE_ID = "jand-outputs-from"  # the markdown cell that says where an experiment notebook's outputs come from


def _jpeg(output: dict) -> dict:
    "`output` with a PNG figure re-encoded as JPEG (a figure of noisy scans is megabytes as PNG)."
    from PIL import Image
    data = output.get("data", {})
    if "image/png" not in data:
        return output
    buf = io.BytesIO()
    Image.open(io.BytesIO(base64.b64decode(data["image/png"]))).convert("RGB").save(buf, "JPEG", quality=80)
    jpeg = base64.b64encode(buf.getvalue()).decode()
    data = {**{k: v for k, v in data.items() if k != "image/png"}, "image/jpeg": jpeg}
    meta = {("image/jpeg" if k == "image/png" else k): v for k, v in output.get("metadata", {}).items()}
    return {**output, "data": data, "metadata": meta}


def _note(run: dict) -> dict:
    "The markdown cell saying which reproduction produced the outputs below it."
    pm = run.get("metadata", {}).get("papermill", {})
    profile = pm.get("parameters", {}).get("setup", {}).get("profile", "?")
    when = (pm.get("end_time") or "")[:10]
    text = (f"*The outputs below come from `jand reproduce --profile {profile}` ({when}); the tables it wrote name "
            "their code revision in their footers. Opened by hand, the notebook runs the `smoke` profile set in the "
            "parameters cell above.*")
    return {"cell_type": "markdown", "id": NOTE_ID, "metadata": {}, "source": text.splitlines(True)}


def adopt(executed, experiments=ROOT / "nbs" / "experiments") -> Path:
    "Copy the outputs of an executed experiment notebook (`jand reproduce`) into its source, figures as JPEG; stamp it."
    run = json.loads(Path(executed).read_text(encoding="utf-8"))
    target = Path(experiments) / Path(executed).name
    src = json.loads(target.read_text(encoding="utf-8"))
    ran = [c for c in run["cells"] if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    if code_sha1({"cells": ran}) != code_sha1(src):
        raise SystemExit(f"{executed}: executed from other code than {target}: run the reproduction again")
    outputs = {c.get("id"): c.get("outputs", []) for c in ran if c["cell_type"] == "code"}
    cells = []
    for c in src["cells"]:
        if c.get("id") == NOTE_ID:
            continue
        if c["cell_type"] == "code":
            c = {**c, "outputs": [_jpeg(o) for o in outputs.get(c.get("id"), [])], "execution_count": None}
        cells.append(c)
        if "parameters" in c.get("metadata", {}).get("tags", []):
            cells.append(_note(run))
    src["cells"] = cells
    src.setdefault("metadata", {})[STAMP] = {"code_sha1": code_sha1(src)}
    target.write_text(json.dumps(src, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return target


def bare(path) -> Path:
    "Drop the outputs of an experiment notebook whose code changed before a reproduction could run it again."
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    nb["cells"] = [{**c, "outputs": [], "execution_count": None} if c["cell_type"] == "code" else c
                   for c in nb["cells"] if c.get("id") != NOTE_ID]
    nb.get("metadata", {}).pop(STAMP, None)
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return Path(path)


def restamp(path) -> Path:
    ("Stamp an experiment notebook whose code changed only where no output can differ (where names are imported "
     "from); every other change needs a reproduction (`adopt`) or `bare`. Say why in the commit.")
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    if not has_outputs(nb):
        raise SystemExit(f"{path}: no outputs to keep (a bare notebook needs no stamp)")
    nb["metadata"][STAMP] = {"code_sha1": code_sha1(nb)}
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return Path(path)


def main(argv: list) -> int:
    verb, paths = (argv[0] if argv else "check"), [Path(p) for p in argv[1:]] or library_notebooks()
    if verb == "run":
        total = 0.0
        for p in paths:
            seconds = execute(p)
            total += seconds
            print(f"{seconds:7.1f} s  {p.name}", flush=True)
        print(f"{total / 60:7.1f} min in all")
        return 0
    if verb == "check":
        stale = {p.name: problems(p) for p in paths}
        for name, why in stale.items():
            if why:
                print(f"{name}: {'; '.join(why)}")
        return int(any(stale.values()))
    if verb == "adopt":
        for p in argv[1:]:
            print(f"outputs of {p} → {adopt(p)}")
        return 0
    if verb == "bare":
        for p in paths:
            print(f"outputs dropped: {bare(p)}")
        return 0
    if verb == "restamp":
        for p in paths:
            print(f"stamped again: {restamp(p)}")
        return 0
    raise SystemExit(f"unknown verb {verb!r}: use run, check, adopt, bare or restamp")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
