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
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".installed"
# Every package with its version and file hashes, written by tools/lock.py from pyproject.toml.
LOCKS = {"dev": ROOT / "requirements-dev.lock", "runtime": ROOT / "requirements.lock"}


def run(*cmd: str | Path, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    code = subprocess.call([str(c) for c in cmd], cwd=ROOT, env=env)
    if code:
        sys.exit(code)


def dependencies_digest() -> str:
    """What the locks are made from: pyproject.toml's dependency lists, not its other settings."""
    import tomllib  # here, not at the top: Python < 3.11 must reach install()'s sentence first

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    inputs = {
        "build": project["build-system"]["requires"],
        "python": project["project"]["requires-python"],
        "dependencies": project["project"]["dependencies"],
        "extras": project["project"].get("optional-dependencies", {}),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def stale_locks() -> list[str]:
    """The lock files not made from pyproject.toml's dependencies as they are now."""
    wanted = f"# dependencies sha256 {dependencies_digest()}"
    return [
        lock.name
        for lock in LOCKS.values()
        if not lock.exists() or lock.read_text().split("\n", 1)[0] != wanted
    ]


def install() -> None:
    """Create .venv with exactly the locked packages (again when the lock changes), and clickback."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this file runs before anything checks the version
        sys.exit("clickback needs Python 3.11 or newer")
    stale = stale_locks()
    if stale:
        sys.exit(
            f"{' and '.join(stale)} out of date with pyproject.toml's dependencies: "
            "run `python3 tools/lock.py`, then commit the lock files with pyproject.toml"
        )
    lock = hashlib.sha256(LOCKS["dev"].read_bytes()).hexdigest()
    project = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    installed = STAMP.read_text().split() if STAMP.exists() else []
    if installed == [lock, project]:
        return
    if installed[:1] != [lock]:
        # A new environment, not an upgrade of the old one: pip would leave behind packages the
        # lock no longer names.
        run(sys.executable, ROOT / "deploy" / "install.py", "--dev", VENV)
    else:  # pyproject.toml changed, its dependencies did not: clickback again, for its metadata
        run(BIN / "python", "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", ".")
    STAMP.write_text(f"{lock} {project}")


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
    # Three test processes per two CPUs (pytest-xdist): many tests wait for a server, a subprocess
    # or the database, and one a CPU left the CPUs idle (2 cores: 283 s with two, 177 s with
    # four, on a smaller suite); with the suite's CPU grown, four kept 2 cores 98 % busy and
    # contending (271-286 s) where three took 229-252 s. `python3 dev.py test -n 0` runs them in
    # this one.
    workers = str(max(2, (3 * (os.cpu_count() or 1) + 1) // 2))
    # Bytecode cached even where the environment says not to (PYTHONDONTWRITEBYTECODE, as in some
    # containers): otherwise each test worker compiles clickback and rewrites every test module
    # afresh, and so does each of the suite's `clickback` processes (30 s of CPU a run on 2 cores).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    run(BIN / "pytest", "-n", workers, "--dist", "worksteal", *args, env=env)


if __name__ == "__main__":
    commands = {"serve": serve, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: python3 dev.py {{{'|'.join(commands)}}} [args...]")
    install()
    commands[sys.argv[1]](sys.argv[2:])
