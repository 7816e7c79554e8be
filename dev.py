#!/usr/bin/env python3
"""Set-up and the two everyday commands, needing nothing but Python 3.11+.

    python3 dev.py serve   # virtualenv + install + migrate + demo data, then serve on :8000
    python3 dev.py test    # virtualenv + install, then lint, type-check and the whole test suite

`serve` passes its arguments to `clickback serve` (e.g. --port 8080) and keeps its data in var/
of this checkout unless CLICKBACK_DATA_DIR says otherwise.

The test suite always runs on SQLite, and on PostgreSQL too when CLICKBACK_TEST_POSTGRES_URL is
set (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test).
"""

import argparse
import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".installed"


def run(*cmd: str | Path, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    code = subprocess.call([str(c) for c in cmd], cwd=ROOT, env=env)
    if code:
        sys.exit(code)


def install() -> None:
    """Create .venv and install clickback with its pinned dependencies (again when they change)."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this file runs before anything checks the version
        sys.exit("clickback needs Python 3.11 or newer")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        venv.create(VENV, with_pip=True)
    run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    STAMP.write_text(wanted)


def serve(args: list[str]) -> None:
    env = dict(os.environ)
    # The checkout's own var/, wherever the command is run from (the README reads var/api.key).
    env.setdefault("CLICKBACK_DATA_DIR", str(ROOT / "var"))
    if "CLICKBACK_PUBLIC_URL" not in env:
        # The demo's links name the port the server is about to listen on, as serve's own do.
        parser = argparse.ArgumentParser(add_help=False)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")
        given, _ = parser.parse_known_args(args)
        host = "127.0.0.1" if given.host in ("0.0.0.0", "::") else given.host  # noqa: S104
        env["CLICKBACK_PUBLIC_URL"] = f"http://{f'[{host}]' if ':' in host else host}:{given.port}"
    run(BIN / "clickback", "demo", env=env)
    os.execve(BIN / "clickback", [str(BIN / "clickback"), "serve", *args], env)  # noqa: S606


def test(args: list[str]) -> None:
    run(BIN / "ruff", "check", ".")
    run(BIN / "ruff", "format", "--check", ".")
    run(BIN / "mypy")
    run(BIN / "pytest", *args)


if __name__ == "__main__":
    commands = {"serve": serve, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: python3 dev.py {{{'|'.join(commands)}}} [args...]")
    install()
    commands[sys.argv[1]](sys.argv[2:])
