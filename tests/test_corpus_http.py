"""Every acceptance case posted through the ingest application: status, record and reply.

Request headers, bodies, secrets or public keys, public URLs and clocks are
copied as literals from the webhook receiver acceptance corpus, cases A01 to
B24, and each case runs with its own `now` as the application clock. The
sources are built with `parse_config` from the tables in docs/providers.md.

A case is published when its event reaches subscribers. Ingest produces
every authentic delivery to the raw topic, a provider's retry included,
because the audit log keeps each delivery, and the router then drops repeats
of an event id. So a retry such as B14 gets 200 and a raw record, and the
publishing test runs that record through a router whose table already
contains the event ids the case lists as seen.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ingest_fakes import RAW_TOPIC, REJECTED_TOPIC, Record, RecordingProducer
from litestar.testing import TestClient

from hookline.config import parse_config
from ingest.app import create_app
from streams.dedupe import Deduplicator, SeenEntry
from streams.envelope import OutboundRecord
from streams.router import Router
from streams.rules import parse_rules

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"

# Source tables as docs/providers.md gives them, without secrets.
GITHUB = {
    "scheme": "github",
    "event_id": "header:X-GitHub-Delivery",
    "event_type": "header:X-GitHub-Event",
    "content_types": [JSON, FORM],
    "max_body_bytes": 26214400,
}
STRIPE = {
    "scheme": "stripe",
    "event_id": "json:/id",
    "event_type": "json:/type",
    # Keys records by the object an event changes, so one subscription's events share a key.
    "entity_key": "json:/data/object/id",
    "content_types": [JSON],
}
SHOPIFY = {
    "scheme": "shopify",
    "event_id": "header:X-Shopify-Webhook-Id",
    "event_type": "header:X-Shopify-Topic",
    "content_types": [JSON],
}
SLACK = {
    "scheme": "slack",
    "event_id": "json:/event_id",
    "event_type": "json:/event/type",
    "content_types": [JSON, FORM],
}
STANDARD_WEBHOOKS = {
    "scheme": "standard-webhooks",
    "event_id": "header:webhook-id",
    "event_type": "json:/type",
}
# Svix sends the Standard Webhooks headers under svix-* names.
SVIX = STANDARD_WEBHOOKS | {"event_id": "header:svix-id"}
TWILIO = {
    "scheme": "twilio",
    "event_id": "header:I-Twilio-Idempotency-Token",
    "content_types": [FORM, JSON],
}
PADDLE = {
    "scheme": "paddle",
    "event_id": "json:/event_id",
    "event_type": "json:/event_type",
    "content_types": [JSON],
}
SQUARE = {"scheme": "square", "event_id": "json:/event_id", "event_type": "json:/type"}
DISCORD = {"scheme": "discord", "event_type": "json:/event/type"}
SENDGRID = {"scheme": "sendgrid", "content_types": [JSON], "max_body_bytes": 5242880}
MAILGUN = {
    "scheme": "mailgun",
    "event_id": "json:/event-data/id",
    "event_type": "json:/event-data/event",
}
GITLAB = {
    "scheme": "gitlab",
    "event_id": "header:Idempotency-Key",
    "event_type": "header:X-Gitlab-Event",
    "content_types": [JSON],
    "max_body_bytes": 26214400,
}
ZOOM = {"scheme": "zoom", "event_type": "json:/event", "content_types": [JSON]}
LINEAR = {
    "scheme": "linear",
    "event_id": "header:Linear-Delivery",
    "event_type": "json:/type",
    "content_types": [JSON],
}
INTERCOM = {
    "scheme": "intercom",
    "event_id": "json:/id",
    "event_type": "json:/topic",
    "content_types": [JSON],
}
TYPEFORM = {
    "scheme": "typeform",
    "event_id": "json:/event_id",
    "event_type": "json:/event_type",
    "content_types": [JSON],
}

DEDUPE_WINDOW_SECONDS = 7 * 24 * 3600
CHANGELOG_TOPIC = "test.changelog"


@dataclass(frozen=True)
class Case:
    """One acceptance case: the request, the source it is sent to and what must happen."""

    source_name: str
    # The [sources.<name>] table, as parse_config reads it from TOML.
    source: dict[str, Any]
    headers: dict[str, str]
    body: bytes
    body_sha256: str
    now: int
    status: int
    # Whether the event reaches subscribers, after the router's repeat check.
    publish: bool
    # Error code of a rejection, as Hookline names it.
    error: str | None = None
    # Reply to a handshake, which is not produced.
    response_body: bytes | None = None
    # Provider event ids in the router's table before the request arrives.
    seen_event_ids: tuple[str, ...] = ()
    # Expected key of the routed records.
    routed_key: bytes | None = None

    @property
    def produced(self) -> bool:
        """Whether ingest must produce the request to the raw topic."""
        return self.status == 200 and self.response_body is None


def source(table: dict[str, Any], *secrets: str, **options: Any) -> dict[str, Any]:
    """Return the source table TABLE with SECRETS and the case's scheme OPTIONS."""
    return {**table, "secrets": list(secrets), **options}


