"""Shared code: permalinks at /play/<id>/, one record per code, capped, limited, expiring."""

import datetime

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from glossary.models import Share

SHARE = reverse("glossary:play-share-create")
JSON = {"Accept": "application/json"}
# Views run in a thread of their own under the async client: their writes must commit.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def generous_limit(settings):
    settings.SNIPPET_SHARES_PER_HOUR = 100


async def share(async_client, code="print(1)\n", runtime="python", headers=None):
    return await async_client.post(SHARE, {"runtime": runtime, "code": code}, headers=headers)


@pytest.mark.asyncio
async def test_sharing_gives_a_permalink_that_opens_the_code_in_the_playground(async_client):
    response = await share(async_client, "print('shared')\n", headers=JSON)

    url = response.json()["url"]
    page = await async_client.get(url)
    assert url.startswith("http://testserver/play/")
    assert page.status_code == 200
    assert "print(&#x27;shared&#x27;)" in page.content.decode()


@pytest.mark.asyncio
async def test_a_permalink_keeps_the_runtime_and_the_language(async_client):
    url = (await share(async_client, "SELECT 1;\n", "python-sql", headers=JSON)).json()["url"]
    as_python = (await share(async_client, "SELECT 1;\n", headers=JSON)).json()["url"]

    page = (await async_client.get(url)).content.decode()
    shared = await Share.objects.aget(code="SELECT 1;\n", language="sql")
    assert url != as_python
    assert (shared.runtime, shared.language) == ("python", "sql")
    assert '<option value="python-sql" selected>SQL on SQLite</option>' in page


@pytest.mark.asyncio
async def test_without_javascript_the_form_redirects_to_the_permalink(async_client):
    response = await share(async_client, "print(1)\r\nprint(2)\r\n")

    shared = await Share.objects.aget()
    assert response.status_code == 302
    assert response["Location"] == f"/play/{shared.pk}/"
    assert shared.code == "print(1)\nprint(2)\n"  # the text box's CRLF line breaks


@pytest.mark.asyncio
async def test_the_same_code_shared_twice_is_one_record_and_ids_are_random(async_client):
    first = (await share(async_client, headers=JSON)).json()["url"]
    second = (await share(async_client, headers=JSON)).json()["url"]
    other_runtime = (await share(async_client, runtime="django", headers=JSON)).json()["url"]

    assert first == second
    assert other_runtime != first
    assert await Share.objects.acount() == 2
    ids = [share.pk async for share in Share.objects.all()]
    assert all(len(share_id) == 12 for share_id in ids)


@pytest.mark.asyncio
async def test_shared_code_pages_are_not_indexed(async_client):
    url = (await share(async_client, headers=JSON)).json()["url"]

    page = await async_client.get(url)

    assert page["X-Robots-Tag"] == "noindex"
    assert '<meta name="robots" content="noindex">' in page.content.decode()


@pytest.mark.asyncio
async def test_shared_code_is_always_shown_escaped(async_client):
    code = "print('</textarea><script>alert(1)</script>')\n"
    url = (await share(async_client, code, headers=JSON)).json()["url"]

    page = (await async_client.get(url)).content.decode()

    assert "<script>alert(1)</script>" not in page
    assert "&lt;/textarea&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("runtime", "code", "message"),
    [
        ("python", "#" * (64 * 1024 + 1), "The code is too long: at most 64 KiB."),
        ("python", "   ", "The code must be non-empty text."),
        ("cobol", "print(1)", "There is no runtime 'cobol' here."),
    ],
)
async def test_bad_shares_get_a_clear_error_and_store_nothing(async_client, runtime, code, message):
    as_json = await share(async_client, code, runtime, headers=JSON)
    as_form = await share(async_client, code, runtime)

    assert as_json.status_code == 400
    assert as_json.json() == {"error": message}
    assert as_form.status_code == 400
    assert message.replace("'", "&#x27;") in as_form.content.decode()
    assert await Share.objects.acount() == 0


@pytest.mark.asyncio
async def test_the_share_cap_is_a_setting(async_client, settings):
    settings.SNIPPET_SHARE_MAX_BYTES = 1024

    response = await share(async_client, "#" * 1025, headers=JSON)

    assert response.json() == {"error": "The code is too long: at most 1 KiB."}


@pytest.mark.asyncio
async def test_shares_are_rate_limited_per_client(async_client, settings):
    settings.SNIPPET_SHARES_PER_HOUR = 2

    answers = [await share(async_client, f"print({n})", headers=JSON) for n in range(3)]

    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert "Too many shares" in answers[2].json()["error"]


@pytest.mark.asyncio
async def test_sharing_is_off_with_reader_code(async_client, settings):
    settings.SNIPPET_READER_CODE = False

    response = await share(async_client, headers=JSON)

    assert response.json() == {"error": "Running your own code is turned off on this server."}


def test_an_unknown_share_is_not_found(client):
    assert client.get("/play/nosuchshare1/").status_code == 404


def test_expired_shares_are_deleted_and_opened_ones_kept(client, settings, capsys):
    settings.SNIPPET_SHARE_EXPIRY_DAYS = 30
    long_ago = timezone.now() - datetime.timedelta(days=31)
    stale = Share.objects.create(runtime="python", code="print('stale')")
    opened = Share.objects.create(runtime="python", code="print('opened')")
    Share.objects.update(last_viewed=long_ago)

    client.get(opened.get_absolute_url())
    call_command("deleteexpiredshares")

    assert list(Share.objects.all()) == [opened]
    assert not Share.objects.filter(pk=stale.pk).exists()
    assert "Deleted 1 share(s)" in capsys.readouterr().out


def test_staff_list_and_delete_shares_in_the_admin(staff_client):
    shared = Share.objects.create(runtime="python", code="print('look at me')\n")
    changelist = reverse("admin:glossary_share_changelist")

    listing = staff_client.get(changelist, {"q": "look"})
    change = staff_client.get(reverse("admin:glossary_share_change", args=[shared.pk]))
    add = staff_client.get(reverse("admin:glossary_share_add"))
    delete = staff_client.post(
        reverse("admin:glossary_share_delete", args=[shared.pk]), {"post": "yes"}
    )

    assert "print(&#x27;look at me&#x27;)" in listing.content.decode()
    assert change.status_code == 200
    assert add.status_code == 403  # shares come from readers only
    assert delete.status_code == 302
    assert not Share.objects.exists()
