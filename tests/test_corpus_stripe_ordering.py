"""Stripe events that arrive out of order: both accepted, keyed by the object they change.

Stripe does not guarantee delivery order. In the reported case a
customer.subscription.updated event arrived before the matching
customer.subscription.created, and receivers that applied events in arrival
order left subscriptions stuck. Hookline must accept both, drop neither, and
key both by the subscription id so they share a partition and consumers can
order them by the event's `created` time.
"""

from __future__ import annotations

from pathlib import Path

from ingest_fakes import RAW_TOPIC, REJECTED_TOPIC, RecordingProducer
from litestar.testing import TestClient

from hookline import records
from hookline.config import HooklineConfig, KafkaConfig, SourceConfig
from ingest.app import create_app
from ingest.signing import stripe_headers
from streams.dedupe import Deduplicator
from streams.envelope import CE_SUBJECT
from streams.router import Router
from streams.rules import parse_rules

SECRET = "whsec_corpusOnlyNotARealStripeSecret0001"
SOURCE = SourceConfig(
    name="stripe",
    scheme="stripe",
    secrets=(SECRET,),
    event_id="json:/id",
    event_type="json:/type",
    entity_key="json:/data/object/id",
    content_types=("application/json",),
)

CREATED_HEADERS = {
    "Content-Type": "application/json; charset=utf-8",
    "Stripe-Signature": (
        "t=1767225602,v1=760c0f3887ffb1b3f7a44557348b0686082ad2f8b771ea944ae8223102d0a5ec"
    ),
}
CREATED_BODY = (
    b'{\n  "id": "evt_corpus_B16_created",\n  "object": "event",\n'
    b'  "type": "customer.subscription.created",\n  "created": 1767225599,\n'
    b'  "data": {\n    "object": {\n      "id": "sub_corpus_B16",\n'
    b'      "object": "subscription",\n      "status": "incomplete"\n    }\n  }\n}\n'
)
NOW = 1767225603

# The event that arrived first; signed here with the same secret.
UPDATED_BODY = (
    b'{\n  "id": "evt_corpus_B16_updated",\n  "object": "event",\n'
    b'  "type": "customer.subscription.updated",\n  "created": 1767225600,\n'
    b'  "data": {\n    "object": {\n      "id": "sub_corpus_B16",\n'
    b'      "object": "subscription",\n      "status": "active"\n    }\n  }\n}\n'
)


def post_in_arrival_order() -> tuple[list[int], RecordingProducer]:
    producer = RecordingProducer()
    config = HooklineConfig(
        kafka=KafkaConfig(raw_topic=RAW_TOPIC, rejected_topic=REJECTED_TOPIC),
        sources={"stripe": SOURCE},
    )
    updated_headers = {
        "Content-Type": "application/json; charset=utf-8",
        **stripe_headers(SECRET, UPDATED_BODY, 1767225601),
    }
    with TestClient(create_app(config, producer=producer, clock=lambda: NOW)) as client:
        statuses = [
            client.post("/webhooks/stripe", content=body, headers=headers).status_code
            for headers, body in [(updated_headers, UPDATED_BODY), (CREATED_HEADERS, CREATED_BODY)]
        ]
    return statuses, producer


def test_corpus_b16_both_events_accepted():
    statuses, producer = post_in_arrival_order()

    assert statuses == [200, 200]
    raw = producer.on(RAW_TOPIC)
    assert [record.value for record in raw] == [UPDATED_BODY, CREATED_BODY]


def test_corpus_b16_raw_records_keyed_by_subscription():
    _, producer = post_in_arrival_order()
    raw = producer.on(RAW_TOPIC)

    assert [record.key for record in raw] == [b"stripe:sub_corpus_B16"] * 2
    assert [record.headers[records.ENTITY_KEY] for record in raw] == [b"sub_corpus_B16"] * 2
    assert [record.headers[records.EVENT_ID] for record in raw] == [
        b"evt_corpus_B16_updated",
        b"evt_corpus_B16_created",
    ]


def test_corpus_b16_router_routes_both_in_order():
    _, producer = post_in_arrival_order()
    rules = parse_rules(
        {"route": [{"source": "stripe", "type": "customer.subscription.*", "topics": ["subs"]}]},
        Path("routes.toml"),
        default_topic_template="events.{source}",
        unrouted_topic="unrouted",
    )
    router = Router(rules, Deduplicator({}, window_seconds=3600.0), "dead", "changelog")

    routed = []
    for record in producer.on(RAW_TOPIC):
        outbound = router.process(record.key, record.value, list(record.headers.items()), 0)
        routed += [item for item in outbound if item.topic == "subs"]

    # Distinct event ids: neither is a repeat, and the older one is not dropped.
    assert len(routed) == 2
    assert [item.key for item in routed] == [b"sub_corpus_B16", b"sub_corpus_B16"]
    assert [dict(item.headers)[CE_SUBJECT] for item in routed] == [b"sub_corpus_B16"] * 2
    assert [item.value for item in routed] == [UPDATED_BODY, CREATED_BODY]
