"""Execute the library notebooks in place, the way `nbdev_test` runs them, so they carry their outputs; stamp each
with a hash of the code it ran, and check that the committed outputs still belong to the committed code.

    python tools/notebooks.py run [NOTEBOOK ...]    # execute (default: nbs/*.ipynb), keep outputs, stamp
    python tools/notebooks.py check [NOTEBOOK ...]  # exit 1 naming every notebook without fresh outputs
    python tools/notebooks.py adopt EXECUTED ...    # outputs of `jand reproduce`'s executed copies into nbs/experiments
    python tools/notebooks.py bare NOTEBOOK ...     # drop an experiment notebook's outputs (code changed, not rerun)
    python tools/notebooks.py restamp NOTEBOOK ...  # code changed where no output can differ (imports): stamp again
    python tools/notebooks.py beside [NOTEBOOK ...] # how many definitions a test or usage cell follows, longest runs

Cells flagged `#| slow` or `#| eval: false` and `nbdev_export()` cells are skipped, as in `nbdev_test`; a notebook
that raises is left untouched. The stamp lives in the notebook metadata (`jand.code_sha1`, kept by `nbdev_clean`
through `allowed_metadata_keys = jand` in settings.ini).
"""
import base64, hashlib, io, json, re, sys, time
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


EXPORT = re.compile(r"^#\|\s*export[si]?\s*$", re.M)  # `#| export`, `#|export`, `#| exports`, `#| exporti`
DEFINITION = re.compile(r"^(?:async\s+)?def\s|^class\s", re.M)  # a top-level def or class


def _source(cell: dict) -> str: return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def is_export(cell: dict) -> bool: return cell["cell_type"] == "code" and bool(EXPORT.search(_source(cell)))


def is_definition(cell: dict) -> bool: return is_export(cell) and bool(DEFINITION.search(_source(cell)))


def is_check(cell: dict) -> bool:
    "A plain code cell that runs something a reader sees or a test asserts (not export, skipped or `nbdev_export()`)."
    src = _source(cell)
    code = [ln for ln in src.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return (cell["cell_type"] == "code" and not is_export(cell) and bool(code) and "nbdev_export" + "(" not in src
            and not re.search(r"^#\|\s*eval:\s*false", src, re.M | re.I))


def beside(path) -> dict:
    "How the tests sit beside the definitions of the notebook at `path`: `definitions`, `followed` (the next code cell "
    "is a test or usage cell), `longest_run` of export cells with no test or usage cell between them, `longest_cell` "
    "(lines of the longest export cell)."
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    defs = [i for i, c in enumerate(code) if is_definition(c)]
    followed = sum(1 for i in defs if i + 1 < len(code) and is_check(code[i + 1]))
    run = longest = 0
    for c in code:
        if is_export(c):
            run += 1
            longest = max(longest, run)
        elif is_check(c):
            run = 0
    lines = [len(_source(c).rstrip("\n").splitlines()) for c in code if is_export(c)]
    return {"definitions": len(defs), "followed": followed, "longest_run": longest,
            "longest_cell": max(lines, default=0)}


def beside_report(paths=None) -> dict:
    "`beside` for each notebook (default: the library notebooks) and `overall` summed; prints nothing."
    per = {Path(p).stem: beside(p) for p in (paths or library_notebooks())}
    overall = {"definitions": sum(r["definitions"] for r in per.values()),
               "followed": sum(r["followed"] for r in per.values()),
               "longest_run": max((r["longest_run"] for r in per.values()), default=0),
               "longest_cell": max((r["longest_cell"] for r in per.values()), default=0)}
    return {**per, "overall": overall}


def ratio(r: dict) -> float: return r["followed"] / r["definitions"] if r["definitions"] else 1.0


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
    if verb == "beside":
        for name, r in beside_report(paths).items():
            print(f"{name:16} {r['followed']:3}/{r['definitions']:3} = {ratio(r):4.0%} followed by a test or usage; "
                  f"longest run {r['longest_run']:2} export cells; longest export cell {r['longest_cell']:3} lines")
        return 0
    raise SystemExit(f"unknown verb {verb!r}: use run, check, adopt, bare, restamp or beside")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
