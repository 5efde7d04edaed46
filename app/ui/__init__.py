"""The Qt desktop app (PySide6). Importing this package applies ``_none_guard`` first."""
from __future__ import annotations

import sys


def _none_guard() -> bool:
    """PySide6 6.12.0 on Python < 3.12 returns ``None`` from every void Qt call without a
    new reference (Python 3.12 made None immortal, 3.10/3.11 did not): each call such as
    ``label.setText()`` drops None's reference count by one until the interpreter aborts
    ("Fatal Python error: none_dealloc") after some thousands of calls. Measured here:
    6.12.0 leaks one reference per void call, 6.11.3 none. pyproject.toml excludes 6.12.0;
    for an environment that has it anyway, give None a reference count that cannot run
    out (ob_refcnt is the first field of every object in release builds of CPython)."""
    if sys.version_info >= (3, 12):
        return False
    try:
        from importlib.metadata import PackageNotFoundError, version

        try:
            v = version("PySide6-Essentials")
        except PackageNotFoundError:
            v = version("PySide6")
    except Exception:
        return False
    if not v.startswith("6.12."):
        return False
    import ctypes

    ctypes.c_ssize_t.from_address(id(None)).value += 1 << 40
    return True


NONE_GUARD_APPLIED = _none_guard()