def large_push_body(files: int = 5400) -> bytes:
    """Build B17's 167,770-byte push payload: one commit that adds FILES files."""
    added = ",".join(f'"src/module_{i // 50:04d}/file_{i:04d}.py"' for i in range(files))
    return (
        '{"ref":"refs/heads/main","before":"' + "1" * 40 + '","after":"' + "2" * 40 + '",'
        '"repository":{"full_name":"corpus/monorepo"},"commits":[{"id":"' + "3" * 40 + '",'
        '"message":"vendor all the things","added":[' + added + '],"removed":[],"modified":[]}],'
        '"head_commit":{"id":"' + "3" * 40 + '"}}'
    ).encode()


A01 = Case(
    source_name="github",
    source=source(GITHUB, "It's a Secret to Everybody"),
    headers={
        "Content-Type": "application/json",
        "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": "00000000-0000-4000-8000-000000000a01",
        "X-Hub-Signature": "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59",
        "X-Hub-Signature-256": (
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        ),
    },
    body=b"Hello, World!",
    body_sha256="dffd6021bb2bd5b0af676290809ec3a53191dd81c7f70a4b28688a362182986f",
    now=1767225600,
    status=200,
    publish=True,
)
A02 = Case(
    source_name="stripe",
    source=source(STRIPE, "whsec_corpusOnlyNotARealStripeSecret0001"),
    headers={
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        "Stripe-Signature": (
            "t=1767225600,v1=8808eb7ba7268cee12ddd9a3c673de4c624611636d9f1d1237e8a55f5f29ae4e"
        ),
    },
    body=(
        b'{\n  "id": "evt_corpus_A02",\n  "object": "event",\n'
        b'  "api_version": "2024-06-20",\n  "created": 1767225598,\n'
        b'  "data": {\n    "object": {\n      "id": "pi_corpus_A02",\n'
        b'      "object": "payment_intent",\n      "amount": 2000,\n'
        b'      "currency": "usd",\n      "status": "succeeded"\n'
        b'    }\n  },\n  "livemode": false,\n  "pending_webhooks": 1,\n'
        b'  "type": "payment_intent.succeeded"\n}\n'
    ),
    body_sha256="83267df0543f0597f778426e17ecff1c5fff78c9be0da73f5e3fcc7d879a73dc",
    now=1767225630,
    status=200,
    publish=True,
)
A03 = Case(
    source_name="shopify",
    source=source(SHOPIFY, "shpss_corpus_fake_client_secret_0001"),
    headers={
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Shop-Domain": "corpus-demo.myshopify.com",
        "X-Shopify-API-Version": "2025-10",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        "X-Shopify-Triggered-At": "2026-01-01T05:00:00.000000000Z",
        "X-Shopify-Hmac-Sha256": "kuv4YDN2z1h4yUzdM8GO681uIKc6HuXmImlx3EIH4uQ=",
    },
    body=(
        b'{"id":820982911946154508,"email":"jon.doe@example.com","created_at":"2026-01-01T0'
        b'0:00:00-05:00","total_price":"403.00","currency":"USD","line_items":[{"id":866550'
        b'311766439020,"title":"Widget","quantity":1,"price":"199.00"}]}'
    ),
    body_sha256="e7080658a12e41cb33b518e3819e2ddd3078df45b25401959e9f243521732f09",
    now=1767225600,
    status=200,
    publish=True,
)
A04 = Case(
    source_name="slack",
    source=source(SLACK, "8f742231b10e8888abcd99yyyzzz85a5"),
    headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": "1531420618",
        "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
    },
    body=(
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_"
        b"id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%"
        b"2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT"
        b"1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.474456"
        b"29121.803a0bc887a14d10d2c447fce8b6703c"
    ),
    body_sha256="390eeeff8d0cb7c9f6ecf8a88c3df6452fea0914eb02f64844369f3758d8d330",
    now=1531420648,
    status=200,
    publish=True,
)
A05 = Case(
    source_name="standard-webhooks",
    source=source(STANDARD_WEBHOOKS, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    headers={
        "Content-Type": "application/json",
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    },
    body=b'{"test": 2432232314}',
    body_sha256="ae858931f67887e8150d6f96c9fe03062c1df36b4464c4ddc8e002c084d5d198",
    now=1614265340,
    status=200,
    publish=True,
)
A07 = Case(
    source_name="svix",
    source=source(SVIX, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    headers={
        "Content-Type": "application/json",
        "svix-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "svix-timestamp": "1614265330",
        "svix-signature": (
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= "
            "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= "
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= "
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
        ),
    },
    body=b'{"test": 2432232314}',
    body_sha256="ae858931f67887e8150d6f96c9fe03062c1df36b4464c4ddc8e002c084d5d198",
    now=1614265270,
    status=200,
    publish=True,
)
A08 = Case(
    source_name="twilio",
    source=source(TWILIO, "12345", public_url="https://mycompany.com/myapp.php?foo=1&bar=2"),
    headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
    },
    body=(
        b"CallSid=CA1234567890ABCDE&Digits=1234&From=%2B14158675309&To=%2B18005551212&Calle"
        b"r=%2B14158675309"
    ),
    body_sha256="7ff5f5e8aa2f59e9e4958d3779bcfedc75baf44652736a1c49a7a2371f0717ab",
    now=1767225600,
    status=200,
    publish=True,
)
A09 = Case(
    source_name="twilio",
    source=source(
        TWILIO,
        "12345",
        public_url=(
            "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416"
            "e41502b283a80c7cf19632632f96e6620"
        ),
    ),
    headers={
        "Content-Type": "application/json",
        "X-Twilio-Signature": "a9nBmqA0ju/hNViExpshrM61xv4=",
    },
    body=b'{"property": "value", "boolean": true}',
    body_sha256="0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620",
    now=1767225600,
    status=200,
    publish=True,
)
A11 = Case(
    source_name="paddle",
    source=source(
        PADDLE,
        "pdl_ntf_01hbpjmytsa32fhr36nqgc3kgb_TjIG2BXbm83HPXqNfziwe506sBEdqL/4",
        "pdl_ntf_01hbpjmytsa32fhr36nqgc3kgb_vB/yIOnTOCWIvpBadM5jzBZPHc7OmdSo",
        "pdl_ntf_01hbpjmytsa32fhr36nqgc3kgb_WvRO0eL4Bj9rgYYIBZY6wZhG4EHy9jzh",
    ),
    headers={
        "Content-Type": "application/json",
        "Paddle-Signature": (
            "ts=1696195954;h1=dummy;h1=d96299976a6eb066f484d7fde011ac56fc32b38fc9940bc419d6e537fdc6"
            "ef02"
        ),
    },
    body=b"hello-world",
    body_sha256="afa27b44d43b02a9fea41d13cedc2e4016cfcf87c5dbf990e593669aa8ce286d",
    now=1696195956,
    status=200,
    publish=True,
)
A13 = Case(
    source_name="square",
    source=source(
        SQUARE,
        "Ibxx_5AKakO-3qeNVR61Dw",
        public_url="https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9",
    ),
    headers={
        "Content-Type": "application/json",
        "x-square-hmacsha256-signature": "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4=",
    },
    body=(
        b'{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification","event_id":"ac'
        b'3ac95b-f97d-458c-a6e6-18981597e05f","created_at":"2022-07-13T20:30:59.037339943Z"'
        b',"data":{"type":"webhooks","id":"bc368e64-01aa-407e-b46e-3231809b1129"}}'
    ),
    body_sha256="f8a30ef448459544821935f882dbf53d90ad57874ade0a07272d7ca6fc97afe1",
    now=1767225600,
    status=200,
    publish=True,
)
A15 = Case(
    source_name="discord",
    source=source(DISCORD, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"),
    headers={
        "Content-Type": "application/json",
        "X-Signature-Ed25519": (
            "a1f780ec8bd338ffd6e197e1688f04707fda0a4214a1fad5f2484cfe62171e276d4232154fd092013874fe"
            "0f7447a4428ffcdfc75d989dfff66294ec7becee02"
        ),
        "X-Signature-Timestamp": "1767225600",
    },
    body=(
        b'{"application_id":"1100000000000000001","id":"1100000000000000002","token":"corpu'
        b's_interaction_token","type":1,"user":{"id":"1100000000000000003","username":"corp'
        b'us-user"},"version":1}'
    ),
    body_sha256="640e196a0875a11275ca62754ced114bb02e324657503354c63923c5d6104b1f",
    now=1767225601,
    status=200,
    publish=False,
    response_body=b'{"type":1}',
)
A16 = Case(
    source_name="sendgrid",
    source=source(
        SENDGRID,
        (
            "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRq"
            "e62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
        ),
    ),
    headers={
        "Content-Type": "application/json;charset=utf-8",
        "User-Agent": "SendGrid Event API",
        "X-Twilio-Email-Event-Webhook-Signature": (
            "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15"
            "TluLtEZtM="
        ),
        "X-Twilio-Email-Event-Webhook-Timestamp": "1600112502",
    },
    body=(
        b'[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address","sg_even'
        b't_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA","sg_message_id":"LRzX'
        b'l_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0","smtp-id"'
        b':"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>","timestamp":1600112492}'
        b"]\r\n"
    ),
    body_sha256="ef3e4606385ea6adbc55fceb6117cf2784040cf145a010e5ef4afc2bc7c70452",
    now=1600112512,
    status=200,
    publish=True,
)
A17 = Case(
    source_name="sendgrid",
    source=source(
        SENDGRID,
        (
            "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepx"
            "o7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA=="
        ),
    ),
    headers={
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": (
            "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxF"
            "DWYNH2j/0="
        ),
        "X-Twilio-Email-Event-Webhook-Timestamp": "1588788367",
    },
    body=b'{"category":"example_payload","event":"test_event","message_id":"message_id"}',
    body_sha256="eea38441e385d441f79d7ee2d875d19793e70ef3bbb439ca2431bb6d6ca4b475",
    now=1588788377,
    status=200,
    publish=True,
)
A19 = Case(
    source_name="mailgun",
    source=source(MAILGUN, "corpus-fake-mailgun-signing-key-0001", tolerance_seconds=900),
    headers={
        "Content-Type": "application/json",
    },
    body=(
        b'{\n  "signature": {\n    "token": "4f0d9b1c7e2a8d3f6b5c0e9a1d2f3b4c5d6e7f8091a2b3'
        b'c4d5",\n    "timestamp": "1767225600",\n'
        b'    "signature": "a36db7ef5e2607971a997a7cf0e2c32b914547e81e37721477f6eda7fc61180'
        b'9"\n  },\n  "event-data": {\n    "event": "delivered",\n'
        b'    "id": "CPgfbmQMTCKtHW6uIWtuVe",\n    "timestamp": 1767225598.5,\n'
        b'    "recipient": "alice@example.com",\n    "message": {\n'
        b'      "headers": {\n        "message-id": "20260101000000.1.ABCDEF@mg.example.com'
        b'"\n      }\n    }\n  }\n}'
    ),
    body_sha256="5297cf6f9e186be12388fe9acc6ab843e96603495e114c050a6048920804fe65",
    now=1767225620,
    status=200,
    publish=True,
)
A20 = Case(
    source_name="gitlab",
    source=source(GITLAB, "corpus-fake-gitlab-secret-token-0001"),
    headers={
        "Content-Type": "application/json",
        "X-Gitlab-Event": "Push Hook",
        "X-Gitlab-Token": "corpus-fake-gitlab-secret-token-0001",
        "X-Gitlab-Event-UUID": "7c2a6f2a-3c3f-4f5e-9d1c-000000000a20",
        "X-Gitlab-Instance": "https://gitlab.example.com",
        "Idempotency-Key": "4b1c7f5e-1f0a-4a8e-9d7e-000000000a20",
    },
    body=(
        b'{"object_kind":"push","event_name":"push","before":"00000000000000000000000000000'
        b'00000000000","after":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","ref":"refs/heads'
        b'/main","user_username":"jdoe","project":{"id":15,"path_with_namespace":"corpus/de'
        b'mo"},"commits":[],"total_commits_count":0}'
    ),
    body_sha256="7907003d93494d62dc72a86509fbdd4e3ac317a448865bd43b9c59021ff39f75",
    now=1767225600,
    status=200,
    publish=True,
)
A21 = Case(
    source_name="gitlab-signed",
    source=source(
        GITLAB,
        "whsec_MrDpeTx6XEeXCSGU3WhXbhH3DLcC/WcDR4mu33va1+M=",
        signing="standard-webhooks",
    ),
    headers={
        "Content-Type": "application/json",
        "X-Gitlab-Event": "Push Hook",
        "Idempotency-Key": "4b1c7f5e-1f0a-4a8e-9d7e-000000000a21",
        "webhook-id": "4b1c7f5e-1f0a-4a8e-9d7e-000000000a21",
        "webhook-timestamp": "1767225600",
        "webhook-signature": "v1,wrqFvy3gURQTDcijGbjgvOIT17iGPBZEfa85BMSbp4k=",
    },
    body=(
        b'{"object_kind":"push","event_name":"push","before":"00000000000000000000000000000'
        b'00000000000","after":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","ref":"refs/heads'
        b'/main","user_username":"jdoe","project":{"id":15,"path_with_namespace":"corpus/de'
        b'mo"},"commits":[],"total_commits_count":0}'
    ),
    body_sha256="7907003d93494d62dc72a86509fbdd4e3ac317a448865bd43b9c59021ff39f75",
    now=1767225605,
    status=200,
    publish=True,
)
A22 = Case(
    source_name="zoom",
    source=source(ZOOM, "corpus_fake_zoom_secret_token"),
    headers={
        "Content-Type": "application/json; charset=utf-8",
        "x-zm-request-timestamp": "1767225600",
        "x-zm-signature": "v0=fb297a53e2dbf894a3bc13e3182f60ae357578add75de35d5950a154b106b42e",
    },
    body=(
        b'{"event":"meeting.started","event_ts":1767225600000,"payload":{"account_id":"corp'
        b'usAcct01","object":{"id":"85712345678","uuid":"4444AAAiAAAAAiAiAiiAii==","host_id'
        b'":"corpusHost01","topic":"Weekly sync","type":2,"start_time":"2026-01-01T00:00:00'
        b'Z","timezone":"UTC","duration":30}}}'
    ),
    body_sha256="5d81ed3a183a412d285bca02d69d8cb0d2e0a76327ca4f95ba337623ad121a52",
    now=1767225602,
    status=200,
    publish=True,
)
A23 = Case(
    source_name="zoom",
    source=source(ZOOM, "corpus_fake_zoom_secret_token"),
    headers={
        "Content-Type": "application/json; charset=utf-8",
        "x-zm-request-timestamp": "1767225600",
        "x-zm-signature": "v0=7cd33b1d3a1d3a66f822222bec6aac7c44e146c433e07444b6450513c4309012",
    },
    body=(
        b'{"payload":{"plainToken":"corpusPlainToken_q8V0aZ"},"event_ts":1767225600000,"eve'
        b'nt":"endpoint.url_validation"}'
    ),
    body_sha256="7339095eed1842d72ff96ab2ac8c9c609429f9252cf76a69fb5d239e705f3ba0",
    now=1767225601,
    status=200,
    publish=False,
    response_body=(
        b'{"plainToken":"corpusPlainToken_q8V0aZ","encryptedToken":"d4a990610a9a773d0444047'
        b'26959f9420cba0e0a503043edf43a6ee5469b9e71"}'
    ),
)
A24 = Case(
    source_name="linear",
    source=source(LINEAR, "lin_wh_corpus_fake_secret_0001"),
    headers={
        "Content-Type": "application/json; charset=utf-8",
        "Linear-Delivery": "234d1a4e-0000-4000-8000-000000000a24",
        "Linear-Event": "Issue",
        "Linear-Signature": "52c691890df7c97b9605fcb5546d245c8ffd70858f1dee7bffa35166058e646d",
    },
    body=(
        b'{"action":"update","type":"Issue","createdAt":"2026-01-01T00:00:00.000Z","organiz'
        b'ationId":"0f3c2b1a-0000-4000-8000-000000000a24","url":"https://linear.app/corpus/'
        b'issue/COR-1","webhookId":"1c2d3e4f-0000-4000-8000-000000000a24","webhookTimestamp'
        b'":1767225600250,"data":{"id":"2a3b4c5d-0000-4000-8000-000000000a24","identifier":'
        b'"COR-1","title":"Fix login","priority":2},"updatedFrom":{"priority":3}}'
    ),
    body_sha256="4ed7459ff44bafb864dc8aa71f005385c03bfc3734b81d5c91466b0337f4d999",
    now=1767225610,
    status=200,
    publish=True,
)
A25 = Case(
    source_name="intercom",
    source=source(INTERCOM, "corpus_fake_intercom_client_secret"),
    headers={
        "Content-Type": "application/json",
        "User-Agent": "intercom-parrot-service-client/1.0",
        "X-Hub-Signature": "sha1=9d5e95ceb1c7e7599c9527fc4781573738a54fc5",
    },
    body=(
        b'{"type":"notification_event","app_id":"corpusapp","data":{"type":"notification_ev'
        b'ent_data","item":{"type":"conversation","id":"123456789","title":null,"state":"op'
        b'en"}},"id":"notif_corpus_a25","topic":"conversation.user.created","delivery_statu'
        b's":"pending","delivery_attempts":1,"created_at":1767225600,"first_sent_at":176722'
        b"5600}"
    ),
    body_sha256="d3df584f38a493ec359ca17997dd4df6ae713700728ff5409f3c51c320a35ba1",
    now=1767225600,
    status=200,
    publish=True,
)
A26 = Case(
    source_name="typeform",
    source=source(TYPEFORM, "corpus-fake-typeform-secret"),
    headers={
        "Content-Type": "application/json",
        "Typeform-Signature": "sha256=lM1ECRIH2+/M6KRcikNGicKUrKNlqxt1xMhpYayGaR8=",
    },
    body=(
        b'{"event_id":"01JCORPUSA26","event_type":"form_response","form_response":{"form_id'
        b'":"lT4Z3j","token":"a3a12ec67a1365927098a606107fac15","submitted_at":"2026-01-01T'
        b'00:00:00Z","answers":[{"type":"text","text":"Lorem ipsum","field":{"id":"fld1","t'
        b'ype":"short_text"}}]}}'
    ),
    body_sha256="66ea5550f1186a2bd7eec41fda55e129af18f6d3a968ad95cbcf9c6347e857d6",
    now=1767225600,
    status=200,
    publish=True,
)
B01 = Case(
    source_name="stripe",
    source=source(STRIPE, "whsec_corpusOnlyNotARealStripeSecret0001"),
    headers={
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": (
            "t=1767225600,v1=d333d4476785aa8d2c0edb507afe33b57da4bea5f843726ed0e0d6dc78c25f33"
        ),
    },
    body=(
        b'{\n  "id": "evt_corpus_B01",\n  "object": "event",\n'
        b'  "created": 1767225597,\n  "data": {\n    "object": {\n'
        b'      "id": "cs_corpus_B01",\n      "object": "checkout.session",\n'
        b'      "amount_total": 4999,\n      "customer_details": {\n'
        b'        "email": "jane.roe@example.com",\n'
        b'        "name": "Jane Roe"\n      }\n    }\n'
        b'  },\n  "type": "checkout.session.completed"\n'
        b"}\n"
    ),
    body_sha256="48288d22f45bd019116f841f688a03d6bb64711a2c2630d1bfd0b1924fe962ae",
    now=1767225605,
    status=200,
    publish=True,
)
B03 = Case(
    source_name="github",
    source=source(GITHUB, "corpus-fake-github-webhook-secret"),
    headers={
        "Content-Type": "application/json",
        "X-GitHub-Event": "sponsorship",
        "X-GitHub-Delivery": "00000000-0000-4000-8000-0000000000b3",
        "X-Hub-Signature-256": (
            "sha256=74f95e93262d697e48395be0b46291cf7d7c24448893bf0a571c2cd771cdcfb2"
        ),
    },
    body=(
        '{"action":"created","sponsorship":{"tier":{"name":"\U0001f680 Rocket tier","descri'
        'ption":"Thanks\u2026 a lot \u2014 \xa1gracias!"},"sponsor":{"login":"example-spons'
        'or"}}}'
    ).encode(),
    body_sha256="ab7e2ae3576e5ea82df05a45dc4da92ff00d13287677b9ab5dbca983f8838576",
    now=1767225600,
    status=200,
    publish=True,
)
B05 = Case(
    source_name="slack",
    source=source(SLACK, "corpus_fake_slack_signing_secret_b05"),
    headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": "1767225600",
        "X-Slack-Signature": "v0=f50d26d144e6ce8dcdc9c937f1fe4fc1932f9e855f1274bd7b535518ccd5550f",
    },
    body=(
        b"token=corpusVerificationTok&team_id=T0CORPUS1&team_domain=corpus&channel_id=C0COR"
        b"PUS1&channel_name=deploys&user_id=U0CORPUS1&user_name=jdoe&command=%2Fdeploy&text"
        b"=api+production+--force&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT"
        b"0CORPUS1%2F1%2Fabc&trigger_id=1.2.3"
    ),
    body_sha256="cd07a4a84b65591802fe87907b3782fbddc6de4355b7abe2005b70309ccd954b",
    now=1767225603,
    status=200,
    publish=True,
)
B07 = Case(
    source_name="twilio",
    source=source(
        TWILIO,
        "corpus_fake_twilio_auth_token_01",
        public_url="https://hooks.example.com/twilio/sms",
    ),
    headers={
        "Host": "10.0.0.5:8080",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "hooks.example.com",
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": "71Jk2kE++oxBXuEIC/EjKR1QVXE=",
    },
    body=(
        b"AccountSid=AC00000000000000000000000000000001&Body=Hello+from+the+corpus&From=%2B"
        b"15005550006&MessageSid=SM00000000000000000000000000000007&NumMedia=0&To=%2B150055"
        b"50001"
    ),
    body_sha256="8296d5354741f67f617d8985898ff1341a8193509a11f47af1862183df0799a0",
    now=1767225600,
    status=200,
    publish=True,
)
B08 = Case(
    source_name="twilio",
    source=source(
        TWILIO,
        "corpus_fake_twilio_auth_token_01",
        public_url=(
            "https://hooks.example.com/twilio/events?bodySHA256=5b7d771205f9d86acd27a221e358d4d4e88"
            "9d61e78ff701abda74faa980cbd60"
        ),
    ),
    headers={
        "Content-Type": "application/json",
        "X-Twilio-Signature": "G3e7vWkOFC+mcUZmhvnfSlHzcAQ=",
    },
    body=b'{"event":"message.delivered","sid":"SM99999999999999999999999999999999"}',
    body_sha256="fc362dbb24fa12dacdf30b0d1804c7275761716843d6a2f208468188a7963057",
    now=1767225600,
    status=403,
    publish=False,
    error="body_hash_mismatch",
)
B11 = Case(
    source_name="stripe",
    source=source(STRIPE, "whsec_corpusNewSecretAfterRoll000002"),
    headers={
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": (
            "t=1767225600,v1=d97979a0ae785cb199ac5f1d002caa0b571669bef599abc3da6103264df83d95,"
            "v1=a4e9a2285d53ec047c0a4912c8ac6f05aa918879c070d30fd4b6ad306a735f90,"
            "v0=abababababababababababababababababababababababababababababababab"
        ),
    },
    body=(
        b'{\n  "id": "evt_corpus_B11",\n  "object": "event",\n'
        b'  "type": "invoice.paid",\n  "created": 1767225600,\n'
        b'  "data": {\n    "object": {\n      "id": "in_corpus_B11",\n'
        b'      "object": "invoice",\n      "amount_paid": 1500\n'
        b"    }\n  }\n}\n"
    ),
    body_sha256="fdff37683b105d77621c6d01f3e243b1c3bba32b00005aa96b98477cf4f5ee02",
    now=1767225612,
    status=200,
    publish=True,
)
B12 = Case(
    source_name="stripe",
    source=source(STRIPE, "whsec_corpusOnlyNotARealStripeSecret0001"),
    headers={
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": (
            "t=1767225600,v1=f7c2736ae88d67099886bed714f41b8f161ba69ce4c52008ffc42e277d78bbb5"
        ),
    },
    body=(
        b'{\n  "id": "evt_corpus_B12",\n  "object": "event",\n'
        b'  "type": "charge.refunded",\n  "created": 1767225600\n'
        b"}\n"
    ),
    body_sha256="7204efe74b9dbcd44d9ed375271041d13bd79eeebb405d188a49cc1014b8e1c1",
    now=1767226020,
    status=401,
    publish=False,
    error="timestamp_outside_tolerance",
)
B14 = Case(
    source_name="slack",
    source=source(SLACK, "corpus_fake_slack_signing_secret_b05"),
    headers={
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": "1767225600",
        "X-Slack-Signature": "v0=ef0e4d303247e910ea71d1c0ec680478d42667c90689d3b438ca0856ecf330d2",
        "X-Slack-Retry-Num": "1",
        "X-Slack-Retry-Reason": "http_timeout",
    },
    body=(
        b'{"token":"corpusVerificationTok","team_id":"T0CORPUS1","api_app_id":"A0CORPUS1","'
        b'event":{"type":"app_mention","user":"U0CORPUS1","text":"<@U0BOT> deploy","ts":"17'
        b'67225590.000100","channel":"C0CORPUS1","event_ts":"1767225590.000100"},"type":"ev'
        b'ent_callback","event_id":"Ev0CORPUSB14","event_time":1767225590}'
    ),
    body_sha256="67cd449a8fc71eafe90cfd40c9d24bfa7127a98cb658c2a727287ecbfce002e5",
    now=1767225601,
    status=200,
    publish=False,
    seen_event_ids=("Ev0CORPUSB14",),
)
B16 = Case(
    source_name="stripe",
    source=source(STRIPE, "whsec_corpusOnlyNotARealStripeSecret0001"),
    headers={
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": (
            "t=1767225602,v1=760c0f3887ffb1b3f7a44557348b0686082ad2f8b771ea944ae8223102d0a5ec"
        ),
    },
    body=(
        b'{\n  "id": "evt_corpus_B16_created",\n  "object": "event",\n'
        b'  "type": "customer.subscription.created",\n'
        b'  "created": 1767225599,\n  "data": {\n    "object": {\n'
        b'      "id": "sub_corpus_B16",\n      "object": "subscription",\n'
        b'      "status": "incomplete"\n    }\n  }\n'
        b"}\n"
    ),
    body_sha256="cb56f8a11f25ca36f6d7d17575a19efaeac3e4e4d908c46ea511f3c277f7ee60",
    now=1767225603,
    status=200,
    publish=True,
    seen_event_ids=("evt_corpus_B16_updated",),
    routed_key=b"sub_corpus_B16",
)
B17 = Case(
    source_name="github",
    source=source(GITHUB, "corpus-fake-github-webhook-secret"),
    headers={
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "00000000-0000-4000-8000-0000000000b7",
        "X-Hub-Signature-256": (
            "sha256=779410626d23dd402d47310bf5d5879041b948311e7569514435693e1b7f78d9"
        ),
    },
    body=large_push_body(),
    body_sha256="15bef01644cdc42c51b2303201454e3cb2e0e36ccafe4ef4958b9a430478a083",
    now=1767225600,
    status=200,
    publish=True,
)
B18 = Case(
    source_name="github",
    source=source(GITHUB, "corpus-fake-github-webhook-secret"),
    headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": "00000000-0000-4000-8000-0000000000b8",
        "X-Hub-Signature-256": (
            "sha256=ab2508b54b1687cf1cc4d8c265ea67574139b4650b3f4fdf4b78825d16cacffa"
        ),
    },
    body=(
        b"payload=%7B%22zen%22%3A%22Keep+it+logically+awesome.%22%2C%22hook_id%22%3A1234567"
        b"8%2C%22hook%22%3A%7B%22type%22%3A%22Repository%22%2C%22config%22%3A%7B%22content_"
        b"type%22%3A%22form%22%7D%7D%2C%22repository%22%3A%7B%22full_name%22%3A%22corpus%2F"
        b"demo%22%7D%7D"
    ),
    body_sha256="eaa0edec8d508f52a10a94203d6f8a9f2c376a2b2caaa8736b5206882bb9fb0d",
    now=1767225600,
    status=200,
    publish=True,
)
B21 = Case(
    source_name="standard-webhooks",
    source=source(STANDARD_WEBHOOKS, "whsec_s1QDL/b14CNcyx0Y+tD9K8Le41elz3QosxqwE39kGFg="),
    headers={
        "webhook-id": "msg_corpusB21empty",
        "webhook-timestamp": "1767225600",
        "webhook-signature": "v1,KJtCdRfmrLcKnAOoBSI43KhHFOxArbsp26VDXhr0mEY=",
    },
    body=b"",
    body_sha256="e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    now=1767225601,
    status=200,
    publish=True,
)
B24 = Case(
    source_name="stripe",
    source=source(STRIPE, "whsec_corpusOnlyNotARealStripeSecret0001"),
    headers={
        "Content-Type": "application/json; charset=utf-8",
        "Via": "1.1 abcdef.cloudfront.net (CloudFront)",
        "X-Amz-Cf-Id": "corpusCfId==",
    },
    body=(
        b'{\n  "id": "evt_corpus_B24",\n  "object": "event",\n'
        b'  "type": "invoice.created",\n  "created": 1767225600\n'
        b"}\n"
    ),
    body_sha256="04239d605d8addd14f8820497ecd6e45deaf303669b1cbec1e5236457d591589",
    now=1767225600,
    status=401,
    publish=False,
    error="missing_header",
)

