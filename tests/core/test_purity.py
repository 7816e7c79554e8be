"""The domain stays pure: standard library and clickback.core only, so it runs and tests without a
web server, a database or a network."""

import ast
import sys
from pathlib import Path

import pytest

import clickback.core

CORE = Path(clickback.core.__file__).parent
MODULES = sorted(CORE.glob("*.py"))


def foreign_imports(source: str) -> list[str]:
    """Modules imported by `source` that are neither standard library nor clickback.core."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside clickback.core itself
                continue
            names = [node.module or ""]
        else:
            continue
        for name in names:
            if name.split(".")[0] not in sys.stdlib_module_names and not (
                name == "clickback.core" or name.startswith("clickback.core.")
            ):
                found.append(name)
    return found


def test_every_core_module_is_checked() -> None:
    names = {path.stem for path in MODULES}
    assert {"clickids", "intake", "macros", "money", "lifecycle", "reporting", "model"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_core_module_imports_only_the_standard_library_and_core(path: Path) -> None:
    assert foreign_imports(path.read_text()) == []


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import sqlalchemy", ["sqlalchemy"]),
        ("from starlette.requests import Request", ["starlette.requests"]),
        ("import json, httpx", ["httpx"]),
        ("def f():\n    import aiohttp", ["aiohttp"]),
        ("from pydantic import BaseModel", ["pydantic"]),
        ("from fastapi import FastAPI", ["fastapi"]),
        ("from clickback.store import db", ["clickback.store"]),
        ("import clickback.web.app", ["clickback.web.app"]),
        ("from clickback import config", ["clickback"]),
        ("import clickbackcore", ["clickbackcore"]),
        ("from clickback.core.model import Click\nimport re\nfrom . import limits", []),
        ("from __future__ import annotations\nimport urllib.parse", []),
    ],
)
def test_the_check_recognises_foreign_imports(source: str, found: list[str]) -> None:
    assert foreign_imports(source) == found
