"""The webhook path's shortcuts through validation give the answers of the full checks: a link
that `PLAIN_WEB_URL` accepts is one that splitting accepts too, and an event whose text fields
pass the one joined test passes the test per field (property tests, hypothesis)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.events import LIMITS, REQUIRED, TEXT_FIELDS, NormalisedEvent, _plain_texts, check_event
from ledger.validation import PLAIN_WEB_URL, check_text, is_web_url, splits_as_web_url

PRINTABLE_ASCII = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)
# Short texts with the characters that matter: controls, tab and newline, non-ASCII, surrogates.
TEXTS = st.text(st.sampled_from("aZ9-/:.\t\n\x00\x1f\x7fé€\ud800"), max_size=70)


@given(st.from_regex(PLAIN_WEB_URL, fullmatch=False), PRINTABLE_ASCII)
def test_a_link_the_shortcut_accepts_is_one_splitting_accepts(start: str, rest: str) -> None:
    url = PLAIN_WEB_URL.match(start)
    link = (url.group(0) if url else "") + rest
    if PLAIN_WEB_URL.match(link) and link.isascii() and " " not in link:
        assert splits_as_web_url(link)
        assert is_web_url(link)


@pytest.mark.parametrize("link, expected", [
    ("https://github.com/user1/repo2", True),
    ("HTTP://example.org", True),
    ("https://example.org?q=1#top", True),
    ("https://user@example.org/", True),  # not the shortcut's form: split, and still a link
    ("https://example.org:8080/x", True),
    ("https://example.org:port/x", False),
    ("https://[::1/x", False),
    ("javascript://example.org/%0Aalert(1)", False),
    ("https:///path-only", False),
    ("https://example.org/a b", False),
])
def test_links_with_and_without_the_shortcut(link: str, expected: bool) -> None:
    assert is_web_url(link) is expected


@given(st.fixed_dictionaries({name: TEXTS if name in REQUIRED else st.none() | TEXTS | st.integers()
                               for name in TEXT_FIELDS}))
def test_the_joined_text_test_passes_only_what_each_field_passes(
        texts: dict[str, str | int | None]) -> None:
    event = NormalisedEvent(occurred_at=datetime(2026, 1, 1), **texts)
    if _plain_texts(event):
        for name, value in texts.items():
            if value is not None:
                assert isinstance(value, str)
                check_text(value, name, LIMITS.get(name, 64))


def test_the_joined_text_test_takes_plain_texts_with_and_without_the_optional_fields() -> None:
    event = NormalisedEvent(event_id="d-1", platform="github", kind="like", actor_id="1",
                            content_id="2", owner_id="3", occurred_at=datetime(2026, 1, 1))
    assert _plain_texts(event)
    assert _plain_texts(replace(event, url="https://example.org", title="A title"))
    assert not _plain_texts(replace(event, title="x" * 513))
    assert not _plain_texts(replace(event, title=7))
    nothing = NormalisedEvent(**dict.fromkeys(TEXT_FIELDS), occurred_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="event kind must be like or unlike"):
        check_event(nothing)


def test_the_first_field_at_fault_is_named_whichever_way_the_check_goes() -> None:
    event = NormalisedEvent(event_id="e\x00", platform="github", kind="like", actor_id="1",
                            content_id="x" * 600, owner_id="3", occurred_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="event_id holds control characters"):
        check_event(event)
