"""Compiles the classifier's engine with mypyc for wheels and images.

Everything else about the package is in pyproject.toml. The engine
(services/classifier/engine.py, with scan.py and figures.py, and stems.py, the
learned stage's reading of an item) is ordinary typed Python; compiled, its
rules classify about three times as fast.

It is compiled only when ``DOHAWATCH_COMPILE=1`` is set (the Dockerfile, and
``make compiled`` for the tests and the benchmark): a development install runs
the sources as they are on disk, so an edit takes effect without a rebuild. A
compiled engine carries the hash of the sources it was built from
(``engine.COMPILED_FROM``), which a test compares with the sources on disk.
Without a C compiler the extension is skipped with a warning.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from setuptools import Extension, setup

# Relative to services/, the `dohawatch` package; compiled together, so calls
# between them are native.
COMPILED = [
    "classifier/engine.py",
    "classifier/scan.py",
    "classifier/figures.py",
    "classifier/stems.py",
]
STAGE = Path("build/mypyc-src")
# mypyc needs the types, not strictness; pydantic's are Any here and that is fine.
MYPY_CONFIG = """\
[mypy]
follow_imports = silent
ignore_missing_imports = True
"""
UNSTAMPED = "COMPILED_FROM: str | None = None\n"


def sources_hash() -> str:
    """SHA-256 of the compiled modules' sources, as the engine's test computes it."""
    digest = hashlib.sha256()
    for path in COMPILED:
        digest.update(Path("services", path).read_bytes())
    return digest.hexdigest()


def compiled_engine() -> list[Extension]:
    if os.environ.get("DOHAWATCH_COMPILE") != "1":
        return []
    from mypyc.build import mypycify

    # mypy names a module after its path, and services/ is installed as
    # `dohawatch`: stage the sources under their import names first.
    shutil.rmtree(STAGE, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.so")
    shutil.copytree("services", STAGE / "dohawatch", ignore=ignore)
    shutil.copytree("shared", STAGE / "dohawatch" / "shared", ignore=ignore)
    engine = STAGE / "dohawatch" / COMPILED[0]
    source = engine.read_text()
    if UNSTAMPED not in source:
        raise SystemExit(f"setup.py: {COMPILED[0]} no longer declares {UNSTAMPED.strip()!r}")
    engine.write_text(
        source.replace(UNSTAMPED, f'COMPILED_FROM: str | None = "{sources_hash()}"\n')
    )
    config = STAGE / "mypy.ini"
    config.write_text(MYPY_CONFIG)
    sources = [str(STAGE / "dohawatch" / path) for path in COMPILED]
    try:
        extensions: list[Extension] = mypycify(
            ["--config-file", str(config), *sources], opt_level="3", target_dir="build/mypyc"
        )
    finally:
        shutil.rmtree(STAGE, ignore_errors=True)  # no second copy of the sources to grep
    for extension in extensions:
        extension.optional = True  # no compiler: a warning, and the pure-Python engine
    return extensions


setup(ext_modules=compiled_engine())
