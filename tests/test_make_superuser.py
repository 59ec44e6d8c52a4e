"""`make superuser` without a terminal: created from the environment, or a clear refusal."""

import sqlite3
import subprocess

from tests.live_server import ROOT, site_env


def make_superuser(database, **env):
    unset = dict.fromkeys(
        ["DJANGO_SUPERUSER_USERNAME", "DJANGO_SUPERUSER_EMAIL", "DJANGO_SUPERUSER_PASSWORD"]
    )
    return subprocess.run(
        ["make", "--no-print-directory", "superuser"],
        cwd=ROOT,
        env=site_env(DATABASE_URL=f"sqlite:///{database}", **unset | env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def superusers(database):
    with sqlite3.connect(database) as db:
        return db.execute("SELECT username, email FROM auth_user WHERE is_superuser").fetchall()


def test_it_creates_the_account_from_the_environment_without_a_terminal(tmp_path):
    database = tmp_path / "site.sqlite3"

    result = make_superuser(
        database,
        DJANGO_SUPERUSER_USERNAME="curator",
        DJANGO_SUPERUSER_EMAIL="curator@example.com",
        DJANGO_SUPERUSER_PASSWORD="a-long-Passphrase-42",
    )

    assert result.returncode == 0, result.stderr
    assert superusers(database) == [("curator", "curator@example.com")]


def test_without_a_terminal_or_the_variables_it_fails_and_says_what_to_set(tmp_path):
    database = tmp_path / "site.sqlite3"

    result = make_superuser(database)

    assert result.returncode != 0
    assert "DJANGO_SUPERUSER_USERNAME, DJANGO_SUPERUSER_EMAIL and DJANGO_SUPERUSER_PASSWORD" in (
        result.stderr
    )
    assert superusers(database) == []
