"""Standard Webhooks relay connector: any platform's like, signed, deduplicated on webhook-id."""

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from base.config import with_overrides
from connectors.base import PayloadError, SignatureError
from connectors.registry import default_config, enabled_connectors
from connectors.relay import CONNECTOR
from hub.simulate import standard_headers

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SECRET = "whsec_" + base64.b64encode(b"relay-secret-for-tests-0123456789").decode()
CONFIG = with_overrides(default_config(), {"connectors": {"relay": {"secret": SECRET}}})
BODY = (FIXTURES / "relay-soundcloud-like.json").read_bytes()


def test_signed_soundcloud_like_becomes_a_normalised_event() -> None:
    [event], reply = CONNECTOR.accept(CONFIG, BODY, standard_headers(SECRET, BODY, "msg_1"))
    assert reply == {"accepted": 1}
    assert event.to_dict() == {
        "event_id": "msg_1", "platform": "soundcloud", "kind": "like",
        "actor_id": "soundcloud:users:77889900", "content_id": "soundcloud:tracks:1822334455",
        "owner_id": "soundcloud:users:22110099", "occurred_at": "2026-10-03T14:12:09.000000Z",
        "url": "https://soundcloud.com/lumenband/night-bus", "title": "Night Bus",
    }


def test_kind_is_accepted_as_well_as_type() -> None:
    payload = json.loads(BODY)
    payload["kind"] = "unlike"
    del payload["type"]
    body = json.dumps(payload).encode()
    [event], _ = CONNECTOR.accept(CONFIG, body, standard_headers(SECRET, body, "msg_2"))
    assert event.kind == "unlike"


@pytest.mark.parametrize("change, reason", [
    (lambda h: h.pop("webhook-signature"), "missing webhook-signature header"),
    (lambda h: h.update({"webhook-signature": "v1,AAAA"}), "signature does not match"),
    (lambda h: h.update({"webhook-signature": "garbage"}), "malformed webhook-signature"),
    (lambda h: h.update({"webhook-id": "msg_other"}), "signature does not match"),
    (lambda h: h.update({"webhook-timestamp": "nan"}), "signature does not match"),
])
def test_forged_headers_are_refused(change, reason: str) -> None:
    headers = standard_headers(SECRET, BODY, "msg_3")
    change(headers)
    with pytest.raises(SignatureError, match=reason) as caught:
        CONNECTOR.accept(CONFIG, BODY, headers)
    assert SECRET not in str(caught.value)


def test_stale_and_future_timestamps_are_refused() -> None:
    for shift in (timedelta(minutes=-6), timedelta(minutes=6)):
        headers = standard_headers(SECRET, BODY, "msg_4", at=datetime.now(UTC) + shift)
        with pytest.raises(SignatureError, match="outside the window"):
            CONNECTOR.accept(CONFIG, BODY, headers)


def test_body_signed_with_another_secret_is_refused() -> None:
    other = "whsec_" + base64.b64encode(b"another-secret-0123456789abcdef").decode()
    with pytest.raises(SignatureError):
        CONNECTOR.accept(CONFIG, BODY, standard_headers(other, BODY, "msg_5"))


@pytest.mark.parametrize("body, message", [
    (b"[1, 2]", "body must be a JSON object"),
    (b'{"type": "like"}', "event lacks platform"),
    (b'{"type": "boost", "platform": "soundcloud", "actor_id": "a", "content_id": "c",'
     b' "owner_id": "o", "occurred_at": "2026-10-03T14:12:09Z"}', "kind must be like or unlike"),
    (b"not json", "body is not JSON"),
])
def test_malformed_bodies_are_payload_errors(body: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        CONNECTOR.accept(CONFIG, body, standard_headers(SECRET, body, "msg_6"))


def test_an_unusable_secret_is_named_but_not_shown() -> None:
    config = with_overrides(default_config(),
                            {"connectors.relay.secret": "whsec_!!not base64!!"})
    with pytest.raises(ValueError, match=r"connectors\.relay\.secret") as caught:
        enabled_connectors(config)
    assert "not base64" not in str(caught.value)


def test_registry_lists_only_configured_connectors() -> None:
    config = with_overrides(default_config(), {"connectors.relay.secret": SECRET})
    assert list(enabled_connectors(config)) == ["relay"]
