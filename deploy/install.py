#!/usr/bin/env python3
"""Install clickback and exactly the packages of a lock file into a new virtual environment.

    python3 deploy/install.py /opt/clickback   # the container image's build step: requirements.lock
    python3 deploy/install.py --dev .venv      # dev.py's: requirements-dev.lock, clickback editable

pip checks the hashes of every package (--require-hashes), itself included: the lock's pip is
installed first, by whichever pip the environment came with, then installs the rest. It is also
the faster one: pip 23 took 13 s of CPU to match the lock's hashes to files, pip 26 takes 5.
tests/deploy/test_image.py runs the image's install as the Dockerfile does.
"""

import argparse
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pinned(lock: Path, name: str) -> str:
    """One package's lines of a lock file: its pin and its hashes, as a requirements file."""
    lines = lock.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{name}=="))
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith("    --hash="):
            break
        block.append(line)
    return "\n".join(block) + "\n"


def install(prefix: Path, dev: bool) -> None:
    lock = ROOT / ("requirements-dev.lock" if dev else "requirements.lock")
    venv.create(prefix, clear=True, with_pip=True)

    def pip(*args: str | Path) -> None:
        subprocess.run([prefix / "bin" / "python", "-m", "pip", *args], check=True)

    with tempfile.NamedTemporaryFile("w", suffix=".txt") as installer:
        installer.write(pinned(lock, "pip"))
        installer.flush()
        pip("install", "--quiet", "--require-hashes", "-r", installer.name)
    if dev:
        pip("install", "--quiet", "--require-hashes", "-r", lock)
        # Built by the locked setuptools just installed, never by one fetched unhashed.
        pip("install", "--quiet", "--no-deps", "--no-build-isolation", "-e", ROOT)
        return
    # Wheels only: the image has no compiler, and a package that would need one fails here
    # rather than halfway through a build.
    pip("install", "--require-hashes", "--only-binary=:all:", "-r", lock)
    pip("install", "--no-deps", "--no-build-isolation", ROOT)
    # The installers are not needed to run clickback: 30 MB less in the image.
    pip("uninstall", "--yes", "--quiet", "setuptools", "pip")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("prefix", type=Path, help="the virtual environment to create (replaced if it exists)")
    parser.add_argument("--dev", action="store_true", help="requirements-dev.lock, clickback editable")
    args = parser.parse_args()
    install(args.prefix, args.dev)
    sys.exit(0)
