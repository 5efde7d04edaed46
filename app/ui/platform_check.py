"""Say which system packages are missing before Qt aborts on a bare Linux desktop.

Qt 6's xcb platform plugin needs libraries that fresh Ubuntu/Debian installs often lack
(``libxcb-cursor0`` above all). Without them Qt prints "no Qt platform plugin could be
initialized" and aborts with a core dump. ``missing_system_libraries()`` tries to load each
library first, so the launcher can print one line naming the packages to install.
No Qt import here: the check runs before Qt loads.
"""
from __future__ import annotations

import ctypes
import os
import sys
from typing import Callable

# Library sonames Qt's xcb plugin loads, and the Debian/Ubuntu package of each.
XCB_LIBRARIES = {  # the NEEDED entries of PySide6's libqxcb.so / libQt6XcbQpa.so, plus Qt Gui's
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}


def _loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
        return True
    except OSError:
        return False


def uses_xcb(env: dict[str, str] | None = None, platform: str = sys.platform) -> bool:
    """Whether Qt will pick its xcb (X11) plugin: Linux, no platform forced to something
    else, and no Wayland session (Qt 6 prefers Wayland there)."""
    env = os.environ if env is None else env
    if not platform.startswith("linux"):
        return False
    forced = env.get("QT_QPA_PLATFORM", "")
    if forced:
        return forced.split(":")[0] == "xcb"
    return not env.get("WAYLAND_DISPLAY")


def missing_system_libraries(loads: Callable[[str], bool] = _loads,
                             env: dict[str, str] | None = None,
                             platform: str = sys.platform) -> list[str]:
    """Debian/Ubuntu packages whose libraries the xcb plugin needs and cannot load."""
    if not uses_xcb(env, platform):
        return []
    return [pkg for so, pkg in XCB_LIBRARIES.items() if not loads(so)]


def platform_problem(loads: Callable[[str], bool] = _loads, env: dict[str, str] | None = None,
                     platform: str = sys.platform) -> str | None:
    """One line for the user when the window cannot open here, else None."""
    missing = missing_system_libraries(loads, env, platform)
    if missing:
        return ("fewshot-label: the window needs system libraries that are missing: install them "
                f"with  sudo apt install {' '.join(missing)}  (Debian/Ubuntu package names). "
                "The command line (fewshot classify ...) works without them.")
    env = os.environ if env is None else env
    if uses_xcb(env, platform) and not env.get("DISPLAY"):
        return ("fewshot-label: no display to open the window on (DISPLAY is not set). Run it "
                "in a desktop session, or use the command line: fewshot classify ...")
    return None