CASES = [
    pytest.param(A01, id="A01-github-docs-example"),
    pytest.param(A02, id="A02-stripe-constructed"),
    pytest.param(A03, id="A03-shopify-constructed"),
    pytest.param(A04, id="A04-slack-docs-example"),
    pytest.param(A05, id="A05-standard-webhooks-library-vector"),
    pytest.param(A07, id="A07-svix-branded-multi-signature"),
    pytest.param(A08, id="A08-twilio-form-sdk-vector"),
    pytest.param(A09, id="A09-twilio-json-bodysha256-sdk-vector"),
    pytest.param(A11, id="A11-paddle-sdk-rotation-vector"),
    pytest.param(A13, id="A13-square-sdk-vector"),
    pytest.param(A15, id="A15-discord-ping-constructed"),
    pytest.param(A16, id="A16-sendgrid-sdk-vector-crlf"),
    pytest.param(A17, id="A17-sendgrid-node-sdk-vector"),
    pytest.param(A19, id="A19-mailgun-constructed"),
    pytest.param(A20, id="A20-gitlab-secret-token"),
    pytest.param(A21, id="A21-gitlab-signing-token-standard-webhooks"),
    pytest.param(A22, id="A22-zoom-event-constructed"),
    pytest.param(A23, id="A23-zoom-url-validation-constructed"),
    pytest.param(A24, id="A24-linear-constructed"),
    pytest.param(A25, id="A25-intercom-constructed"),
    pytest.param(A26, id="A26-typeform-constructed"),
    pytest.param(B01, id="B01-stripe-body-reserialized-by-framework"),
    pytest.param(B03, id="B03-github-emoji-utf8-body"),
    pytest.param(B05, id="B05-slack-slash-command-plus-encoding"),
    pytest.param(B07, id="B07-twilio-tls-terminating-proxy"),
    pytest.param(B08, id="B08-twilio-json-body-swapped"),
    pytest.param(B11, id="B11-stripe-rolling-secret-two-v1"),
    pytest.param(B12, id="B12-stripe-timestamp-too-old"),
    pytest.param(B14, id="B14-slack-retry-duplicate-event"),
    pytest.param(B16, id="B16-stripe-out-of-order-subscription-events"),
    pytest.param(B17, id="B17-github-large-push-payload"),
    pytest.param(B18, id="B18-github-form-urlencoded-payload"),
    pytest.param(B21, id="B21-standard-webhooks-empty-body"),
    pytest.param(B24, id="B24-stripe-signature-header-stripped-by-cdn"),
]

