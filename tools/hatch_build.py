"""Hatchling build hook: put the shipped models, icons and style sheet inside the package.

The repository keeps the product's top-level layout (``pretrained/``, ``resources/``); a
wheel carries them as ``app/_bundled/...``, which ``app.core.bundled`` finds at run time.
An editable install gets nothing copied: it reads them from the checkout.
"""
from __future__ import annotations

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

BUNDLED = {
    "pretrained": "app/_bundled/pretrained",
    "resources/icons": "app/_bundled/resources/icons",
    "resources/style.qss": "app/_bundled/resources/style.qss",
}


class BundleData(BuildHookInterface):
    def initialize(self, version: str, build_data: dict) -> None:
        if version == "editable":
            return
        build_data["force_include"].update(BUNDLED)
