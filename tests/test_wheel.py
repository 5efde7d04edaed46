"""The product as a user installs it: a wheel built from this checkout, installed into a new
virtual environment in an empty folder, classifies a folder with the default model and opens
the window (offscreen) far enough to load that model.

The wheel is installed with ``--no-deps``: installing torch and Qt again would take minutes
and gigabytes, so the new environment borrows the *dependencies* of the test environment
through a ``.pth`` file of links -- every entry except this project's own (its editable
hook, its metadata). ``app`` itself can only come from the wheel, which the tests check.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.imaging_helpers import solid

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = "photo-mobilenetv2-lite1"  # app/core/defaults.py PREFERENCE[0]
OWN = ("app", "fewshot_label", "_editable_impl_fewshot_label", "__editable__")

WINDOW_SMOKE = r"""
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from app.ui.main_window import MainWindow

app = QApplication([])
win = MainWindow(folder=sys.argv[1])
win.show()
def check():
    if win.engine.loaded is not None:
        print("loaded", win.engine.loaded.card.get("name"), win.engine.loaded.path, flush=True)
        win.close()
        app.exit(0)
timer = QTimer()
timer.timeout.connect(check)
timer.start(100)
QTimer.singleShot(240_000, lambda: app.exit(3))
sys.exit(app.exec())
"""


def _run(cmd, env, cwd, timeout=300):
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    wheels = tmp / "dist"
    build = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                  "--quiet", "-w", str(wheels), str(REPO)], dict(os.environ), tmp)
    assert build.returncode == 0, build.stderr
    wheel = next(wheels.glob("fewshot_label-*.whl"))

    venv = tmp / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], dict(os.environ), tmp)
    assert made.returncode == 0, made.stderr
    py = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    inst = _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps",
                 "--no-index", "--quiet", str(wheel)], dict(os.environ), tmp)
    assert inst.returncode == 0, inst.stderr

    deps = tmp / "deps"  # the test environment's packages, less this project
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.startswith(OWN):
            (deps / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     {}, tmp).stdout.strip())
    (site / "zz_borrowed_deps.pth").write_text(f"import site; site.addsitedir({str(deps)!r})\n")

    home = tmp / "home"  # per-user folders (cache, data, config) of the pretend user
    env = {"PATH": f"{py.parent}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(home),
           "XDG_CACHE_HOME": str(home / "cache"), "XDG_DATA_HOME": str(home / "data"),
           "XDG_CONFIG_HOME": str(home / "config"), "QT_QPA_PLATFORM": "offscreen",
           "LANG": "C.UTF-8"}
    empty = tmp / "empty"
    empty.mkdir()
    return {"wheel": wheel, "py": py, "bin": py.parent, "site": site, "env": env, "cwd": empty,
            "tmp": tmp}


def _package_files(site: Path) -> set[str]:
    return {str(p.relative_to(site)) for p in (site / "app").rglob("*")
            if "__pycache__" not in p.parts}


def test_wheel_carries_the_package_and_its_models_only(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"app", installed["wheel"].name.split("-")[0] + "-"
                    + installed["wheel"].name.split("-")[1] + ".dist-info"}
    for f in (f"app/_bundled/pretrained/{DEFAULT_MODEL}.safetensors",
              f"app/_bundled/pretrained/{DEFAULT_MODEL}.json",
              "app/_bundled/resources/icons/app.svg", "app/_bundled/resources/style.qss"):
        assert f in names
    entry_points = zipfile.ZipFile(installed["wheel"]).read(
        next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[gui_scripts]\nfewshot-label = app.ui.launch:main" in entry_points
    assert "[console_scripts]\nfewshot = app.cli:main" in entry_points


def test_installed_app_comes_from_the_wheel_not_the_checkout(installed):
    r = _run([str(installed["py"]), "-c",
              "import app, sys; print(app.__file__); print(sys.path)"],
              installed["env"], installed["cwd"])
    assert r.returncode == 0, r.stderr
    first, path = r.stdout.splitlines()[:2]
    assert first.startswith(str(installed["site"]))
    assert str(REPO) not in path
    for script in ("fewshot", "fewshot-label"):
        v = _run([str(installed["bin"] / script), "--version"], installed["env"], installed["cwd"])
        assert v.returncode == 0, v.stderr
        assert v.stdout.strip() == f"{script} {installed['wheel'].name.split('-')[1]}"


def test_installed_classify_and_window_use_the_bundled_default_model(installed):
    tmp, env, cwd = installed["tmp"], installed["env"], installed["cwd"]
    support, photos = tmp / "support", tmp / "photos"
    for i in range(3):
        solid(support / "red" / f"r{i}.png", "red", size=(64, 48), seed=100 + i)
        solid(support / "blue" / f"b{i}.png", "blue", size=(64, 48), seed=200 + i)
    truth = {}
    for i in range(6):
        truth[str(solid(photos / f"red_{i}.png", "red", size=(64, 48), seed=i))] = "red"
        truth[str(solid(photos / f"blue_{i}.jpg", "blue", size=(64, 48), seed=50 + i,
                        fmt="JPEG"))] = "blue"
    (photos / "broken.jpg").write_bytes(b"not an image")
    before = _package_files(installed["site"])

    out = tmp / "labels.csv"
    r = _run([str(installed["bin"] / "fewshot"), "classify", "--support", str(support),
              "--images", str(photos), "--out", str(out), "--device", "cpu", "--quiet"], env, cwd)
    assert r.returncode == 0, r.stderr
    assert DEFAULT_MODEL in r.stderr + r.stdout  # the summary names the model it used
    assert "broken.jpg" in r.stderr              # reported, skipped
    with open(out, newline="", encoding="utf-8") as f:
        rows = {row["path"]: row["label"] for row in csv.DictReader(f)}
    assert {p: rows[p] for p in truth} == truth

    w = _run([str(installed["py"]), "-c", WINDOW_SMOKE, str(photos)], env, cwd)
    assert w.returncode == 0, w.stdout + w.stderr
    assert f"loaded {DEFAULT_MODEL}" in w.stdout
    assert str(installed["site"]) in w.stdout    # the model file inside the installed package

    # Everything written went to the user's folders, nothing into the installed package.
    assert _package_files(installed["site"]) == before
    assert any((Path(env["XDG_CACHE_HOME"])).rglob("*.onnx"))
