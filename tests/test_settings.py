"""Settings read the environment strictly; production refuses unsafe configuration."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY = "k" * 64


def manage(*args, **env):
    unset = {"DEBUG", "SECRET_KEY", "REDIS_URL", "RUNNER_MODE"}
    base = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_lenient_boolean_is_refused_with_a_clear_message():
    result = manage("check", DEBUG="yes")
    assert result.returncode != 0
    assert "DEBUG must be 'true' or 'false', not 'yes'" in result.stderr


def test_a_malformed_database_url_is_refused_with_a_clear_message():
    result = manage("check", DATABASE_URL="nonsense://x")
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    result = manage("check", DJANGO_SETTINGS_MODULE="config.settings.production")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_to_start_with_debug_on():
    result = manage(
        "check",
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=GOOD_KEY,
        DEBUG="true",
    )
    assert result.returncode != 0
    assert "DEBUG must be false in production" in result.stderr


def test_production_settings_pass_the_deployment_checklist():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "DEBUG",
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY="a-Very-long-random-production-secret-key-0123456789-xyzXYZ-!@#$%",
        ALLOWED_HOSTS="glossary.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.parametrize("admin_url", ["/admin/", "admin"])
def test_a_malformed_admin_url_is_refused(admin_url):
    result = manage("check", ADMIN_URL=admin_url)
    assert result.returncode != 0
    assert "ADMIN_URL must look like 'admin/'" in result.stderr


def test_migrations_match_the_models():
    result = manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_collects_static_files_with_hashed_names(tmp_path):
    result = manage(
        "collectstatic",
        "--noinput",
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=GOOD_KEY,
        STATIC_ROOT=str(tmp_path),
    )

    assert result.returncode == 0, result.stderr
    manifest = (tmp_path / "staticfiles.json").read_text()
    assert re.search(r'"js/run.js": "js/run\.[0-9a-f]{12}\.js"', manifest)
    assert list(tmp_path.glob("css/site.*.css.gz"))


def test_an_unknown_runner_mode_is_refused():
    result = manage("check", RUNNER_MODE="remote")
    assert result.returncode != 0
    assert "RUNNER_MODE must be 'local' or 'workers', not 'remote'" in result.stderr


def test_workers_mode_without_redis_is_refused():
    result = manage("check", RUNNER_MODE="workers")
    assert result.returncode != 0
    assert "RUNNER_MODE=workers needs REDIS_URL" in result.stderr


def settings_read_with(reader):
    """The names of the variables config/settings reads with reader (env_bool, env_int)."""
    names = set()
    for path in (ROOT / "config" / "settings").glob("*.py"):
        names |= set(re.findall(rf'{reader}\(\s*"([A-Z_]+)"', path.read_text()))
    return sorted(names)


def check_production_with(**env):
    return manage(
        "check",
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=GOOD_KEY,
        DATABASE_URL="postgres://user@db.example:5432/glossary",  # read, never reached
        **env,
    )


@pytest.mark.parametrize("name", settings_read_with("env_bool"))
@pytest.mark.parametrize("value", ["1"])
def test_every_boolean_setting_refuses_a_lenient_value_in_one_line(name, value):
    result = check_production_with(**{name: value})

    assert result.returncode != 0
    assert result.stderr == (
        f"Configuration error: {name} must be 'true' or 'false', not {value!r}.\n"
    )


@pytest.mark.parametrize("name", settings_read_with("env_int"))
@pytest.mark.parametrize("value", ["ten", "-1"])
def test_every_number_setting_refuses_a_bad_value_in_one_line(name, value):
    result = check_production_with(**{name: value})

    assert result.returncode != 0
    assert re.fullmatch(
        rf"Configuration error: {name} must be a whole number of at least \d+, not '{value}'\.\n",
        result.stderr,
    ), result.stderr


def test_the_database_connect_timeout_cannot_be_turned_off():
    result = check_production_with(DATABASE_CONNECT_TIMEOUT="0")

    assert "DATABASE_CONNECT_TIMEOUT must be a whole number of at least 1" in result.stderr


def test_a_run_limit_of_zero_is_refused():
    result = check_production_with(SNIPPET_CPU_SECONDS="0")

    assert "SNIPPET_CPU_SECONDS must be a whole number of at least 1" in result.stderr
