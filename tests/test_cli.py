"""The command line: help reads well, bad configuration names the setting, keys print once."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.conftest import REPO

GROUPS = [
    "db",
    "ingest",
    "classify",
    "trends",
    "alerts",
    "export",
    "keys",
    "run",
    "api",
    "worker",
    "scheduler",
]


def test_help_lists_every_group():
    out = CliRunner().invoke(app, ["--help"]).output
    for group in GROUPS:
        assert group in out
    for group in GROUPS:
        r = CliRunner().invoke(app, [group, "--help"])
        assert r.exit_code == 0, (group, r.output)
        assert "Usage" in r.output


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"UNDERTOW_API_PORT": "eighty"}, "api_port"),
        ({"UNDERTOW_TIMEZONE": "Mars/Olympus"}, "timezone"),
        (
            {"UNDERTOW_ENV": "production", "UNDERTOW_AUTHOR_KEY_SECRET": "dev-only-change-me"},
            "author_key_secret",
        ),
    ],
)
def test_bad_config_stops_with_the_setting_named(env, needle):
    r = _cli("db", "current", env=env)
    assert r.returncode == 2
    assert needle in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_config_file_value_is_named(tmp_path):
    cfg = tmp_path / "undertow.toml"
    cfg.write_text('[[sources]]\nname = "hn"\nkind = "hackernews"\ninterval_s = 1\n')
    r = _cli("--config", str(cfg), "db", "current")
    assert r.returncode == 2
    assert "sources.0.interval_s" in r.stderr


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[[sources]\nname = "x"\n', "is not valid TOML: Expected ']]'"),
        ('[[sources]]\nname = "x"\nkind = "nope"\n', "sources.0.kind"),
        ('[[sources]]\nname = "x"\nkind = "reddit"\nqueries = "claude"\n', "sources.0.queries"),
    ],
)
@pytest.mark.parametrize("command", [["ingest", "once", "x"], ["alerts", "rules", "list"]])
def test_a_bad_config_file_is_one_clear_line_in_every_command(tmp_path, text, needle, command):
    """Commands that read the settings themselves (not through load_settings) printed a
    traceback for these; a file that is not TOML did so everywhere."""
    cfg = tmp_path / "undertow.toml"
    cfg.write_text(text)
    r = _cli("--config", str(cfg), *command)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_keys_create_prints_the_key_alone_last(settings):
    env = {"UNDERTOW_DATABASE_URL": settings.sqlalchemy_url}
    r = _cli("keys", "create", "--scope", "read", "--name", "cli-test", env=env)
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("ut_") and " " not in last
    listed = _cli("keys", "list", env=env).stdout
    assert "cli-test" in listed and last not in listed
    bad = _cli("keys", "create", "--scope", "root", "--name", "x", env=env)
    assert bad.returncode == 2 and "unknown scope" in bad.stderr


def test_export_into_a_missing_directory_is_a_clear_error(tmp_path):
    r = _cli("export", "-o", str(tmp_path / "no" / "out.csv"))
    assert r.returncode == 2 and "no such directory" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
