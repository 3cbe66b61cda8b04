"""Signed sample webhooks, for `hookline send-sample` and tests.

The payloads are JSON files in the repository's `samples/` folder. Each call
to `build_sample` gives a new event id, so repeated sends are distinct events
to the router's deduplication.
"""

from __future__ import annotations

import json
import secrets
import string
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from hookline.config import SourceConfig
from hookline.errors import ConfigError
from ingest.schemes.discord import decode_public_key as decode_discord_key
from ingest.schemes.gitlab import STANDARD_WEBHOOKS as GITLAB_SIGNING_TOKEN
from ingest.schemes.sendgrid import decode_public_key as decode_sendgrid_key
from ingest.signing import (
    basic_auth_headers,
    discord_headers,
    discord_public_key,
    generic_hmac_headers,
    github_headers,
    hub_sha1_headers,
    linear_headers,
    mailgun_signature_block,
    new_sendgrid_private_key,
    paddle_headers,
    sendgrid_headers,
    sendgrid_public_key,
    shopify_headers,
    slack_headers,
    square_headers,
    standard_webhooks_headers,
    stripe_headers,
    token_headers,
    twilio_headers,
    typeform_headers,
    zoom_headers,
)

# `ingest/sample_payloads` is a symbolic link to the repository's `samples/`
# folder, so the payloads are package data of `ingest` when it is installed.
PACKAGED_SAMPLES = "sample_payloads"
REPOSITORY_SAMPLES = Path(__file__).resolve().parents[1] / "samples"

STRIPE_SAMPLE = "stripe_payment_intent_succeeded.json"
GITHUB_SAMPLE = "github_push.json"
STANDARD_WEBHOOKS_SAMPLE = "standard_webhooks_invoice_paid.json"
TWILIO_SAMPLE = "twilio_message_received.json"
SQUARE_SAMPLE = "square_payment_updated.json"
DISCORD_SAMPLE = "discord_application_authorized.json"
SENDGRID_SAMPLE = "sendgrid_events.json"
MAILGUN_SAMPLE = "mailgun_delivered.json"
SHOPIFY_SAMPLE = "shopify_orders_create.json"
SLACK_SAMPLE = "slack_app_mention.json"
ZOOM_SAMPLE = "zoom_meeting_started.json"
LINEAR_SAMPLE = "linear_issue_update.json"
INTERCOM_SAMPLE = "intercom_conversation_created.json"
TYPEFORM_SAMPLE = "typeform_form_response.json"
PADDLE_SAMPLE = "paddle_transaction_completed.json"
GITLAB_SAMPLE = "gitlab_push.json"
GENERIC_SAMPLE = "generic_event.json"

# Option of a discord or sendgrid source with the private key that signs its
# samples. Its secrets are public keys, which cannot sign.
SAMPLE_PRIVATE_KEY_OPTION = "sample_private_key"

_ID_ALPHABET = string.ascii_letters + string.digits


def sample_path(name: str) -> Path:
    """Return the path of the sample payload file NAME.

    Looks first in the `ingest/sample_payloads` package data, then in the
    `samples/` folder of a source checkout, for checkouts where the symbolic
    link is a plain file (Git on Windows without symlink support).

    Raises:
        ConfigError: when the file is in neither place.
    """
    packaged = resources.files("ingest").joinpath(PACKAGED_SAMPLES, name)
    if isinstance(packaged, Path) and packaged.is_file():
        return packaged
    checkout = REPOSITORY_SAMPLES / name
    if checkout.is_file():
        return checkout
    raise ConfigError(
        f"sample payload {name} not found in ingest/{PACKAGED_SAMPLES} or {REPOSITORY_SAMPLES}; "
        "run from a source checkout or install the package with its sample payloads"
    )


def load_sample(name: str) -> Any:
    """Return the parsed JSON of the sample payload file NAME."""
    return json.loads(sample_path(name).read_text(encoding="utf-8"))


def _random_id(length: int) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def _compact_json(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def stripe_sample(secret: str, now: int) -> tuple[dict[str, str], bytes]:
    """Return headers and body of a signed Stripe `payment_intent.succeeded` event."""
    event = load_sample(STRIPE_SAMPLE)
    event["id"] = f"evt_{_random_id(24)}"
    event["created"] = now
    event["data"]["object"]["id"] = f"pi_{_random_id(24)}"
    # Stripe sends events pretty-printed with a 2-space indent and a final newline.
    body = (json.dumps(event, indent=2) + "\n").encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        **stripe_headers(secret, body, now),
    }
    return headers, body


