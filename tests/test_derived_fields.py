"""Bulk writes skip save(), yet stored HTML stays sanitised and in step with its source."""

from django.urls import reverse

from glossary.models import Link, Snippet, Topic

SCRIPT = "<script>alert(1)</script>**bold**"


def test_bulk_created_topics_show_sanitised_summaries_under_their_letter(client, db):
    Topic.objects.bulk_create([Topic(name="Vacuum", slug="vacuum", summary=SCRIPT)])

    page = client.get(reverse("glossary:topic-detail", args=["vacuum"])).text

    assert "<strong>bold</strong>" in page
    assert "<script>alert(1)" not in page
    assert "Vacuum" in client.get(reverse("glossary:letter-detail", args=["V"])).text


def test_a_queryset_update_of_a_summary_is_rendered_and_sanitised(client, topic):
    Topic.objects.filter(pk=topic.pk).update(summary=SCRIPT)

    page = client.get(topic.get_absolute_url()).text

    assert "<strong>bold</strong>" in page
    assert "<script>alert(1)" not in page


def test_a_queryset_update_of_a_name_moves_the_topic_to_its_new_letter(topic):
    Topic.objects.filter(name="PostgreSQL").update(name="Aurora")

    assert Topic.objects.get(pk=topic.pk).letter == "A"


def test_a_queryset_update_of_code_is_highlighted_afresh(client, snippet):
    Snippet.objects.filter(pk=snippet.pk).update(code="print('changed')")

    page = client.get(snippet.get_absolute_url()).text

    assert "changed" in page
    assert "hello" not in Snippet.objects.get(pk=snippet.pk).highlighted


def test_a_bulk_update_of_descriptions_is_rendered_and_sanitised(snippet):
    snippet.description = SCRIPT
    Snippet.objects.bulk_update([snippet], ["description"])

    html = Snippet.objects.get(pk=snippet.pk).description_html
    assert "<strong>bold</strong>" in html
    assert "<script>" not in html


def test_bulk_created_links_know_their_domain(topic):
    Link.objects.bulk_create([Link(topic=topic, url="https://WWW.Example.com/a/", title="Example")])

    assert Link.objects.get().domain == "example.com"
