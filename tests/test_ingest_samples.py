"""Unit tests of the signing helpers and the signed sample builder."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from hookline.config import SourceConfig
from hookline.errors import ConfigError, VerificationError
from ingest.samples import REPOSITORY_SAMPLES, build_sample, sample_path
from ingest.schemes import create_verifier
from ingest.signing import github_headers, standard_webhooks_headers, stripe_headers

NOW = 1767225600
SOURCES = {
    "stripe": SourceConfig(
        name="payments", scheme="stripe", secrets=("whsec_test_only_sample_stripe",)
    ),
    "github": SourceConfig(name="code", scheme="github", secrets=("test-only-sample-github",)),
    "standard-webhooks": SourceConfig(
        name="billing",
        scheme="standard-webhooks",
        secrets=("whsec_dGVzdC1vbmx5LXNhbXBsZS1zdGFuZGFyZA==",),
    ),
}


def test_signing_stripe_matches_published_vector():
    # Case A02: the header Stripe would send for this body, secret and time.
    body = (
        b'{\n  "id": "evt_corpus_A02",\n  "object": "event",\n  "api_version": "2024-06-20",\n'
        b'  "created": 1767225598,\n  "data": {\n    "object": {\n      "id": "pi_corpus_A02",\n'
        b'      "object": "payment_intent",\n      "amount": 2000,\n      "currency": "usd",\n'
        b'      "status": "succeeded"\n    }\n  },\n  "livemode": false,\n'
        b'  "pending_webhooks": 1,\n  "type": "payment_intent.succeeded"\n}\n'
    )

    headers = stripe_headers("whsec_corpusOnlyNotARealStripeSecret0001", body, 1767225600)

    assert headers == {
        "Stripe-Signature": (
            "t=1767225600,v1=8808eb7ba7268cee12ddd9a3c673de4c624611636d9f1d1237e8a55f5f29ae4e"
        )
    }


def test_signing_github_matches_docs_example():
    headers = github_headers("It's a Secret to Everybody", b"Hello, World!")

    assert headers == {
        "X-Hub-Signature-256": (
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        )
    }


@pytest.mark.parametrize("prefix", ["webhook", "svix"])
def test_signing_standard_matches_library_vector(prefix):
    headers = standard_webhooks_headers(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        b'{"test": 2432232314}',
        1614265330,
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        prefix=prefix,
    )

    assert headers == {
        f"{prefix}-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        f"{prefix}-timestamp": "1614265330",
        f"{prefix}-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }


@pytest.mark.parametrize("scheme", sorted(SOURCES))
def test_sample_verifies_with_its_scheme(scheme):
    source = SOURCES[scheme]

    headers, body = build_sample(source, now=NOW)

    create_verifier(source).verify(headers, body, now=NOW)


OTHER_SECRETS = {
    "stripe": "whsec_test_only_other_stripe",
    "github": "test-only-other-github",
    "standard-webhooks": "whsec_b3RoZXItdGVzdC1vbmx5LWtleQ==",
}


@pytest.mark.parametrize("scheme", sorted(SOURCES))
def test_sample_rejected_with_other_secret(scheme):
    source = SOURCES[scheme]
    other = SourceConfig(name=source.name, scheme=scheme, secrets=(OTHER_SECRETS[scheme],))

    headers, body = build_sample(source, now=NOW)

    with pytest.raises(VerificationError) as caught:
        create_verifier(other).verify(headers, body, now=NOW)
    assert caught.value.reason == "no_matching_signature"


def test_sample_stripe_shape():
    headers, body = build_sample(SOURCES["stripe"], now=NOW)
    event = json.loads(body)

    assert body == (json.dumps(event, indent=2) + "\n").encode()
    assert body.startswith(b'{\n  "id": "evt_')
    assert event["type"] == "payment_intent.succeeded"
    assert event["created"] == NOW
    assert event["data"]["object"]["object"] == "payment_intent"
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["Stripe-Signature"].startswith(f"t={NOW},v1=")


def test_sample_github_shape():
    headers, body = build_sample(SOURCES["github"], now=NOW)
    event = json.loads(body)

    assert headers["X-GitHub-Event"] == "push"
    assert uuid.UUID(headers["X-GitHub-Delivery"])
    assert headers["X-Hub-Signature-256"].startswith("sha256=")
    assert event["ref"] == "refs/heads/main"
    assert event["head_commit"]["id"] == event["after"]
    assert b"\n" not in body


def test_sample_standard_webhooks_shape():
    headers, body = build_sample(SOURCES["standard-webhooks"], now=NOW)
    event = json.loads(body)

    assert event["type"] == "invoice.paid"
    assert event["timestamp"].startswith("2026-01-01T00:00:00")
    assert headers["webhook-id"].startswith("msg_")
    assert headers["webhook-timestamp"] == str(NOW)


@pytest.mark.parametrize("scheme", sorted(SOURCES))
def test_sample_fresh_event_id_each_call(scheme):
    source = SOURCES[scheme]
    id_of = {
        "stripe": lambda headers, body: json.loads(body)["id"],
        "github": lambda headers, body: headers["X-GitHub-Delivery"],
        "standard-webhooks": lambda headers, body: headers["webhook-id"],
    }[scheme]

    ids = {id_of(*build_sample(source, now=NOW)) for _ in range(20)}

    assert len(ids) == 20


def test_sample_default_clock_is_now():
    headers, _ = build_sample(SOURCES["stripe"])
    timestamp = int(headers["Stripe-Signature"].split(",")[0].removeprefix("t="))

    assert abs(timestamp - time.time()) < 60


def test_sample_unknown_scheme_is_config_error():
    source = SourceConfig(name="legacy", scheme="no-such-scheme", secrets=("x",))

    with pytest.raises(ConfigError, match="no-such-scheme"):
        build_sample(source)


def test_sample_without_secret_is_config_error():
    source = SourceConfig(name="shop", scheme="stripe")

    with pytest.raises(ConfigError, match="no secret"):
        build_sample(source)


def test_sample_files_in_repository():
    for name in (
        "stripe_payment_intent_succeeded.json",
        "github_push.json",
        "standard_webhooks_invoice_paid.json",
    ):
        path = sample_path(name)
        assert path.resolve() == (REPOSITORY_SAMPLES / name).resolve()
        assert isinstance(json.loads(path.read_text()), dict)


def test_sample_stripe_file_pretty_printed():
    text = (REPOSITORY_SAMPLES / "stripe_payment_intent_succeeded.json").read_text()

    assert text == json.dumps(json.loads(text), indent=2) + "\n"
