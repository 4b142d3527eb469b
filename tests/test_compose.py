"""docker-compose.yml is valid for Debian's docker-compose and runs only real commands."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from tests.conftest import REPO

EXPECTED = {
    "postgres",
    "redis",
    "migrate",
    "api",
    "worker-ingest",
    "worker-classify",
    "scheduler",
    "flower",
}


@pytest.fixture(scope="module")
def config() -> dict:
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose is installed by `make system-deps`"
    env = {
        **os.environ,
        "POSTGRES_PASSWORD": "dummy",
        "UNDERTOW_AUTHOR_KEY_SECRET": "dummy",
        "UNDERTOW_SESSION_SECRET": "dummy",
    }
    out = subprocess.run(
        [exe, "-f", str(REPO / "docker-compose.yml"), "config"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return yaml.safe_load(out.stdout)


def test_required_variables_are_enforced():
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("POSTGRES_PASSWORD", "UNDERTOW_AUTHOR_KEY_SECRET")
    }
    out = subprocess.run(
        ["docker-compose", "-f", str(REPO / "docker-compose.yml"), "config"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode != 0
    assert "set POSTGRES_PASSWORD" in out.stderr or "set UNDERTOW_AUTHOR_KEY_SECRET" in out.stderr


def test_services_healthchecks_and_dependencies(config):
    services = config["services"]
    assert set(services) == EXPECTED
    for name in ("postgres", "redis", "api"):
        assert "healthcheck" in services[name], name
    for name in ("api", "worker-ingest", "worker-classify", "scheduler"):
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["migrate"]["condition"] == "service_completed_successfully"
    images = {services[n]["image"] for n in EXPECTED - {"postgres", "redis"}}
    assert images == {"undertow:latest"}, "one image for every Undertow service"
    assert "--queues" in services["worker-classify"]["command"]
    assert (
        services["worker-classify"]["command"][
            services["worker-classify"]["command"].index("--queues") + 1
        ]
        == "classify"
    )


def test_every_command_is_a_real_subcommand(config):
    runner = CliRunner()
    checked = 0
    for name, svc in config["services"].items():
        cmd = svc.get("command")
        if not cmd or cmd[0] not in ("undertow", "celery"):
            continue
        if cmd[0] == "celery":
            assert cmd[1:3] == ["-A", "workers.app:celery_app"]
            from workers.app import celery_app

            assert celery_app.main == "undertow"
            checked += 1
            continue
        args = [a for a in cmd[1:]]
        # Parse the real arguments (with --help appended so nothing starts).
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0, f"{name}: {cmd} -> {result.output}"
        checked += 1
    assert checked == 6
