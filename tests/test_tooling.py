"""Developer tooling promised by the README works."""

from django.core.management import call_command


def test_show_urls_lists_the_public_pages_and_the_admin(capsys):
    call_command("show_urls")

    output = capsys.readouterr().out
    assert "/topics/<slug:slug>/\tglossary.views.TopicDetailView\tglossary:topic-detail" in output
    assert "/admin/" in output


def test_shell_plus_runs_with_printed_sql(db, capsys):
    call_command("shell_plus", "--print-sql", command="print(Topic.objects.count())")

    output = capsys.readouterr().out
    assert "COUNT" in output and "glossary_topic" in output
    assert "Execution time:" in output
    assert output.strip().endswith("0")