def github_sample(secret: str, now: int) -> tuple[dict[str, str], bytes]:
    """Return headers and body of a signed GitHub `push` event."""
    event = load_sample(GITHUB_SAMPLE)
    commit_id = secrets.token_hex(20)
    event["after"] = commit_id
    event["commits"][0]["id"] = commit_id
    event["head_commit"]["id"] = commit_id
    event["repository"]["pushed_at"] = now
    body = _compact_json(event)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/7f3c2a1",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "512345678",
        "X-GitHub-Hook-Installation-Target-Type": "repository",
        "X-GitHub-Hook-Installation-Target-ID": str(event["repository"]["id"]),
        **github_headers(secret, body),
    }
    return headers, body


def standard_webhooks_sample(secret: str, now: int) -> tuple[dict[str, str], bytes]:
    """Return headers and body of a signed Standard Webhooks `invoice.paid` event."""
    event = load_sample(STANDARD_WEBHOOKS_SAMPLE)
    event["timestamp"] = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    body = _compact_json(event)
    message_id = f"msg_{_random_id(27)}"
    headers = {
        "Content-Type": "application/json",
        **standard_webhooks_headers(secret, body, now, message_id),
    }
    return headers, body


def _upper_id(length: int) -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(length))


def shopify_sample(secret: str, now: int) -> tuple[dict[str, str], bytes]:
    """Return headers and body of a signed Shopify `orders/create` webhook."""
    order = load_sample(SHOPIFY_SAMPLE)
    order["id"] = secrets.randbelow(9 * 10**12) + 10**12
    order["admin_graphql_api_id"] = f"gid://shopify/Order/{order['id']}"
    order["created_at"] = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    body = _compact_json(order)
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Shop-Domain": "hookline-sample.myshopify.com",
        "X-Shopify-API-Version": "2025-10",
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": _iso_time(now) + "Z",
        **shopify_headers(secret, body),
    }
    return headers, body


def slack_sample(secret: str, now: int) -> tuple[dict[str, str], bytes]:
    """Return headers and body of a signed Slack Events API `app_mention` event."""
    envelope = load_sample(SLACK_SAMPLE)
    envelope["event_id"] = f"Ev{_upper_id(11)}"
    envelope["event_time"] = now
    envelope["event"]["ts"] = envelope["event"]["event_ts"] = f"{now}.000100"
    body = _compact_json(envelope)
    headers = {"Content-Type": "application/json", **slack_headers(secret, body, now)}
    return headers, body


def zoom_sample(secret: str, now: int) -> tuple[dict[str, str], bytes]:
    """Return headers and body of a signed Zoom `meeting.started` event.

    Zoom events carry no event id, so each call gives a new meeting UUID.
    """
    event = load_sample(ZOOM_SAMPLE)
    event["event_ts"] = now * 1000
    event["payload"]["object"]["uuid"] = f"{_random_id(22)}=="
    body = _compact_json(event)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        **zoom_headers(secret, body, now),
    }
    return headers, body


def linear_sample(secret: str, now: int) -> tuple[dict[str, str], bytes]:
    """Return headers and body of a signed Linear `Issue` update, stamped NOW in the body."""
    event = load_sample(LINEAR_SAMPLE)
    event["webhookTimestamp"] = now * 1000
    event["createdAt"] = _iso_time(now)[:-3] + "Z"
    event["data"]["id"] = str(uuid.uuid4())
    body = _compact_json(event)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Linear-Delivery": str(uuid.uuid4()),
        "Linear-Event": "Issue",
        **linear_headers(secret, body),
    }
    return headers, body


def intercom_sample(secret: str, now: int) -> tuple[dict[str, str], bytes]:
    """Return headers and body of a signed Intercom `conversation.user.created` notification."""
    notification = load_sample(INTERCOM_SAMPLE)
    notification["id"] = f"notif_{uuid.uuid4()}"
    notification["created_at"] = notification["first_sent_at"] = now
    body = _compact_json(notification)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "intercom-parrot-service-client/1.0",
        **hub_sha1_headers(secret, body),
    }
    return headers, body


def typeform_sample(secret: str, now: int) -> tuple[dict[str, str], bytes]:
    """Return headers and body of a signed Typeform `form_response` event."""
    event = load_sample(TYPEFORM_SAMPLE)
    event["event_id"] = _upper_id(26)
    event["form_response"]["token"] = secrets.token_hex(16)
    event["form_response"]["submitted_at"] = _iso_time(now)[:-7] + "Z"
    body = _compact_json(event)
    headers = {"Content-Type": "application/json", **typeform_headers(secret, body)}
    return headers, body


def paddle_sample(secret: str, now: int) -> tuple[dict[str, str], bytes]:
    """Return headers and body of a signed Paddle Billing `transaction.completed` event."""
    event = load_sample(PADDLE_SAMPLE)
    event["event_id"] = f"evt_01{_random_id(24).lower()}"
    event["notification_id"] = f"ntf_01{_random_id(24).lower()}"
    event["occurred_at"] = _iso_time(now) + "Z"
    body = _compact_json(event)
    headers = {"Content-Type": "application/json", **paddle_headers(secret, body, now)}
    return headers, body


