"""The GUI thread never blocks while a folder is classified: a 10 ms timer keeps firing
while a deliberately slow backbone embeds the folder in the background."""
from __future__ import annotations

import subprocess
import sys
import time

from PySide6.QtCore import QTimer

from app.core.embedding import Embedder
from tests.imaging_helpers import solid

from .conftest import REPO_ROOT, coloured_folder, drop_files, wait_idle


def test_timer_keeps_firing_while_classifying(make_window, qtbot, tmp_path, monkeypatch):
    real_infer = Embedder._infer

    def slow_infer(self, arrays, *args, **kwargs):
        time.sleep(0.05)  # a slow backbone: the run lasts a few seconds
        return real_infer(self, arrays, *args, **kwargs)

    monkeypatch.setattr(Embedder, "_infer", slow_infer)
    w = make_window()
    w.engine.loaded.embedder.batch_size = 4
    red, blue = w.add_class("red"), w.add_class("blue")
    drop_files(w.class_panel.card(red.id), [solid(tmp_path / "r.png", "red")])
    drop_files(w.class_panel.card(blue.id), [solid(tmp_path / "b.png", "blue", seed=9)])
    coloured_folder(tmp_path / "photos", 40, 40)
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    start = time.monotonic()
    w.files.open_folder(str(tmp_path / "photos"))
    wait_idle(qtbot, w)
    timer.stop()
    elapsed = time.monotonic() - start
    assert w.image_model.counts()["done"] == 80
    assert elapsed > 0.5          # the run really took a while (20 batches x 50 ms)
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert len(ticks) > 10
    assert max(gaps) < 0.5, f"GUI thread blocked for {max(gaps):.3f} s"


def test_window_module_does_not_import_torch():
    """The window appears before torch is imported (it loads in a worker)."""
    code = ("import sys; import app.ui.main_window, app.ui.launch; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr or "torch was imported by the window modules"


def test_opening_another_folder_mid_run_switches_to_it(make_window, qtbot, tmp_path, monkeypatch):
    real_infer = Embedder._infer
    seen: list[int] = []

    def slow_infer(self, arrays, *args, **kwargs):
        seen.append(len(arrays))
        time.sleep(0.05)
        return real_infer(self, arrays, *args, **kwargs)

    monkeypatch.setattr(Embedder, "_infer", slow_infer)
    w = make_window()
    w.engine.loaded.embedder.batch_size = 4
    red, blue = w.add_class("red"), w.add_class("blue")
    drop_files(w.class_panel.card(red.id), [solid(tmp_path / "r.png", "red")])
    drop_files(w.class_panel.card(blue.id), [solid(tmp_path / "b.png", "blue", seed=9)])
    coloured_folder(tmp_path / "big", 60, 60)
    small = coloured_folder(tmp_path / "small", 3, 3, seed=900)
    w.files.open_folder(str(tmp_path / "big"))
    qtbot.waitUntil(lambda: len(seen) >= 3, timeout=20_000)   # the big folder is under way
    w.files.open_folder(str(tmp_path / "small"))
    wait_idle(qtbot, w)
    m = w.image_model
    assert sorted(m.paths) == sorted(small) and m.counts()["done"] == len(small)
    names = [c.name for c in m.classes]
    assert {p: names[m.label[m.row_of[p]]] for p in small} == small
    assert sum(seen) < 120            # the rest of the big folder was not embedded


def test_a_failing_backbone_is_one_message_not_a_retry_loop(make_window, qtbot, tmp_path, monkeypatch):
    calls: list[int] = []

    def broken_infer(self, arrays, *args, **kwargs):
        calls.append(len(arrays))
        raise RuntimeError("inference backend exploded")

    monkeypatch.setattr(Embedder, "_infer", broken_infer)
    w = make_window()
    red, blue = w.add_class("red"), w.add_class("blue")
    drop_files(w.class_panel.card(red.id), [solid(tmp_path / "r.png", "red")])
    drop_files(w.class_panel.card(blue.id), [solid(tmp_path / "b.png", "blue", seed=9)])
    coloured_folder(tmp_path / "photos", 3, 3)
    w.files.open_folder(str(tmp_path / "photos"))
    qtbot.waitUntil(lambda: getattr(w, "last_warning", ("",))[0] == "Classification failed",
                    timeout=20_000)
    assert "exploded" in w.last_warning[1]
    qtbot.waitUntil(lambda: not w.engine.working, timeout=10_000)
    n = len(calls)
    qtbot.wait(500)
    assert len(calls) == n and n <= 3        # stopped, not retrying in a loop
    monkeypatch.undo()                       # the cause goes away; F5 tries again
    w.acts.classify.trigger()
    wait_idle(qtbot, w)
    assert w.image_model.counts()["done"] == 6


def test_long_sessions_do_not_abort_the_interpreter():
    """Hundreds of thousands of Qt calls (a long labeling session) must not run the
    interpreter out of references to None (PySide6 6.12.0 on Python < 3.12 leaked one per
    void call and aborted with 'none_dealloc'); importing app.ui guards against it."""
    code = ("import os; os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
            "import app.ui\n"
            "from PySide6.QtWidgets import QApplication, QLabel\n"
            "a = QApplication([]); w = QLabel()\n"
            "for i in range(300_000):\n    w.setText('x')\n"
            "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-2000:]
