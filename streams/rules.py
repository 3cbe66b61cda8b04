"""Routing rules: which topics an event goes to, by source and event type.

The rules file is TOML with one `[[route]]` table per rule:

    [[route]]
    source = "stripe"              # glob on the source name
    type = "payment_intent.*"      # glob on the provider's event type
    topics = ["events.stripe.payments"]

Globs use `fnmatch` syntax (`*`, `?`, `[abc]`), match case-sensitively, and
`*` matches dots too, so `*.deleted` matches `customer.subscription.deleted`.
Every matching rule applies, so one event can fan out to several topics. An
event that matches no rule goes to the source's default topic
(`router.default_topic_template` formatted with `source`), and an event whose
type is unknown goes to the unrouted topic.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from hookline.errors import ConfigError

# Kafka accepts topic names of at most 249 characters from this set.
TOPIC_NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
ROUTE_KEYS = frozenset({"source", "type", "topics"})
# Maximum (source, event type) pairs whose topics `RoutingRules.topics_for`
# keeps. A full cache is emptied, so event types that never repeat cannot
# grow it without bound.
TOPICS_CACHE_MAX_ENTRIES = 4096
# Maximum length in characters of an event type whose topics
# `RoutingRules.topics_for` keeps. Ingest reads event types from signed
# bodies, so a sender can make each one hundreds of KiB long, and a full
# cache of such types would keep gigabytes in the router.
TOPICS_CACHE_MAX_TYPE_CHARS = 256


class RulesError(ConfigError):
    """The routing rules file is missing, is not valid TOML or has an invalid rule."""

    def __init__(self, path: Path, detail: str, *, index: int | None = None) -> None:
        where = f"{path}" if index is None else f"{path}: route #{index}"
        super().__init__(f"{where}: {detail}")
        self.path = path
        self.index = index


def is_valid_topic_name(name: str) -> bool:
    """Return whether Kafka accepts NAME as a topic name."""
    return bool(TOPIC_NAME_PATTERN.match(name)) and name not in {".", ".."}


@dataclass(frozen=True)
class Route:
    """One `[[route]]` rule: events matching both globs go to every topic listed."""

    source: str
    type: str
    topics: tuple[str, ...]

    def matches(self, source: str, event_type: str) -> bool:
        """Return whether this rule applies to an event of EVENT_TYPE from SOURCE."""
        return fnmatchcase(source, self.source) and fnmatchcase(event_type, self.type)


@dataclass(frozen=True)
class RoutingRules:
    """The rules of one file plus the default and unrouted topics."""

    routes: tuple[Route, ...]
    default_topic_template: str
    unrouted_topic: str
    _topics_cache: dict[tuple[str, str], tuple[str, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def default_topic(self, source: str) -> str:
        """Return the topic for events of SOURCE that match no rule."""
        return self.default_topic_template.format(source=source)

    def topics_for(self, source: str, event_type: str | None) -> list[str]:
        """Return the topics an event goes to, each once, in rule order.

        An unknown (None or empty) event type goes to the unrouted topic and an
        event that matches no rule goes to the source's default topic.
        """
        if not event_type:
            return [self.unrouted_topic]

        cacheable = len(event_type) <= TOPICS_CACHE_MAX_TYPE_CHARS
        cached = self._topics_cache.get((source, event_type)) if cacheable else None
        if cached is not None:
            return list(cached)

        topics: list[str] = []
        for route in self.routes:
            if not route.matches(source, event_type):
                continue
            topics.extend(topic for topic in route.topics if topic not in topics)
        topics = topics or [self.default_topic(source)]
        if not cacheable:
            return topics

        if len(self._topics_cache) >= TOPICS_CACHE_MAX_ENTRIES:
            self._topics_cache.clear()
        self._topics_cache[source, event_type] = tuple(topics)
        return topics

    def all_topics(self, sources: Sequence[str]) -> list[str]:
        """Return every topic the rules can write to for the given SOURCES, each once."""
        names = [self.unrouted_topic]
        names.extend(self.default_topic(source) for source in sources)
        names.extend(topic for route in self.routes for topic in route.topics)
        return list(dict.fromkeys(names))


def _parse_route(path: Path, index: int, raw: Any) -> Route:
    if not isinstance(raw, dict):
        raise RulesError(path, "is not a table; write it as [[route]]", index=index)

    unknown = sorted(set(raw) - ROUTE_KEYS)
    if unknown:
        raise RulesError(
            path,
            f"has unknown key(s) {', '.join(unknown)}; expected source, type and topics",
            index=index,
        )
    for key in ("source", "type"):
        value = raw.get(key)
        if not isinstance(value, str) or not value:
            raise RulesError(
                path, f"{key} must be a non-empty glob string, got {value!r}", index=index
            )

    topics = raw.get("topics")
    if not isinstance(topics, list) or not topics:
        raise RulesError(
            path, f"topics must be a non-empty list of topic names, got {topics!r}", index=index
        )
    for topic in topics:
        if not isinstance(topic, str) or not is_valid_topic_name(topic):
            raise RulesError(
                path,
                f"topic {topic!r} is not a valid Kafka topic name; "
                "use 1-249 characters from A-Z, a-z, 0-9, '.', '_' and '-'",
                index=index,
            )
    return Route(source=raw["source"], type=raw["type"], topics=tuple(topics))


def _check_default_template(path: Path, template: str) -> None:
    try:
        example = template.format(source="example-source")
    except (KeyError, IndexError, ValueError) as error:
        raise RulesError(
            path,
            f"router.default_topic_template {template!r} is invalid ({error!r}); "
            "use a topic name with the placeholder {source}",
        ) from None
    if not is_valid_topic_name(example):
        raise RulesError(
            path,
            f"router.default_topic_template {template!r} does not give a valid Kafka "
            f"topic name (for example {example!r})",
        )


def parse_rules(
    document: dict[str, Any],
    path: Path,
    *,
    default_topic_template: str,
    unrouted_topic: str,
) -> RoutingRules:
    """Build RoutingRules from the parsed TOML DOCUMENT of the rules file at PATH.

    Route indexes in error messages count from 1, in file order.

    Raises:
        RulesError: a rule, the default topic template or the unrouted topic is invalid.
    """
    unknown = sorted(set(document) - {"route"})
    if unknown:
        raise RulesError(
            path, f"unknown top-level key(s) {', '.join(unknown)}; write rules as [[route]]"
        )
    raw_routes = document.get("route", [])
    if not isinstance(raw_routes, list):
        raise RulesError(path, "route must be an array of tables; write each rule as [[route]]")

    _check_default_template(path, default_topic_template)
    if not is_valid_topic_name(unrouted_topic):
        raise RulesError(path, f"router.unrouted_topic {unrouted_topic!r} is not a valid topic")

    routes = tuple(_parse_route(path, index, raw) for index, raw in enumerate(raw_routes, 1))
    return RoutingRules(
        routes=routes,
        default_topic_template=default_topic_template,
        unrouted_topic=unrouted_topic,
    )


def load_rules(
    path: Path | str,
    *,
    default_topic_template: str,
    unrouted_topic: str,
) -> RoutingRules:
    """Read and validate the rules file at PATH.

    Raises:
        RulesError: the file is missing, is not valid TOML or has an invalid rule.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except FileNotFoundError:
        raise RulesError(path, "rules file not found; check router.rules_file") from None
    except tomllib.TOMLDecodeError as error:
        raise RulesError(path, f"not valid TOML: {error}") from None
    return parse_rules(
        document,
        path,
        default_topic_template=default_topic_template,
        unrouted_topic=unrouted_topic,
    )
