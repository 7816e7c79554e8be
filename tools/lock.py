#!/usr/bin/env python3
"""Write the lock files from pyproject.toml: run it after changing a dependency there.

    python3 tools/lock.py              # keeps the versions already locked where it can
    python3 tools/lock.py --upgrade    # the newest releases that pyproject.toml's pins allow

requirements-dev.lock: the dependencies, the dev extra and the build backend; `python3 dev.py`
installs exactly this (pip --require-hashes). requirements.lock: the same versions without the
dev extra; the container image installs it (deploy/install.sh). Both pin every package, those
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

from dev import BIN, LOCKS, VENV, dependencies_digest  # noqa: E402 - dev.py sits at the root

COMMAND = "python3 tools/lock.py"


def uv() -> Path:
    """uv from .venv; if it is not there yet, installed into .venv from the current lock's
    pinned and hashed line (an older lock still names a uv that can write a new one)."""
    if (BIN / "uv").exists():
        return BIN / "uv"
    if not (BIN / "python").exists():
        venv.create(VENV, with_pip=True)
    lines = LOCKS["dev"].read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("uv=="))
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith("    --hash="):
            break
        block.append(line)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as pinned:
        pinned.write("\n".join(block).rstrip(" \\") + "\n")
        pinned.flush()
        subprocess.run(
            [BIN / "python", "-m", "pip", "install", "--quiet", "--require-hashes", "-r", pinned.name],
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
    # The build backend is locked too: dev.py and the image build clickback without build
    # isolation, from the locked setuptools, instead of letting pip fetch one unhashed.
    build = "\n".join(tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"])
    compile_lock(tool, LOCKS["dev"], build, "--extra", "dev")
    # The runtime lock takes the dev lock's versions: the image runs what the tests ran.
    compile_lock(tool, LOCKS["runtime"], build, "--constraint", LOCKS["dev"].name)
    print(f"wrote {', '.join(p.name for p in LOCKS.values())}: commit them with pyproject.toml")


if __name__ == "__main__":
    main()
