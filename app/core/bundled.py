"""Where the shipped data lives: the models (``pretrained/``) and the icons and style sheet
(``resources/``).

In the repository they sit at the top level (the product's layout); the wheel and the sdist
carry them inside the package as ``app/_bundled/<name>`` (``force-include`` in
``pyproject.toml``), found here with ``importlib.resources``. A source checkout or an
editable install has no ``_bundled`` folder and falls back to the checkout's top level.
Nothing here is written to: an install location may be read-only.
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]


def bundled_dir(name: str) -> Path:
    """``app/_bundled/NAME`` of an installed wheel, else ``NAME`` at the checkout's top."""
    packaged = files("app").joinpath("_bundled", name)
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return CHECKOUT / name
