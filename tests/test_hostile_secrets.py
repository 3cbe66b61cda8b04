"""No secret or signature in a log line, a response, or the recorded request headers.

For every source of config/hookline.toml, a genuine sample and one signed with
a wrong secret go to ingest, which logs at DEBUG. Then the captured log, every
response and every Kafka header of every raw and rejected record are searched.
The search covers each configured secret and private key, and every credential
header value that was sent (signatures, tokens, basic-auth credentials) with
the long pieces of each. The unit test runs ingest in a thread with a recording
producer. The integration test runs it as a child process with the real
producer, so aiokafka's own DEBUG logging is searched too.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import io
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from ingest_fakes import RAW_TOPIC, REJECTED_TOPIC, RecordingProducer
from test_hostile_server import LOG_FORMAT, ServerProcess, ThreadServer, repository_config

from hookline import records
from hookline.broker import LocalBroker
from hookline.config import HooklineConfig, SourceConfig, parse_config
from hookline.sample_client import FORGED_SECRET
from ingest.kafka_logging import install_kafka_log_redaction, redact_produce_request
from ingest.samples import SAMPLE_PRIVATE_KEY_OPTION, build_sample
from ingest.schemes import create_verifier

# Pieces of a credential header value at least this long are searched on their own.
MIN_PIECE_LENGTH = 12
CLIENT_LOGGERS = ("httpx", "httpcore")


@dataclass
class Evidence:
    """Everything ingest wrote while handling the requests."""

    log: str = ""
    responses: list[str] = field(default_factory=list)
    # Kafka header values of every raw and rejected record, decoded.
    record_headers: list[str] = field(default_factory=list)


def configured_secrets(config: HooklineConfig) -> set[str]:
    """Return every secret and private key of CONFIG, with basic-auth passwords alone."""
    found: set[str] = set()
    for source in config.sources.values():
        found.update(source.secrets)
        if source.scheme == "basic-auth":
            found.update(secret.partition(":")[2] for secret in source.secrets)
        private_key = source.options.get(SAMPLE_PRIVATE_KEY_OPTION)
        if isinstance(private_key, str):
            found.add(private_key)
    return found


def credential_values(source: SourceConfig, headers: dict[str, str], body: bytes) -> set[str]:
    """Return the credential header values of a request, and their long pieces."""
    names = records.CREDENTIAL_HEADERS | create_verifier(source).credential_headers
    values = {value for name, value in headers.items() if name.lower() in names}
    if source.scheme == "mailgun":
        # Mailgun's signature is inside the body, which is recorded unchanged by
        # design, so it is searched in the log and the responses only.
        values.add(orjson.loads(body)["signature"]["signature"])
    if source.scheme == "basic-auth":
        encoded = next(iter(values)).removeprefix("Basic ")
        values.add(base64.b64decode(encoded).decode(errors="replace"))
    pieces = {
        piece
        for value in values
        for piece in re.split(r"[\s,;=:]+", value)
        if len(piece) >= MIN_PIECE_LENGTH
    }
    return values | pieces


def send_all(
    config: HooklineConfig, url: str, check: Callable[[str, int, int], None]
) -> tuple[set[str], list[str], set[str]]:
    """Send a genuine and a forged sample for every source.

    Returns the credential values sent, the response texts, and the values
    that must not reach the record headers (all but Mailgun's body signature).
    """
    sent: set[str] = set()
    header_values: set[str] = set()
    responses: list[str] = []
    with httpx.Client(timeout=30.0, trust_env=False) as client:
        for name, source in config.sources.items():
            forged_source = dataclasses.replace(source, secrets=(FORGED_SECRET,))
            for signer, expect_success in ((source, True), (forged_source, False)):
                headers, body = build_sample(signer)
                response = client.post(f"{url}/webhooks/{name}", content=body, headers=headers)
                check(name, response.status_code, 200 if expect_success else 401)
                responses.append(f"{response.headers}\n{response.text}")
                values = credential_values(source, headers, body)
                sent |= values
                if source.scheme != "mailgun":
                    header_values |= values
    return sent, responses, header_values


def assert_no_secret(
    evidence: Evidence, secrets: Iterable[str], sent: set[str], header_values: set[str]
) -> None:
    for secret in secrets:
        assert secret not in evidence.log, f"secret {secret[:6]}... in the log"
        for response in evidence.responses:
            assert secret not in response, f"secret {secret[:6]}... in a response"
        for value in evidence.record_headers:
            assert secret not in value, f"secret {secret[:6]}... in a record header"
    for credential in sent:
        assert credential not in evidence.log, f"credential {credential[:8]}... in the log"
        for response in evidence.responses:
            assert credential not in response, f"credential {credential[:8]}... in a response"
    for credential in header_values:
        for value in evidence.record_headers:
            assert credential not in value, f"credential {credential[:8]}... in a record header"


def check_status(name: str, status: int, expected: int) -> None:
    assert status == expected, f"source {name}: {status}, expected {expected}"


@contextlib.contextmanager
def debug_log() -> Iterator[io.StringIO]:
    """Capture the server's log records at DEBUG, formatted with their tracebacks.

    Records of httpx and httpcore are left out: they are the test's client.
    """
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(lambda record: not record.name.startswith(CLIENT_LOGGERS))
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)


def header_texts(headers: Iterable[tuple[str, bytes]]) -> list[str]:
    return [value.decode("utf-8", "replace") for _, value in headers]


def test_no_secret_leaks_with_recording_producer():
    raw = repository_config()
    raw["kafka"].update({"raw_topic": RAW_TOPIC, "rejected_topic": REJECTED_TOPIC})
    config = parse_config(raw)
    producer = RecordingProducer()

    with debug_log() as log, ThreadServer(config, producer) as server:
        sent, responses, header_values = send_all(config, server.url, check_status)
        metrics = httpx.get(f"{server.url}/metrics").text
        producer.wait_for(REJECTED_TOPIC, len(config.sources))

    evidence = Evidence(
        log=log.getvalue(),
        responses=[*responses, metrics],
        record_headers=[
            text for record in producer.records for text in header_texts(record.headers.items())
        ],
    )
    assert "DEBUG ingest.receiver: stored receipt" in evidence.log
    assert "WARNING ingest.receiver: rejected webhook" in evidence.log
    assert len(producer.on(RAW_TOPIC)) == len(config.sources)
    assert len(producer.on(REJECTED_TOPIC)) == len(config.sources)
    assert_no_secret(evidence, configured_secrets(config), sent, header_values)


def test_credential_checks_find_a_leak():
    # The search itself must be able to fail: a log that quotes a header fails it.
    config = parse_config(repository_config())
    source = config.sources["generic-hmac"]
    headers, body = build_sample(source)
    sent = credential_values(source, headers, body)
    signature = headers["X-Hookline-Signature"]

    leaky_log = Evidence(log=f"DEBUG headers: {headers}")
    leaky_record = Evidence(record_headers=[orjson.dumps(headers).decode()])
    leaky_secret = Evidence(responses=[f"bad secret {source.secrets[0]}"])

    with pytest.raises(AssertionError, match="in the log"):
        assert_no_secret(leaky_log, [], sent, set())
    with pytest.raises(AssertionError, match="in a record header"):
        assert_no_secret(leaky_record, [], set(), sent)
    with pytest.raises(AssertionError, match="in a response"):
        assert_no_secret(leaky_secret, configured_secrets(config), set(), set())
    assert signature in sent


async def read_records(bootstrap: str, topics: list[str], expected: int) -> list[list[str]]:
    """Read EXPECTED records from the start of TOPICS and return each one's header values."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        metadata_max_age_ms=1000,
    )
    await consumer.start()
    found: list[list[str]] = []
    deadline = time.monotonic() + 60.0
    try:
        while len(found) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                found.extend(header_texts(record.headers) for record in batch)
    finally:
        await consumer.stop()
    return found