RULES = parse_rules(
    {"route": []},
    Path("routes.toml"),
    default_topic_template="events.{source}",
    unrouted_topic="test.unrouted",
)


def post(case: Case, repeat: int = 1) -> tuple[list[Any], RecordingProducer]:
    """POST CASE REPEAT times to an application with only its source and its clock."""
    config = parse_config(
        {
            "kafka": {"raw_topic": RAW_TOPIC, "rejected_topic": REJECTED_TOPIC},
            "sources": {case.source_name: case.source},
        }
    )
    producer = RecordingProducer()
    app = create_app(config, producer=producer, clock=lambda: case.now)
    with TestClient(app) as client:
        responses = [
            client.post(f"/webhooks/{case.source_name}", content=case.body, headers=case.headers)
            for _ in range(repeat)
        ]
    return responses, producer


def route(case: Case, record: Record) -> list[OutboundRecord]:
    """Run RECORD through a router whose table already has CASE's seen event ids."""
    first_received = SeenEntry(case.now - 1, partition=0).encode()
    table = {
        f"{case.source_name}:{event_id}".encode(): first_received
        for event_id in case.seen_event_ids
    }
    deduplicator = Deduplicator(table, DEDUPE_WINDOW_SECONDS, clock=lambda: case.now)
    router = Router(RULES, deduplicator, "test.deadletter", CHANGELOG_TOPIC)

    outbound = router.process(record.key, record.value, list(record.headers.items()), 0)
    return [item for item in outbound if item.topic != CHANGELOG_TOPIC]