def basic_auth_sample(secret: str, now: int) -> tuple[dict[str, str], bytes]:
    """Return headers and body of a generic event sent with HTTP basic auth `user:password`."""
    body = _generic_event(now)
    return {"Content-Type": "application/json", **basic_auth_headers(secret)}, body


def _generic_event(now: int) -> bytes:
    event = load_sample(GENERIC_SAMPLE)
    event["id"] = f"evt_{_random_id(24)}"
    event["created_at"] = _iso_time(now)[:-7] + "Z"
    return _compact_json(event)


_BUILDERS = {
    "stripe": stripe_sample,
    "github": github_sample,
    "standard-webhooks": standard_webhooks_sample,
    "shopify": shopify_sample,
    "slack": slack_sample,
    "zoom": zoom_sample,
    "linear": linear_sample,
    "intercom": intercom_sample,
    "typeform": typeform_sample,
    "paddle": paddle_sample,
    "basic-auth": basic_auth_sample,
}


def _required_option(source: SourceConfig, option: str) -> str:
    value = source.options.get(option)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"source {source.name!r} needs the option {option} to build a {source.scheme} sample"
        )
    return value


def _iso_time(now: int) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _trusts(source: SourceConfig, public_key: bytes, decode: Callable[[str], bytes]) -> bool:
    """Return True when PUBLIC_KEY is among the public keys in SOURCE's secrets.

    When it is not, as after `send-sample --forge` replaced the secrets, the
    caller signs with a new random key, so that ingest rejects the sample.
    """
    for secret in source.secrets:
        try:
            if decode(secret) == public_key:
                return True
        except ConfigError:
            continue
    return False


def twilio_sample(source: SourceConfig, now: int) -> tuple[dict[str, str], bytes]:
    """Return headers and form body of a signed Twilio incoming-message webhook."""
    parameters = load_sample(TWILIO_SAMPLE)
    message_sid = f"SM{secrets.token_hex(16)}"
    for name in ("MessageSid", "SmsMessageSid", "SmsSid"):
        parameters[name] = message_sid
    body = urlencode(parameters).encode()
    url = _required_option(source, "public_url")
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "TwilioProxy/1.1",
        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        **twilio_headers(source.secrets[0], url, body),
    }
    return headers, body


def square_sample(source: SourceConfig, now: int) -> tuple[dict[str, str], bytes]:
    """Return headers and body of a signed Square `payment.updated` event."""
    event = load_sample(SQUARE_SAMPLE)
    event["event_id"] = str(uuid.uuid4())
    event["created_at"] = _iso_time(now)[:-3] + "Z"
    payment = event["data"]["object"]["payment"]
    payment["id"] = event["data"]["id"] = _random_id(29)
    payment["updated_at"] = event["created_at"]
    body = _compact_json(event)
    url = _required_option(source, "public_url")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Square Connect v2",
        "Square-Initial-Delivery-Timestamp": event["created_at"],
        **square_headers(source.secrets[0], url, body),
    }
    return headers, body


def discord_sample(source: SourceConfig, now: int) -> tuple[dict[str, str], bytes]:
    """Return headers and body of a signed Discord `APPLICATION_AUTHORIZED` webhook event.

    Discord webhook events carry no event id, so each call gives a new user id.
    """
    event = load_sample(DISCORD_SAMPLE)
    event["event"]["timestamp"] = _iso_time(now)
    event["event"]["data"]["user"]["id"] = str(secrets.randbelow(9 * 10**18) + 10**18)
    body = _compact_json(event)
    private_key = _required_option(source, SAMPLE_PRIVATE_KEY_OPTION)
    if not _trusts(source, discord_public_key(private_key), decode_discord_key):
        private_key = secrets.token_hex(32)
    headers = {
        "Content-Type": "application/json",
        **discord_headers(private_key, body, now),
    }
    return headers, body


def sendgrid_sample(source: SourceConfig, now: int) -> tuple[dict[str, str], bytes]:
    """Return headers and body of a signed SendGrid Event Webhook batch of two events."""
    events = load_sample(SENDGRID_SAMPLE)
    message_id = f"{_random_id(22)}.filterdrecv-{_random_id(8)}"
    for offset, event in enumerate(events):
        event["timestamp"] = now + offset
        event["sg_event_id"] = _random_id(48)
        event["sg_message_id"] = message_id
    # SendGrid separates events with ",\r\n" and ends the body with "\r\n".
    body = (
        "[" + ",\r\n".join(_compact_json(event).decode() for event in events) + "]\r\n"
    ).encode()
    private_key = _required_option(source, SAMPLE_PRIVATE_KEY_OPTION)
    if not _trusts(source, sendgrid_public_key(private_key), decode_sendgrid_key):
        private_key = new_sendgrid_private_key()
    headers = {
        "Content-Type": "application/json;charset=utf-8",
        "User-Agent": "SendGrid Event API",
        **sendgrid_headers(private_key, body, now),
    }
    return headers, body


