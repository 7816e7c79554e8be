#!/usr/bin/env python3
"""Write the lock files from pyproject.toml: run it after changing a dependency there.

    python3 tools/lock.py              # keeps the versions already locked where it can
    python3 tools/lock.py --upgrade    # the newest releases that pyproject.toml's pins allow

requirements-dev.lock: the dependencies, the dev extra, the build backend and pip; `python3 dev.py`
installs exactly this (deploy/install.py --dev). requirements.lock: the same versions without
the dev extra; the container image installs it (deploy/install.py). Both pin every package, those
pulled in by others too, with the hashes of its files, for every platform and Python version that
pyproject.toml allows (uv's --universal), so a lock made here also installs in the image.
"""

import subprocess
import sys
import tempfile
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deploy.install import pinned  # noqa: E402 - the folders beside this one
from dev import BIN, LOCKS, VENV, dependencies_digest  # noqa: E402

COMMAND = "python3 tools/lock.py"
# The installer, locked with hashes like the rest (deploy/install.py installs it first).
INSTALLER = "pip==26.3"


def uv() -> Path:
    """uv from .venv; if it is not there yet, installed into .venv from the current lock's
    pinned and hashed lines (an older lock still names a uv that can write a new one)."""
    if (BIN / "uv").exists():
        return BIN / "uv"
    if not (BIN / "python").exists():
        venv.create(VENV, with_pip=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as pinned_uv:
        pinned_uv.write(pinned(LOCKS["dev"], "uv"))
        pinned_uv.flush()
        subprocess.run(
            [BIN / "python", "-m", "pip", "install", "--quiet", "--require-hashes", "-r", pinned_uv.name],
            check=True,
        )
    return BIN / "uv"


def compile_lock(tool: Path, out: Path, build: str, *options: str) -> None:
    subprocess.run(
        [
            tool,
            "pip",
            "compile",
            "pyproject.toml",
            "-",
            *options,
            *sys.argv[1:],
            "--universal",
            "--generate-hashes",
            "--python-version",
            python_floor(),
            "--custom-compile-command",
            COMMAND,
            "--quiet",
            "--output-file",
            out.name,
        ],
        input=build,
        text=True,
        cwd=ROOT,
        check=True,
    )
    # dev.py compares this line with pyproject.toml to tell a lock that is out of date.
    out.write_text(f"# dependencies sha256 {dependencies_digest()}\n" + out.read_text())


def python_floor() -> str:
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    return str(requires).removeprefix(">=")


def main() -> None:
    tool = uv()
    # The build backend and the installer are locked too: clickback is built without build
    # isolation, by the locked setuptools, instead of one pip would fetch unhashed.
    backend = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    build = "\n".join([*backend, INSTALLER])
    compile_lock(tool, LOCKS["dev"], build, "--extra", "dev")
    # The runtime lock takes the dev lock's versions: the image runs what the tests ran.
    compile_lock(tool, LOCKS["runtime"], build, "--constraint", LOCKS["dev"].name)
    print(f"wrote {', '.join(p.name for p in LOCKS.values())}: commit them with pyproject.toml")


if __name__ == "__main__":
    main()
