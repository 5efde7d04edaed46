"""Make the README screenshots: the real window classifying a folder of clothing photos.

    QT_QPA_PLATFORM=offscreen python tools/screenshot.py [--model PATH] [--out resources/screenshot.png]
    QT_QPA_PLATFORM=offscreen python tools/screenshot.py --view map --out resources/screenshot-map.png

It builds a throw-away folder of links to ``clothing-small/test`` images (neutral file
names), adds a few ``train`` images per class as examples through the same calls the drop
handler uses, opens the folder, waits until every image is classified and the visible
thumbnails are loaded, and saves ``QWidget.grab()`` of the window (kept under 500 KB).
"""
from __future__ import annotations

import argparse
import io
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_DATA = REPO.parent / "shared" / "data" / "clothing-small"
MAX_BYTES = 500_000


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="checkpoint (default: the shipped default model)")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="clothing-small folder")
    ap.add_argument("--classes", default="dress,hat,pants,shoes,t-shirt")
    ap.add_argument("--shots", type=int, default=3, help="examples per class (from train/)")
    ap.add_argument("--per-class", type=int, default=30, help="test images per class")
    ap.add_argument("--size", default="1400x860")
    ap.add_argument("--sort", choices=("name", "least", "most"), default="name")
    ap.add_argument("--view", choices=("grid", "map"), default="grid",
                    help="map: the Map tab, with the queue's images selected")
    ap.add_argument("--out", default=str(REPO / "resources" / "screenshot.png"))
    ap.add_argument("--timeout", type=float, default=900.0)
    return ap.parse_args(argv)


def build_folder(data: Path, classes: list[str], per_class: int, root: Path) -> Path:
    photos = root / "photos"
    photos.mkdir(parents=True)
    files = []
    for c in classes:
        files += sorted((data / "test" / c).glob("*.jpg"))[:per_class]
    random.Random(0).shuffle(files)
    for i, f in enumerate(files):
        (photos / f"IMG_{i + 1:04d}.jpg").symlink_to(f.resolve())
    return photos


def wait(app, cond, timeout: float, what: str) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while not cond():
        app.processEvents()
        time.sleep(0.01)
        if time.monotonic() > end:
            raise SystemExit(f"timed out waiting for {what}")


def save_small(image, out: Path) -> int:  # noqa: ANN001
    """PNG; quantised to a 256-colour palette when the full-colour file is too big."""
    from PySide6.QtCore import QBuffer, QIODevice

    buf = QBuffer()
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")
    data = bytes(buf.data())
    if len(data) > MAX_BYTES:
        from PIL import Image

        im = Image.open(io.BytesIO(data)).convert("RGB")
        q = im.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        b = io.BytesIO()
        q.save(b, "PNG", optimize=True)
        data = b.getvalue()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return len(data)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    data = Path(args.data)
    if not (data / "test").is_dir():
        print(f"{data}/test not found: need the clothing-small data set", file=sys.stderr)
        return 2
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from app.ui.icons import style_sheet
    from app.ui.image_model import Sort
    from app.ui.main_window import MainWindow
    from app.ui.settings import AppSettings

    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    tmp = Path(tempfile.mkdtemp(prefix="fewshot-shot-"))
    photos = build_folder(data, classes, args.per_class, tmp)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setStyleSheet(style_sheet())
    w = MainWindow(model_path=args.model, settings=AppSettings(str(tmp / "settings.ini")))
    width, height = (int(x) for x in args.size.split("x"))
    w.resize(width, height)
    w.show()
    wait(app, lambda: w.session is not None and (w.engine.loaded is not None
                                                  or hasattr(w, "last_warning")),
         args.timeout, "the model")
    if w.engine.loaded is None:
        print(f"model did not load: {w.last_warning}", file=sys.stderr)
        return 2
    for c in classes:
        info = w.add_class(c)
        shots = sorted((data / "train" / c).glob("*.jpg"))[:args.shots]
        w.add_examples(info.id, [str(p) for p in shots])
    w.files.open_folder(str(photos))
    s = w.session
    wait(app, lambda: len(s.images) > 0, args.timeout, "the scan")
    wait(app, lambda: not w.engine.working and not s.scores_stale
         and not s.paths_needing_features(), args.timeout, "classification")
    sort = {"name": Sort.NAME, "least": Sort.LEAST_CONFIDENT, "most": Sort.MOST_CONFIDENT}[args.sort]
    w.review.sort.setCurrentIndex(w.review.sort.findData(int(sort)))
    w.grid.setFocus()
    w.grid.select_paths([w.image_model.path_at(2)])
    if args.view == "map":
        w.views.setCurrentWidget(w.map)
        wait(app, lambda: len(w.map.mapped()) == len(s.images) and not w.map_control.busy,
             args.timeout, "the map")
        w.grid.select_paths(s.suggestions(8))
    end = time.monotonic() + 3.0  # let the visible thumbnails arrive
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)
    c = w.image_model.counts()
    print(f"{c['done']} of {c['total']} images classified with {w.engine.loaded.card.get('name')}")
    n = save_small(w.grab().toImage(), Path(args.out))
    print(f"wrote {args.out} ({n / 1000:.0f} KB)")
    w.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
