"""The launcher names missing system packages instead of letting Qt abort."""
from app.ui import launch
from app.ui.platform_check import XCB_LIBRARIES, missing_system_libraries, platform_problem

X11 = {"DISPLAY": ":0"}


def test_missing_xcb_libraries_are_named_by_package():
    loads = lambda so: so not in ("libxcb-cursor.so.0", "libxkbcommon-x11.so.0")  # noqa: E731
    assert missing_system_libraries(loads, X11, "linux") == ["libxcb-cursor0", "libxkbcommon-x11-0"]
    msg = platform_problem(loads, X11, "linux")
    assert "sudo apt install libxcb-cursor0 libxkbcommon-x11-0" in msg


def test_no_check_off_xcb():
    nothing = lambda so: False  # noqa: E731
    assert missing_system_libraries(nothing, X11, "win32") == []
    assert missing_system_libraries(nothing, {**X11, "QT_QPA_PLATFORM": "offscreen"}, "linux") == []
    assert missing_system_libraries(nothing, {**X11, "WAYLAND_DISPLAY": "wayland-0"}, "linux") == []
    assert len(missing_system_libraries(nothing, {**X11, "QT_QPA_PLATFORM": "xcb"}, "linux")) \
        == len(XCB_LIBRARIES)


def test_no_display_is_said_plainly():
    assert "DISPLAY is not set" in platform_problem(lambda so: True, {}, "linux")
    assert platform_problem(lambda so: True, X11, "linux") is None


def test_launcher_prints_the_line_and_exits_before_qt(monkeypatch, capsys):
    monkeypatch.setattr(launch, "platform_problem", lambda: "fewshot-label: install libxcb-cursor0")
    assert launch.main([]) == 1
    assert "libxcb-cursor0" in capsys.readouterr().err
