"""Creating the Kafka topics that Hookline reads and writes.

The development broker creates topics on first use, but a production cluster
usually does not, so `hookline topics create` and the development supervisor
create them up front with `ensure_topics`. New topics get the broker's
`num.partitions` and `default.replication.factor`, because aiokafka 0.14 sends
CreateTopics v3 at most, and only v4 and later accept -1 for "broker default".
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code

from hookline.config import HooklineConfig
from streams.rules import RoutingRules, load_rules

logger = logging.getLogger(__name__)

ADMIN_TIMEOUT_MS = 30_000


def topic_names(config: HooklineConfig, rules: RoutingRules | None = None) -> list[str]:
    """Return every topic named by CONFIG and the routing rules, each once.

    These are the raw, rejected, unrouted and dead-letter topics, the default
    topic of each configured source and every topic a rule names.
    """
    if rules is None:
        rules = load_rules(
            config.router.rules_file,
            default_topic_template=config.router.default_topic_template,
            unrouted_topic=config.router.unrouted_topic,
        )
    names = [config.kafka.raw_topic, config.kafka.rejected_topic, config.router.dead_letter_topic]
    names.extend(rules.all_topics(sorted(config.sources)))
    return list(dict.fromkeys(names))


def new_admin_client(config: HooklineConfig) -> AIOKafkaAdminClient:
    """Return an admin client for the configured brokers; the caller starts and closes it."""
    return AIOKafkaAdminClient(
        bootstrap_servers=config.kafka.bootstrap_servers,
        client_id=f"{config.kafka.client_id}-admin",
        request_timeout_ms=ADMIN_TIMEOUT_MS,
    )


async def broker_topic_defaults(admin: AIOKafkaAdminClient) -> tuple[int, int]:
    """Return the broker's (num.partitions, default.replication.factor)."""
    metadata = await admin.describe_cluster()
    broker_id = metadata["brokers"][0]["node_id"]
    resource = ConfigResource(
        ConfigResourceType.BROKER,
        str(broker_id),
        configs={"num.partitions": None, "default.replication.factor": None},
    )
    responses = await admin.describe_configs([resource])
    values: dict[str, str] = {}
    for response in responses:
        for _code, _message, _type, _name, entries in response.resources:
            values.update({entry[0]: entry[1] for entry in entries})
    return int(values["num.partitions"]), int(values["default.replication.factor"])


async def partition_count(admin: AIOKafkaAdminClient, topic: str) -> int | None:
    """Return the number of partitions of TOPIC, or None when it does not exist.

    Lists all topics first, because a metadata request naming a missing topic
    makes a broker with auto.create.topics.enable create it.
    """
    if topic not in await admin.list_topics():
        return None
    described = await admin.describe_topics([topic])
    return len(described[0]["partitions"])


async def create_missing_topics(admin: AIOKafkaAdminClient, names: Iterable[str]) -> list[str]:
    """Create each topic of NAMES that does not exist yet; return the names created.

    A topic that another client creates at the same moment counts as existing.

    Raises:
        aiokafka.errors.KafkaError: the broker rejected a topic for another reason.
    """
    existing = set(await admin.list_topics())
    missing = [name for name in dict.fromkeys(names) if name not in existing]
    if not missing:
        return []

    partitions, replication = await broker_topic_defaults(admin)
    response = await admin.create_topics(
        [NewTopic(name, partitions, replication) for name in missing], timeout_ms=ADMIN_TIMEOUT_MS
    )
    created: list[str] = []
    for topic, code, *rest in response.topic_errors:
        if code == 0:
            created.append(topic)
            continue
        error_type = for_code(code)
        if error_type is TopicAlreadyExistsError:
            continue
        detail = rest[0] if rest and rest[0] else error_type.__name__
        raise error_type(f"creating topic {topic} failed: {detail}")
    logger.info(
        "Created %d topic(s) with %d partition(s) each: %s",
        len(created),
        partitions,
        ", ".join(created),
    )
    return created


async def ensure_topics(config: HooklineConfig) -> list[str]:
    """Create every topic Hookline uses that does not exist yet; return the names created.

    The topics are those of `topic_names`. Running it again creates nothing
    and returns an empty list.

    Raises:
        streams.rules.RulesError: the routing rules file is invalid.
        aiokafka.errors.KafkaError: the broker is unreachable or rejected a topic.
    """
    names = topic_names(config)
    admin = new_admin_client(config)
    await admin.start()
    try:
        return await create_missing_topics(admin, names)
    finally:
        await admin.close()
