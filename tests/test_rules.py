"""Unit tests of streams.rules: parsing the rules file and matching events to topics."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from hookline.errors import ConfigError
from streams.rules import (
    TOPICS_CACHE_MAX_ENTRIES,
    RulesError,
    is_valid_topic_name,
    load_rules,
    parse_rules,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = {"default_topic_template": "events.{source}", "unrouted_topic": "webhooks.unrouted"}

RULES_TOML = """
[[route]]
source = "stripe"
type = "payment_intent.*"
topics = ["events.stripe.payments"]

[[route]]
source = "stripe"
type = "customer.subscription.*"
topics = ["events.stripe.subscriptions"]

[[route]]
source = "*"
type = "*.deleted"
topics = ["events.deletions", "events.audit"]

[[route]]
source = "git?ub"
type = "push"
topics = ["events.github.push", "events.audit"]

[[route]]
source = "github"
type = "push"
topics = ["events.github.push"]
"""


def write_rules(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routes.toml"
    path.write_text(text)
    return path


@pytest.fixture
def rules(tmp_path: Path):
    return load_rules(write_rules(tmp_path, RULES_TOML), **DEFAULTS)


@pytest.mark.parametrize(
    ("source", "event_type", "expected"),
    [
        pytest.param(
            "stripe", "payment_intent.succeeded", ["events.stripe.payments"], id="one-rule"
        ),
        pytest.param(
            "stripe",
            "customer.subscription.deleted",
            ["events.stripe.subscriptions", "events.deletions", "events.audit"],
            id="fan-out-in-rule-order",
        ),
        pytest.param(
            "github",
            "push",
            ["events.github.push", "events.audit"],
            id="same-topic-from-two-rules-once",
        ),
        pytest.param(
            "shopify", "products.deleted", ["events.deletions", "events.audit"], id="source-glob"
        ),
        pytest.param("stripe", "invoice.paid", ["events.stripe"], id="no-match-default"),
        pytest.param("github", "Push", ["events.github"], id="case-sensitive"),
        pytest.param("stripe", "payment_intent", ["events.stripe"], id="glob-needs-dot"),
    ],
)
def test_topics_for_matches_rules(rules, source: str, event_type: str, expected: list[str]):
    assert rules.topics_for(source, event_type) == expected


@pytest.mark.parametrize("event_type", [None, ""], ids=["none", "empty"])
def test_topics_for_unknown_type_unrouted(rules, event_type):
    assert rules.topics_for("stripe", event_type) == ["webhooks.unrouted"]


def test_topics_for_repeated_call_same_topics(rules):
    first = rules.topics_for("stripe", "customer.subscription.deleted")
    first.append("changed.by.caller")

    second = rules.topics_for("stripe", "customer.subscription.deleted")

    assert second == ["events.stripe.subscriptions", "events.deletions", "events.audit"]


def test_topics_for_cache_bounded(rules):
    for index in range(TOPICS_CACHE_MAX_ENTRIES + 10):
        rules.topics_for("stripe", f"type.{index}")

    assert len(rules._topics_cache) <= TOPICS_CACHE_MAX_ENTRIES
    assert rules.topics_for("stripe", "type.0") == ["events.stripe"]
    assert rules.topics_for("github", "push") == ["events.github.push", "events.audit"]


def test_topics_for_long_types_not_kept(rules):
    # Ingest takes event types from signed bodies, so a sender chooses their
    # length. 100 types of 64 KiB are 6.4 MiB.
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for index in range(100):
            rules.topics_for("stripe", f"{index}.{'x' * 65536}")
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert after - before < 1024 * 1024
    assert rules.topics_for("stripe", f"0.{'x' * 65536}") == ["events.stripe"]


def test_default_topic_uses_template(tmp_path: Path):
    rules = load_rules(
        write_rules(tmp_path, ""),
        default_topic_template="hooks.{source}.all",
        unrouted_topic="hooks.unrouted",
    )

    assert rules.routes == ()
    assert rules.topics_for("twilio", "message.sent") == ["hooks.twilio.all"]


def test_all_topics_lists_each_once(rules):
    topics = rules.all_topics(["github", "stripe"])

    assert topics[0] == "webhooks.unrouted"
    assert topics[1:3] == ["events.github", "events.stripe"]
    assert len(topics) == len(set(topics))
    assert "events.audit" in topics
    assert "events.stripe.subscriptions" in topics


def test_repository_rules_file_loads():
    rules = load_rules(REPO_ROOT / "config" / "routes.toml", **DEFAULTS)

    assert len(rules.routes) >= 1
    assert rules.topics_for("stripe", "payment_intent.created") == ["events.stripe.payments"]
    assert rules.topics_for("stripe", "customer.subscription.deleted") == [
        "events.stripe.subscriptions",
        "events.deletions",
    ]


@pytest.mark.parametrize(
    ("text", "index", "message_part"),
    [
        pytest.param(
            '[[route]]\nsource = "a"\ntype = "b"\ntopics = ["t"]\n'
            '[[route]]\nsource = "a"\ntopics = ["t"]\n',
            2,
            "type must be a non-empty glob string",
            id="missing-type",
        ),
        pytest.param(
            '[[route]]\nsource = ""\ntype = "b"\ntopics = ["t"]\n',
            1,
            "source must be a non-empty glob string",
            id="empty-source",
        ),
        pytest.param(
            '[[route]]\nsource = "a"\ntype = "b"\ntopics = []\n',
            1,
            "topics must be a non-empty list",
            id="empty-topics",
        ),
        pytest.param(
            '[[route]]\nsource = "a"\ntype = "b"\ntopics = "t"\n',
            1,
            "topics must be a non-empty list",
            id="topics-not-list",
        ),
        pytest.param(
            '[[route]]\nsource = "a"\ntype = "b"\ntopics = ["bad topic!"]\n',
            1,
            "'bad topic!' is not a valid Kafka topic name",
            id="invalid-topic-name",
        ),
        pytest.param(
            '[[route]]\nsource = "a"\ntype = "b"\ntopics = ["t"]\ntopic = ["u"]\n',
            1,
            "unknown key(s) topic",
            id="unknown-key",
        ),
        pytest.param(
            '[[route]]\nsource = 3\ntype = "b"\ntopics = ["t"]\n',
            1,
            "got 3",
            id="source-not-string",
        ),
    ],
)
def test_load_rules_invalid_route(tmp_path: Path, text: str, index: int, message_part: str):
    path = write_rules(tmp_path, text)

    with pytest.raises(RulesError) as caught:
        load_rules(path, **DEFAULTS)

    assert caught.value.index == index
    assert caught.value.path == path
    assert str(caught.value).startswith(f"{path}: route #{index}: ")
    assert message_part in str(caught.value)


def test_load_rules_missing_file(tmp_path: Path):
    path = tmp_path / "absent.toml"

    with pytest.raises(RulesError, match="rules file not found") as caught:
        load_rules(path, **DEFAULTS)

    assert str(path) in str(caught.value)
    assert caught.value.index is None


def test_load_rules_invalid_toml(tmp_path: Path):
    path = write_rules(tmp_path, "[[route]\nsource = 'a'\n")

    with pytest.raises(RulesError, match="not valid TOML") as caught:
        load_rules(path, **DEFAULTS)

    assert str(caught.value).startswith(str(path))


def test_load_rules_unknown_top_level_key(tmp_path: Path):
    path = write_rules(tmp_path, '[[routes]]\nsource = "a"\ntype = "b"\ntopics = ["t"]\n')

    with pytest.raises(RulesError, match="unknown top-level key"):
        load_rules(path, **DEFAULTS)


def test_load_rules_route_not_array(tmp_path: Path):
    path = write_rules(tmp_path, '[route]\nsource = "a"\ntype = "b"\ntopics = ["t"]\n')

    with pytest.raises(RulesError, match="array of tables"):
        load_rules(path, **DEFAULTS)


@pytest.mark.parametrize(
    ("template", "message_part"),
    [
        pytest.param("events.{name}", "is invalid", id="unknown-placeholder"),
        pytest.param("events.{source", "is invalid", id="unbalanced-brace"),
        pytest.param("events/{source}", "does not give a valid Kafka topic name", id="slash"),
    ],
)
def test_parse_rules_invalid_default_template(template: str, message_part: str):
    with pytest.raises(RulesError, match=message_part):
        parse_rules(
            {}, Path("routes.toml"), default_topic_template=template, unrouted_topic="unrouted"
        )


def test_parse_rules_invalid_unrouted_topic():
    with pytest.raises(RulesError, match="unrouted_topic"):
        parse_rules(
            {},
            Path("routes.toml"),
            default_topic_template="events.{source}",
            unrouted_topic="no spaces allowed",
        )


def test_rules_error_is_config_error():
    assert issubclass(RulesError, ConfigError)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("events.stripe", True),
        ("a-b_c.D9", True),
        ("x" * 249, True),
        ("x" * 250, False),
        ("", False),
        (".", False),
        ("..", False),
        ("with space", False),
        ("slash/name", False),
    ],
)
def test_is_valid_topic_name(name: str, valid: bool):
    assert is_valid_topic_name(name) is valid