def mailgun_sample(source: SourceConfig, now: int) -> tuple[dict[str, str], bytes]:
    """Return headers and body of a signed Mailgun `delivered` event.

    The signature object is in the body, with a new 50-character token per call.
    """
    document = load_sample(MAILGUN_SAMPLE)
    document["signature"] = mailgun_signature_block(source.secrets[0], now, secrets.token_hex(25))
    document["event-data"]["id"] = _random_id(22)
    document["event-data"]["timestamp"] = float(now)
    body = _compact_json(document)
    headers = {"Content-Type": "application/json", "User-Agent": "mailgun/treq-16.12.0"}
    return headers, body


def gitlab_sample(source: SourceConfig, now: int) -> tuple[dict[str, str], bytes]:
    """Return headers and body of a GitLab `Push Hook`.

    It carries the secret token in `X-Gitlab-Token`, or with the option
    `signing = "standard-webhooks"` a Standard Webhooks signature.
    """
    push = load_sample(GITLAB_SAMPLE)
    commit_id = secrets.token_hex(20)
    push["after"] = push["commits"][0]["id"] = commit_id
    push["commits"][0]["timestamp"] = datetime.fromtimestamp(now, UTC).isoformat()
    body = _compact_json(push)
    delivery_id = str(uuid.uuid4())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitLab/18.6.0",
        "X-Gitlab-Event": "Push Hook",
        "X-Gitlab-Event-UUID": str(uuid.uuid4()),
        "X-Gitlab-Instance": "https://gitlab.example.com",
        "Idempotency-Key": delivery_id,
    }
    secret = source.secrets[0]
    if source.options.get("signing") == GITLAB_SIGNING_TOKEN:
        headers |= standard_webhooks_headers(secret, body, now, delivery_id)
    else:
        headers["X-Gitlab-Token"] = secret
    return headers, body


def generic_hmac_sample(source: SourceConfig, now: int) -> tuple[dict[str, str], bytes]:
    """Return headers and body of a generic event signed as the source's options describe."""
    body = _generic_event(now)
    signature = generic_hmac_headers(source.secrets[0], body, source.options, now)
    return {"Content-Type": "application/json", **signature}, body


def token_sample(source: SourceConfig, now: int) -> tuple[dict[str, str], bytes]:
    """Return headers and body of a generic event with the source's static token."""
    body = _generic_event(now)
    token = token_headers(source.secrets[0], source.options)
    return {"Content-Type": "application/json", **token}, body


# Builders that need more of the source than its first secret, such as a URL
# or a private key from its options.
_SOURCE_BUILDERS: dict[str, Callable[[SourceConfig, int], tuple[dict[str, str], bytes]]] = {
    "twilio": twilio_sample,
    "square": square_sample,
    "discord": discord_sample,
    "sendgrid": sendgrid_sample,
    "mailgun": mailgun_sample,
    "gitlab": gitlab_sample,
    "generic-hmac": generic_hmac_sample,
    "token": token_sample,
}


def build_sample(source: SourceConfig, now: int | None = None) -> tuple[dict[str, str], bytes]:
    """Return signed request headers and a body for a sample event of SOURCE.

    The event is signed at time NOW (Unix seconds, default the current time)
    with the source's first secret, or for discord and sendgrid sources with
    the private key in their `sample_private_key` option. When that key's
    public key is not among the source's secrets, as with `send-sample
    --forge`, a new random key signs instead, so ingest rejects the sample.
    It has a new event id on every call.

    Raises:
        ConfigError: when the source's scheme has no sample, the source has no
            secret, or an option its sample needs is missing.
    """
    builder = _BUILDERS.get(source.scheme)
    source_builder = _SOURCE_BUILDERS.get(source.scheme)
    if builder is None and source_builder is None:
        raise ConfigError(
            f"source {source.name!r}: no sample for scheme {source.scheme!r}; "
            f"samples exist for {', '.join(sorted([*_BUILDERS, *_SOURCE_BUILDERS]))}"
        )
    if not source.secrets:
        raise ConfigError(f"source {source.name!r} has no secret to sign the sample with")
    now = int(time.time()) if now is None else now
    if source_builder is not None:
        return source_builder(source, now)
    assert builder is not None
    return builder(source.secrets[0], now)
