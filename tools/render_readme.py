"""Render README.md from nbs/index.ipynb without Quarto (nbdev_readme needs Quarto, which is not installable here).

Markdown cells are copied; visible code cells become fenced Python with their text outputs (Markdown outputs are
copied as Markdown; `#| echo: false` shows only the output); `#| hide` cells and nbdev directives are dropped. The sync check runs this, so README.md always matches the notebook.
"""
from pathlib import Path
import json, sys

root = Path(__file__).resolve().parents[1]
nb = json.loads((root / "nbs" / "index.ipynb").read_text(encoding="utf-8"))
out = ["<!-- Generated from nbs/index.ipynb by tools/render_readme.py: edit the notebook, not this file. -->", ""]
for cell in nb["cells"]:
    src = "".join(cell["source"])
    if cell["cell_type"] == "markdown":
        out += [src, ""]
        continue
    lines = src.splitlines()
    directives = [l for l in lines if l.startswith("#|")]
    if any(d.split()[1:2] == ["hide"] for d in directives if len(d.split()) > 1): continue
    code = "\n".join(l for l in lines if not l.startswith("#|")).strip()
    echo = not any(d.replace(" ", "") == "#|echo:false" for d in directives)  # `#| echo: false`: outputs only
    if code and echo: out += ["```python", code, "```", ""]
    text = []
    for o in cell.get("outputs", []):
        data = o.get("data", {})
        if o.get("output_type") == "stream": text.append("".join(o["text"]))
        elif "text/markdown" in data:  # tables the notebook reads from results/: shown as Markdown, not as code
            if text: out += ["```", "".join(text).rstrip(), "```", ""]; text = []
            out += ["".join(data["text/markdown"]).rstrip(), ""]
        elif "text/plain" in data and "image/png" not in data: text.append("".join(data["text/plain"]))
    if text: out += ["```", "".join(text).rstrip(), "```", ""]
(root / "README.md").write_text("\n".join(out).rstrip() + "\n", encoding="utf-8")
print("README.md rendered from nbs/index.ipynb")
