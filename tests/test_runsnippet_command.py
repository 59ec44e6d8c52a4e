"""`manage.py runsnippet`: JSON lines out, exit status from the run's reason."""

import io
import json
import os
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from glossary import runner
from glossary.models import Snippet
from tests.conftest import require


@pytest.fixture
def bubblewrap():
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")


def manage(settings, *args):
    """Run manage.py in a real process, as a curator would."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_it_runs_a_code_file_and_prints_json_lines(bubblewrap, settings, tmp_path):
    code_file = tmp_path / "hello.py"
    code_file.write_text("print('hello')\n")

    result = manage(settings, "runsnippet", "--code-file", str(code_file))

    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0, result.stderr
    assert events[0]["type"] == "start"
    assert "".join(event["text"] for event in events if event["type"] == "stdout") == "hello\n"
    assert events[-1]["type"] == "exit"
    assert events[-1]["reason"] == "ok"


def test_a_failing_snippet_exits_1(bubblewrap, settings, tmp_path):
    code_file = tmp_path / "fail.py"
    code_file.write_text("raise SystemExit(3)\n")

    result = manage(settings, "runsnippet", "--code-file", str(code_file))

    assert result.returncode == 1
    assert json.loads(result.stdout.splitlines()[-1])["reason"] == "error"
    assert "CommandError: The run ended with reason 'error'." in result.stderr


def test_bad_arguments_exit_1_with_a_message_not_a_traceback(settings, tmp_path):
    result = manage(settings, "runsnippet", "--code-file", str(tmp_path / "missing.py"))

    assert result.returncode == 1
    assert "CommandError: Cannot read" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.django_db
def test_it_runs_a_draft_snippet_by_slug(bubblewrap, snippet):
    Snippet.objects.filter(pk=snippet.pk).update(is_published=False)
    stdout = io.StringIO()

    call_command("runsnippet", "hello", stdout=stdout)

    events = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert "".join(event["text"] for event in events if event["type"] == "stdout") == "hello\n"
    assert events[-1]["reason"] == "ok"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Give either a snippet slug or --code-file"),
        (("hello", "--code-file", "x.py"), "Give either a snippet slug or --code-file"),
        (("nothing-here",), "There is no snippet called 'nothing-here'."),
        (("--code-file", "/nonexistent/x.py"), "Cannot read /nonexistent/x.py"),
        (("--code-file", "x.py", "--runtime", "cobol"), "Unknown runtime 'cobol'"),
        (("hello", "--runtime", "django"), "--runtime and --language go with --code-file"),
    ],
)
@pytest.mark.django_db
def test_bad_arguments_are_explained(snippet, args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(".", r"\.")):
        call_command("runsnippet", *args, stdout=io.StringIO())


@pytest.mark.django_db
def test_a_display_only_snippet_is_refused(topic):
    Snippet.objects.create(
        topic=topic,
        title="Mongo",
        slug="mongo",
        code="db.find()",
        runtime="",
        display_only_reason="It needs a MongoDB server.",
    )

    with pytest.raises(CommandError, match="display-only: It needs a MongoDB server."):
        call_command("runsnippet", "mongo", stdout=io.StringIO())
