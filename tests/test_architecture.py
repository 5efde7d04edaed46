"""The layering rules of pyproject.toml's [tool.importlinter] contracts hold (import-linter)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    r = subprocess.run([exe, "--config", str(REPO / "pyproject.toml")], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout


def test_opening_folders_projects_and_exports_imports_no_torch():
    """The session and everything the window needs to open a folder, a project or write an
    export run without torch (only embedding and learners need it); checked at run time,
    since the session reaches the scoring code lazily, when a fit exists."""
    code = ("import sys; import app.core.session, app.core.project, app.core.export, "
            "app.core.scan, app.core.images, app.core.cache, app.core.jobs; "
            "print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