@pytest.mark.parametrize("case", CASES)
def test_corpus_body_intact(case):
    # The SHA-256 published with each case catches a copy error in the literals.
    assert hashlib.sha256(case.body).hexdigest() == case.body_sha256


@pytest.mark.parametrize("case", CASES)
def test_corpus_case_through_app(case):
    [response], producer = post(case)

    assert response.status_code == case.status
    if case.error is not None:
        assert response.json()["error"] == case.error
    if case.response_body is not None:
        assert response.content == case.response_body
    raw = producer.on(RAW_TOPIC)
    if not case.produced:
        assert raw == []
        return
    assert "receipt_id" in response.json()
    [record] = raw
    assert record.value == case.body


@pytest.mark.parametrize("case", CASES)
def test_corpus_case_published(case):
    _, producer = post(case)

    routed = [item for record in producer.on(RAW_TOPIC) for item in route(case, record)]

    assert bool(routed) == case.publish
    assert all(item.value == case.body for item in routed)
    if case.routed_key is not None:
        assert [item.key for item in routed] == [case.routed_key]


def test_corpus_a19_replayed_token_rejected():
    # Mailgun signs only timestamp and token, so a second use of a token is a replay.
    responses, producer = post(A19, repeat=2)

    assert [response.status_code for response in responses] == [200, 401]
    assert responses[1].json()["error"] == "replayed_token"
    assert len(producer.on(RAW_TOPIC)) == 1
