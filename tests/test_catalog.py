"""The catalog of button things: create, read, search and sort, update, delete, flattr."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from catalog import things as catalog
from catalog.errors import Conflict, Forbidden, InvalidThing, NotFound
from catalog.urls import normalise
from ledger.accounts import create_user
from ledger.schema import flattrs, identities
from ledger.verify import verify
from tests.rest_helpers import claim_site

NOW = datetime(2026, 11, 20, 12, 0)


@pytest.fixture
def people(engine):
    """ana, bo and cy, each having claimed the site <name>.example."""
    with engine.begin() as conn:
        found = {name: create_user(conn, name) for name in ("ana", "bo", "cy")}
        for name, uid in found.items():
            claim_site(conn, uid, f"https://{name}.example/")
        return found


def test_urls_are_normalised_and_bad_ones_refused():
    assert normalise("HTTPS://Example.ORG:443") == "https://example.org/"
    assert normalise("http://example.org:8080/a?b=1#c") == "http://example.org:8080/a?b=1#c"
    for bad in ("", "ftp://example.org/", "example.org", "http://u:p@example.org/",
                "http://exa mple.org/", "http://example.org/" + "x" * 600):
        with pytest.raises(InvalidThing):
            normalise(bad)


def test_create_and_get_a_thing(engine, people):
    with engine.begin() as conn:
        tid = catalog.create_thing(conn, people["bo"], "https://Bo.example/post/1", "Post one",
                                   "About things", "text", "en_GB", "Music, art ,music", False)
        thing = catalog.get_thing(conn, tid)
        owner = conn.execute(select(identities).where(
            identities.c.platform == "web", identities.c.platform_user_id == "bo.example")).one()
    assert thing["url"] == "https://bo.example/post/1"
    assert (thing["title"], thing["category"], thing["language"]) == ("Post one", "text", "en_GB")
    assert thing["tags"] == ["art", "music"] and thing["hidden"] is False
    assert thing["owner"]["username"] == "bo" and thing["flattrs"] == 0
    assert owner.claimed_by == people["bo"] and thing["submitter"] == "bo"
    with engine.begin() as conn:
        assert catalog.lookup_url(conn, "https://bo.example:443/post/1") == tid
        assert catalog.lookup_url(conn, "not a url") is None
        assert catalog.get_things(conn, [tid + 99, tid]) == [catalog.get_thing(conn, tid)]


def test_bad_fields_and_taken_urls_are_refused(engine, people):
    with engine.begin() as conn:
        catalog.create_thing(conn, people["bo"], "https://bo.example/")
    for kwargs, exc in [({"category": "food"}, InvalidThing), ({"language": "xx_XX"},
                        InvalidThing), ({"title": "t" * 300}, InvalidThing),
                        ({"url": "https://bo.example"}, Conflict)]:
        args = {"url": "https://bo.example/other", **kwargs}
        with engine.begin() as conn, pytest.raises(exc):
            catalog.create_thing(conn, people["ana"], **args)
    with engine.begin() as conn:
        assert catalog.search(conn)["total_items"] == 1


def test_flattr_once_per_month_no_self_flattr_and_counts(engine, people):
    with engine.begin() as conn:
        tid = catalog.create_thing(conn, people["bo"], "https://bo.example/")
    with engine.begin() as conn:
        assert catalog.flattr(conn, people["ana"], tid, NOW) == "flattred"
    with engine.begin() as conn:
        assert catalog.flattr(conn, people["ana"], tid, NOW) == "flattr_once"
        assert catalog.flattr(conn, people["bo"], tid, NOW) == "flattr_owner"
        assert catalog.flattr(conn, people["cy"], tid, NOW) == "flattred"
        assert catalog.flattr(conn, people["cy"], tid + 50, NOW) == "not_found"
        assert catalog.counts(conn, tid, NOW) == {"month": 2, "all": 2}
        assert catalog.counts(conn, tid, datetime(2026, 12, 2)) == {"month": 0, "all": 2}
        sources = conn.execute(select(flattrs.c.source)).scalars().all()
    assert sources == ["button", "button"]
    with engine.begin() as conn:
        assert catalog.flattr(conn, people["ana"], tid, datetime(2026, 12, 2)) == "flattred"
        assert catalog.counts(conn, tid, datetime(2026, 12, 3)) == {"month": 1, "all": 3}
    with engine.connect() as conn:
        assert verify(conn) == []


def test_submit_creates_on_first_flattr_and_refuses_self_and_unknown_users(engine, people):
    params = catalog.submit_params({"user_id": "bo", "url": "https://bo.example/song",
                                    "title": "Song", "category": "audio", "tags": "a,b",
                                    "hidden": "1"})
    with engine.begin() as conn:
        assert catalog.flattr_submit(conn, people["bo"], params, NOW) == ("flattr_owner", None)
        assert catalog.lookup_url(conn, params["url"]) is None
        unknown = {**params, "user_id": "nobody"}
        assert catalog.flattr_submit(conn, people["ana"], unknown, NOW) == ("unknown_user", None)
        outcome, tid = catalog.flattr_submit(conn, people["ana"], params, NOW)
        assert outcome == "flattred" and catalog.get_thing(conn, tid)["hidden"] is True
        assert catalog.flattr_submit(conn, people["ana"], params, NOW) == ("flattr_once", tid)
    for bad in ({"url": "https://x.example/"}, {"user_id": "bo"},
                {"user_id": "bo", "url": "https://x.example/", "language": "klingon"}):
        with pytest.raises(InvalidThing):
            catalog.submit_params(bad)
    parsed = catalog.parse_submit_url(
        "https://flattr.com/submit/auto?url=https%3A%2F%2Fbo.example%2F&uid=bo&category=text")
    assert parsed["user_id"] == "bo" and parsed["url"] == "https://bo.example/"
    assert catalog.parse_submit_url("https://bo.example/") is None


def test_pledged_when_the_owner_identity_is_unclaimed(engine, people):
    with engine.begin() as conn:
        tid = catalog.create_thing(conn, people["bo"], "https://bo.example/")
        conn.execute(identities.update().values(claimed_by=None, claimed_at=None))
        assert catalog.flattr(conn, people["ana"], tid, NOW) == "pledged"


def test_search_filters_and_sorts(engine, people):
    with engine.begin() as conn:
        a = catalog.create_thing(conn, people["bo"], "https://bo.example/a", "Jazz night",
                                 "Live music", "audio", "en_GB", "jazz")
        b = catalog.create_thing(conn, people["bo"], "https://bo.example/b", "Code",
                                 "A 100% free library", "software", "sv_SE", "python,jazz")
        c = catalog.create_thing(conn, people["cy"], "https://cy.example/c", "Secret",
                                 None, "text", "en_GB", None, True)
        catalog.flattr(conn, people["ana"], b, datetime(2026, 10, 5))
        catalog.flattr(conn, people["cy"], b, datetime(2026, 10, 5))
        catalog.flattr(conn, people["ana"], a, NOW)

        def ids(**kw):
            return [t["id"] for t in catalog.search(conn, now=NOW, **kw)["things"]]

        assert ids() == [a, b]
        assert ids(sort="flattrs_all") == [b, a]
        assert ids(sort="flattrs_month") == [a, b]
        assert ids(query="JAZZ") == [a, b] and ids(query="jazz live") == [a]
        assert ids(query="100%") == [b] and ids(query="%") == [b]
        assert ids(category="software") == [b] and ids(language="en_GB") == [a]
        assert ids(tags="python") == [b] and ids(category="audio,software") == [a, b]
        assert ids(owner_uid=people["cy"]) == []
        assert ids(owner_uid=people["cy"], include_hidden=True) == [c]
        page = catalog.search(conn, page=2, count=1, now=NOW)
        assert (page["total_items"], page["items"], page["things"][0]["id"]) == (2, 1, b)
        for bad in ({"sort": "random"}, {"page": 0}, {"count": 101}, {"category": "x"}):
            with pytest.raises(InvalidThing):
                catalog.search(conn, **bad)


def test_update_and_delete_by_the_owner_only(engine, people):
    with engine.begin() as conn:
        tid = catalog.create_thing(conn, people["bo"], "https://bo.example/", "Old")
    with engine.begin() as conn:
        with pytest.raises(Forbidden):
            catalog.update_thing(conn, tid, people["ana"], title="Mine")
        with pytest.raises(InvalidThing):
            catalog.update_thing(conn, tid, people["bo"], owner="ana")
        with pytest.raises(NotFound):
            catalog.update_thing(conn, tid + 9, people["bo"], title="x")
        catalog.update_thing(conn, tid, people["bo"], title="New", tags=["x"], hidden=True)
        thing = catalog.get_thing(conn, tid)
        assert (thing["title"], thing["tags"], thing["hidden"]) == ("New", ["x"], True)
    with engine.begin() as conn:
        with pytest.raises(Forbidden):
            catalog.delete_thing(conn, tid, people["ana"])
        catalog.delete_thing(conn, tid, people["bo"])
        assert catalog.get_thing(conn, tid) is None
        assert catalog.lookup_url(conn, "https://bo.example/") is None
        assert catalog.flattr(conn, people["ana"], tid, NOW) == "not_found"
        # registered again by someone else, it is still the thing of bo's site
        assert catalog.create_thing(conn, people["ana"], "https://bo.example/") == tid
        assert catalog.get_thing(conn, tid)["owner"]["username"] == "bo"
        with pytest.raises(Conflict):
            catalog.create_thing(conn, people["ana"], "https://bo.example/")
    with engine.begin() as conn:
        assert catalog.create_thing(conn, people["bo"], "https://bo.example/", "Back") == tid
        assert catalog.get_thing(conn, tid)["title"] == "Back"
