"""Compiles the classifier's engine with mypyc when a C compiler is at hand.

Everything else about the package is in pyproject.toml. The engine
(services/classifier/engine.py, with scan.py and figures.py) is ordinary typed
Python; compiled, it classifies about one and a half times as fast (``make
bench`` prints which one it measured).
Without a compiler, or with ``DOHAWATCH_PURE_PYTHON=1``, the extension is
skipped and the package installs and works as pure Python, only slower.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from setuptools import Extension, setup

# Relative to services/, the `dohawatch` package; compiled together, so calls
# between them are native.
COMPILED = ["classifier/engine.py", "classifier/scan.py", "classifier/figures.py"]
STAGE = Path("build/mypyc-src")
# mypyc needs the types, not strictness; pydantic's are Any here and that is fine.
MYPY_CONFIG = """\
[mypy]
follow_imports = silent
ignore_missing_imports = True
"""


def compiled_engine() -> list[Extension]:
    if os.environ.get("DOHAWATCH_PURE_PYTHON"):
        return []
    from mypyc.build import mypycify

    # mypy names a module after its path, and services/ is installed as
    # `dohawatch`: stage the sources under their import names first.
    shutil.rmtree(STAGE, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.so")
    shutil.copytree("services", STAGE / "dohawatch", ignore=ignore)
    shutil.copytree("shared", STAGE / "dohawatch" / "shared", ignore=ignore)
    config = STAGE / "mypy.ini"
    config.write_text(MYPY_CONFIG)
    sources = [str(STAGE / "dohawatch" / path) for path in COMPILED]
    extensions: list[Extension] = mypycify(
        ["--config-file", str(config), *sources], opt_level="3", target_dir="build/mypyc"
    )
    for extension in extensions:
        extension.optional = True  # no compiler: a warning, and the pure-Python engine
    return extensions


setup(ext_modules=compiled_engine())
