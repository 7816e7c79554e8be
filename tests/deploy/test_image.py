"""The container image and compose.yaml, tested without a Docker engine (none runs here): the
Dockerfile linted, its build step run as it is into a new virtual environment, the server started
as its CMD and ENV say and asked its HEALTHCHECK; compose.yaml checked against the image and the
settings. docs/deployment.md has the check to make by hand where Docker runs."""

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from sqlalchemy import make_url

from clickback.config import Settings
from tests.processes import free_port, running

ROOT = Path(__file__).parent.parent.parent
HADOLINT = Path(sys.executable).with_name("hadolint")


def stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions (name, arguments), continuation lines joined, per stage."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    found: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, args = line.split(None, 1)
        if name == "FROM":
            found.append([])
        found[-1].append((name, " ".join(args.split())))
    return found


def only(stage: list[tuple[str, str]], name: str) -> str:
    (args,) = [a for n, a in stage if n == name]
    return args


def image_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in shlex.split(only(stage, "ENV")))


def served_port(stage: list[tuple[str, str]]) -> str:
    command = json.loads(only(stage, "CMD"))
    return str(command[command.index("--port") + 1])


def let_in(path: str) -> bool:
    """Whether .dockerignore lets `path` into the build context (the last rule matching decides)."""
    verdict = True
    for rule in (ROOT / ".dockerignore").read_text().splitlines():
        if not rule.strip() or rule.startswith("#"):
            continue
        pattern = rule.removeprefix("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            verdict = rule.startswith("!")
    return verdict


def test_the_image_build_installs_the_lock_and_serves_its_health_check(tmp_path: Path) -> None:
    lint = subprocess.run(
        [HADOLINT, "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    build, run = stages()
    # The build context as Docker would send it, holding what the build stage copies.
    context = tmp_path / "src"
    for args in [a for n, a in build if n == "COPY"]:
        *sources, destination = args.split()
        for source in sources:
            assert let_in(source), f".dockerignore keeps {source} out of the build context"
            target = context / destination / (Path(source).name if destination.endswith("/") else "")
            target.parent.mkdir(parents=True, exist_ok=True)
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(ROOT / source, target)
    assert only(build, "WORKDIR") == "/src"
    assert only(run, "COPY") == "--from=build /opt/clickback /opt/clickback"
    prefix = tmp_path / "opt" / "clickback"
    step = only(build, "RUN")
    assert step.endswith(" /opt/clickback")
    # The build step as it is, but for where it installs; bytecode is not compiled (4 s less).
    installed = subprocess.run(
        [shutil.which("sh") or "/bin/sh", "-c", step.replace("/opt/clickback", str(prefix))],
        cwd=context,
        env=os.environ | {"PIP_NO_COMPILE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr

    # The run stage's environment, its paths moved under tmp_path.
    env = image_env(run)
    data = tmp_path / env["CLICKBACK_DATA_DIR"].lstrip("/")
    data.mkdir(parents=True)
    path = env["PATH"].replace("/opt/clickback", str(prefix)).replace("$PATH", os.environ["PATH"])
    env |= {"PATH": path, "CLICKBACK_DATA_DIR": str(data)}
    port = str(free_port())
    command = json.loads(only(run, "CMD"))
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = port
    health = json.loads(only(run, "HEALTHCHECK").split(" CMD ", 1)[1])
    health = [part.replace(":8000/", f":{port}/") for part in health]
    with running(command, env, tmp_path / "server.log", f"http://127.0.0.1:{port}/healthz"):
        checked = subprocess.run(health, env=env, capture_output=True, text=True, check=False)

    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert checked.returncode == 0, checked.stderr
    assert served_port(run) == only(run, "EXPOSE") == "8000" and ":8000/healthz" in only(run, "HEALTHCHECK")
    # Not root, by number; no installer left in the image; SQLite and secrets in the volume.
    assert re.fullmatch(r"[1-9]\d*:\d+", only(run, "USER"))
    assert not (prefix / "bin" / "pip").exists()
    assert only(run, "VOLUME") == env_dir(run) == only(run, "WORKDIR")
    assert {p.name for p in data.iterdir()} >= {"clickback.db", "secret.key", "api.key"}


def env_dir(stage: list[tuple[str, str]]) -> str:
    return image_env(stage)["CLICKBACK_DATA_DIR"]


def interpolate(value: str, given: dict[str, str]) -> str:
    """compose's ${NAME}, ${NAME:-default} and ${NAME:?error} against `given`."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if name in given:
            return given[name]
        assert kind == ":-", f"{name} is required and has no value"
        return str(rest)

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


def test_compose_runs_the_image_on_postgresql_with_its_secrets_from_the_environment() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    app, db = compose["services"]["clickback"], compose["services"]["db"]
    run = stages()[-1]
    env, db_env = app["environment"], db["environment"]
    secrets = {"CLICKBACK_SECRET_KEY", "CLICKBACK_API_KEY", "CLICKBACK_PUBLIC_URL"}
    given = {
        "POSTGRES_PASSWORD": "3f9a1c",
        "CLICKBACK_SECRET_KEY": "5e" * 32,
        "CLICKBACK_API_KEY": "k" * 24,
        "CLICKBACK_PUBLIC_URL": "https://track.example.com",
    }
    values = {name: interpolate(str(value), given) for name, value in env.items()}
    settings = Settings(**{name.removeprefix("CLICKBACK_").lower(): v for name, v in values.items()})
    url = make_url(values["CLICKBACK_DATABASE_URL"])
    host, _, container = app["ports"][0].split(":")

    assert (ROOT / app["build"] / "Dockerfile").is_file()
    # Every variable is a setting, validated as clickback would; secrets come from outside only.
    assert {name.removeprefix("CLICKBACK_").lower() for name in env} <= Settings.model_fields.keys()
    assert settings.migrate_on_start  # clickback migrates PostgreSQL when it starts
    for name in secrets:
        assert re.fullmatch(rf"\$\{{{name}:\?[^}}]+\}}", env[name]), name
    assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:\?[^}]+\}", db_env["POSTGRES_PASSWORD"])
    assert (url.drivername, url.host, url.port) == ("postgresql+asyncpg", "db", 5432)
    assert (url.username, url.password, url.database) == (
        db_env["POSTGRES_USER"],
        given["POSTGRES_PASSWORD"],
        db_env["POSTGRES_DB"],
    )
    assert app["depends_on"]["db"]["condition"] == "service_healthy" and db["healthcheck"]["test"]
    # Published on loopback for the proxy in front, which PROXY_HOPS counts.
    assert (host, container) == ("127.0.0.1", served_port(run)) and settings.proxy_hops == 1
    assert [v.split(":")[1] for v in app["volumes"]] == [env_dir(run)]
    assert set(compose["volumes"]) == {
        v.split(":")[0] for s in compose["services"].values() for v in s["volumes"]
    }