@pytest.mark.integration
def test_no_secret_leaks_with_kafka(kafka_broker: LocalBroker, tmp_path):
    suffix = uuid.uuid4().hex[:10]
    raw = repository_config()
    raw["kafka"].update(
        {
            "bootstrap_servers": kafka_broker.bootstrap_servers,
            "raw_topic": f"test.hostile.raw.{suffix}",
            "rejected_topic": f"test.hostile.rejected.{suffix}",
        }
    )
    config = parse_config(raw)
    server = ServerProcess(raw, tmp_path, producer="kafka", log_level="DEBUG")

    with server:
        deadline = time.monotonic() + 60.0
        while httpx.get(f"{server.url}/readyz", trust_env=False).status_code != 200:
            assert time.monotonic() < deadline, "ingest not ready"
            time.sleep(0.2)
        sent, responses, header_values = send_all(config, server.url, check_status)
    topics = [config.kafka.raw_topic, config.kafka.rejected_topic]
    found = asyncio.run(
        read_records(kafka_broker.bootstrap_servers, topics, 2 * len(config.sources))
    )

    evidence = Evidence(
        log=server.log_text(),
        responses=responses,
        record_headers=[text for headers in found for text in headers],
    )
    assert "DEBUG aiokafka" in evidence.log
    assert len(found) == 2 * len(config.sources)
    assert_no_secret(evidence, configured_secrets(config), sent, header_values)


class ProduceRequest_v7:  # noqa: N801 - named as aiokafka names its request classes
    def __repr__(self) -> str:
        return "ProduceRequest_v7(records=b'secret body')"


def log_text(logger_name: str, message: str, *args: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    previous_level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug(message, *args)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
    return stream.getvalue()


def test_kafka_log_redaction_hides_record_contents():
    install_kafka_log_redaction()
    install_kafka_log_redaction()

    sent = log_text(
        "aiokafka.producer.producer", "Sending (key=%s value=%s) to %s", b"k", b"secret body", "tp"
    )
    request = log_text(
        "aiokafka.conn", "Request to %s:%d %d: %s", "127.0.0.1", 1, 2, ProduceRequest_v7()
    )
    metadata = log_text("aiokafka.conn", "Request to %s:%d %d: %s", "127.0.0.1", 1, 3, "Metadata")

    assert sent == "Sending (key of 1 bytes, value of 11 bytes) to tp\n"
    assert request == "Request to 127.0.0.1:1 2: ProduceRequest_v7 (record contents not logged)\n"
    assert metadata == "Request to 127.0.0.1:1 3: Metadata\n"
    assert logging.getLogger("aiokafka.conn").filters.count(redact_produce_request) == 1
