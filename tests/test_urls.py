import pytest
from django.urls import Resolver404, resolve, reverse

URLS = [
    ("home", [], "/"),
    ("topic-index", [], "/topics/"),
    ("letter-detail", ["A"], "/letters/A/"),
    ("letter-detail", ["#"], "/letters/%23/"),
    ("topic-detail", ["postgresql"], "/topics/postgresql/"),
    ("link-list", [], "/links/"),
    ("snippet-detail", ["hello"], "/snippets/hello/"),
    ("search", [], "/search/"),
    ("about", [], "/about/"),
    ("link-feed", [], "/feeds/links/"),
    ("export", [], "/export.json"),
    ("sitemap", [], "/sitemap.xml"),
    ("topic-preview", ["postgresql"], "/topics/postgresql/preview/"),
    ("report", [], "/feedback/"),
    ("playground", [], "/play/"),
    ("play-share-create", [], "/play/share/"),
    ("play-share", ["Ab-_9xYz0123"], "/play/Ab-_9xYz0123/"),
    ("exercise-list", [], "/exercises/"),
    ("exercise-detail", ["join-orders"], "/exercises/join-orders/"),
    ("path-list", [], "/paths/"),
    ("path-detail", ["sql-from-zero"], "/paths/sql-from-zero/"),
    ("path-step", ["sql-from-zero", 3], "/paths/sql-from-zero/3/"),
]


@pytest.mark.parametrize(("name", "args", "path"), URLS)
def test_every_url_name_round_trips(name, args, path):
    assert reverse(f"glossary:{name}", args=args) == path

    match = resolve(path.replace("%23", "#"))

    assert match.namespace == "glossary"
    assert match.url_name == name
    assert [
        match.kwargs[key] for key in ("letter", "slug", "share_id", "number") if key in match.kwargs
    ] == args


def test_the_list_covers_every_url_name():
    from glossary.urls import urlpatterns

    assert {pattern.name for pattern in urlpatterns} == {name for name, _, _ in URLS}


@pytest.mark.parametrize(
    "path",
    ["/letters/AB/", "/letters/%/", "/letters/1/", "/topics/a b/", "/paths/a/-1/", "/paths/a/x/"],
)
def test_bad_paths_do_not_resolve(path):
    with pytest.raises(Resolver404):
        resolve(path)
