import pytest
from django.urls import reverse

from glossary.models import Link, Snippet, Topic

MODELS = ["topic", "link", "snippet"]


@pytest.fixture
def content(link, snippet):
    for t in range(4):
        child = Topic.objects.create(name=f"Store {t}", slug=f"store-{t}", parent=link.topic)
        for n in range(5):
            Link.objects.create(topic=child, url=f"https://example.com/{n}", title=f"L{n}")
            Snippet.objects.create(
                topic=child, title=f"S{t}{n}", slug=f"s-{t}-{n}", code="print(1)", runtime="python"
            )
    return link.topic


@pytest.mark.parametrize("model", MODELS)
def test_changelists_render_with_a_search(staff_client, content, model):
    url = reverse(f"admin:glossary_{model}_changelist")
    response = staff_client.get(url, {"q": "post"})
    assert response.status_code == 200


@pytest.mark.parametrize("model", MODELS)
def test_changelists_use_a_constant_number_of_queries(
    staff_client, content, model, django_assert_max_num_queries
):
    url = reverse(f"admin:glossary_{model}_changelist")
    # 21 rows of each model: one query per row would show far above this.
    with django_assert_max_num_queries(10):
        assert staff_client.get(url).status_code == 200


def test_topics_filter_by_link_group_and_snippet_runtime(staff_client, content):
    Link.objects.filter(topic__slug="store-2").update(group="sync")
    Snippet.objects.filter(topic__slug="store-3").update(runtime="", display_only_reason="Mongo")
    url = reverse("admin:glossary_topic_changelist")

    by_group = staff_client.get(url, {"links__group__exact": "sync"}).text
    display_only = staff_client.get(url, {"snippets__runtime__exact": ""}).text

    assert "Store 2" in by_group and "Store 1" not in by_group
    assert "Store 3" in display_only and "Store 2" not in display_only


@pytest.mark.parametrize("model", MODELS)
def test_add_pages_render(staff_client, db, model):
    assert staff_client.get(reverse(f"admin:glossary_{model}_add")).status_code == 200


def test_change_pages_render(staff_client, content, snippet):
    for obj in (content, Link.objects.first(), snippet):
        url = reverse(f"admin:glossary_{obj._meta.model_name}_change", args=[obj.pk])
        response = staff_client.get(url)
        assert response.status_code == 200
        assert "View on site" in response.text


def link_form(topic, **fields):
    data = {"topic": topic.pk, "title": "Docs", "url": "https://example.org/", "group": "docs"}
    data |= {"position": 0, "is_published": "on"} | fields
    return data


def test_admin_refuses_a_javascript_url_with_a_clear_error(staff_client, topic):
    response = staff_client.post(
        reverse("admin:glossary_link_add"), link_form(topic, url="javascript:alert(1)")
    )
    assert response.status_code == 200
    assert "Enter a valid URL." in response.text
    assert not Link.objects.exists()


def test_admin_refuses_a_duplicate_link_with_a_clear_error(staff_client, link):
    response = staff_client.post(
        reverse("admin:glossary_link_add"),
        link_form(link.topic, url="https://WWW.postgresql.org/docs"),
    )
    assert "This topic already has a link to this URL." in response.text
    assert Link.objects.count() == 1


def test_admin_refuses_a_topic_without_a_name(staff_client, db):
    response = staff_client.post(
        reverse("admin:glossary_topic_add"),
        {
            "name": "",
            "slug": "",
            "links-TOTAL_FORMS": 0,
            "links-INITIAL_FORMS": 0,
            "snippets-TOTAL_FORMS": 0,
            "snippets-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 200
    assert "This field is required." in response.text
    assert not Topic.objects.exists()


def test_admin_adds_a_topic_with_a_link_inline(staff_client, db):
    response = staff_client.post(
        reverse("admin:glossary_topic_add"),
        {
            "name": "Redis",
            "slug": "redis",
            "summary": "An in-memory store.",
            "is_published": "on",
            "links-TOTAL_FORMS": 1,
            "links-INITIAL_FORMS": 0,
            "links-0-title": "Redis",
            "links-0-url": "https://redis.io/",
            "links-0-group": "site",
            "links-0-position": 0,
            "links-0-is_published": "on",
            "snippets-TOTAL_FORMS": 0,
            "snippets-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302
    assert Topic.objects.get(slug="redis").links.get().domain == "redis.io"


def test_unpublish_action_hides_topics(staff_client, topic):
    staff_client.post(
        reverse("admin:glossary_topic_changelist"),
        {"action": "unpublish", "_selected_action": [topic.pk]},
    )
    topic.refresh_from_db()
    assert not topic.is_published


def test_snippet_changelist_filters_failing_snippets(staff_client, snippet):
    Snippet.objects.filter(pk=snippet.pk).update(verification="failing")
    url = reverse("admin:glossary_snippet_changelist")
    response = staff_client.get(url, {"verification__exact": "failing"})
    assert snippet.title in response.text
    response = staff_client.get(url, {"verification__exact": "passing"})
    assert "0 snippets" in response.text


def test_admin_refuses_the_same_url_twice_in_one_submission(staff_client, db):
    data = {
        "name": "Redis",
        "slug": "redis",
        "is_published": "on",
        "links-TOTAL_FORMS": 2,
        "links-INITIAL_FORMS": 0,
        "snippets-TOTAL_FORMS": 0,
        "snippets-INITIAL_FORMS": 0,
    }
    for n, url in enumerate(["https://redis.io/", "https://REDIS.io"]):
        data |= {f"links-{n}-title": "Redis", f"links-{n}-url": url, f"links-{n}-group": "site"}
        data |= {f"links-{n}-position": 0}
    response = staff_client.post(reverse("admin:glossary_topic_add"), data)
    assert response.status_code == 200
    assert "This topic already has a link to this URL." in response.text
    assert not Topic.objects.exists()


def test_curators_see_and_filter_featured_topics(staff_client, content):
    Topic.objects.filter(slug="store-2").update(is_featured=True)
    url = reverse("admin:glossary_topic_changelist")

    html = staff_client.get(url, {"is_featured__exact": "1"}).content.decode()

    assert "column-is_featured" in html
    assert "Store 2" in html
    assert "Store 1" not in html
