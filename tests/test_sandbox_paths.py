"""What the sandbox sees of the host: the project wherever it is checked out (even under
/tmp), and a template database no other local user can have prepared."""

import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from glossary import runner
from tests.conftest import require


def test_a_read_only_path_under_tmp_is_visible_in_the_sandbox():
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    with tempfile.TemporaryDirectory(dir="/tmp") as checkout:
        os.chmod(checkout, 0o755)
        module = Path(checkout) / "module.py"
        module.write_text("print('found')\n")
        argv = runner.bwrap_argv(
            [runner.base_python(), "-I", str(module)], read_only=[sys.base_prefix, checkout]
        )

        result = subprocess.run(argv, capture_output=True, text=True, timeout=30)

    assert result.stdout == "found\n", result.stderr


# The Django runtime's template database ------------------------------------------------


def test_the_template_database_lives_in_a_private_directory_it_makes(settings, tmp_path):
    settings.SNIPPET_CACHE_DIR = tmp_path / "data" / "cache"

    database = runner.template_database()

    assert database.parent == settings.SNIPPET_CACHE_DIR
    info = os.lstat(settings.SNIPPET_CACHE_DIR)
    assert stat.S_IMODE(info.st_mode) == 0o700
    assert info.st_uid == os.geteuid()


def planted_symlink(tmp_path):
    elsewhere = tmp_path / "planted"
    elsewhere.mkdir(mode=0o700)
    link = tmp_path / "cache"
    link.symlink_to(elsewhere)
    return link


def foreign_directory(tmp_path):
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    os.chown(directory, os.geteuid() + 1, -1)
    return directory


def open_directory(tmp_path):
    directory = tmp_path / "cache"
    directory.mkdir()
    directory.chmod(0o777)
    return directory


@pytest.mark.parametrize(
    ("prepare", "problem"),
    [
        (planted_symlink, "is a symbolic link"),
        (open_directory, "has mode 0777"),
        (foreign_directory, "belongs to uid"),
    ],
)
def test_a_cache_directory_someone_else_prepared_is_refused(settings, tmp_path, prepare, problem):
    if prepare is foreign_directory and os.geteuid() != 0:
        pytest.skip("only root can give a directory away")
    settings.SNIPPET_CACHE_DIR = prepare(tmp_path)

    with pytest.raises(runner.DatabaseBuildError, match=problem):
        runner.template_database()

    assert list(settings.SNIPPET_CACHE_DIR.iterdir()) == []


@pytest.mark.asyncio
async def test_a_django_run_with_a_planted_cache_directory_is_a_readable_error(settings, tmp_path):
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    settings.SNIPPET_CACHE_DIR = planted_symlink(tmp_path)

    events = [event async for event in runner.run("print(1)", "django")]

    assert [event["type"] for event in events] == ["error"]
    assert "is a symbolic link" in events[0]["message"]
