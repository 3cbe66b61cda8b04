"""Keep record contents out of aiokafka's DEBUG log.

At DEBUG, aiokafka 0.14 logs each record's key and value when it is sent
(`aiokafka.producer.producer`) and each produce request whole
(`aiokafka.conn`). A webhook body can carry credentials (Mailgun puts its
signature in the body) and personal data, so with DEBUG logging on, these
filters replace record contents with their sizes before any handler formats
the message.
Every other aiokafka message is left as it is.
"""

from __future__ import annotations

import logging

PRODUCER_LOGGER = "aiokafka.producer.producer"
CONNECTION_LOGGER = "aiokafka.conn"
# The message formats of aiokafka 0.14 that carry record contents.
SENDING_MESSAGE = "Sending (key=%s value=%s) to %s"
REQUEST_MESSAGE = "Request to %s:%d %d: %s"


def _size(value: object) -> str:
    if isinstance(value, bytes | bytearray | str):
        return f"{len(value)} bytes"
    return "None" if value is None else type(value).__name__


def redact_sent_record(record: logging.LogRecord) -> bool:
    """Replace the key and value in aiokafka's "Sending" message with their sizes."""
    if record.msg == SENDING_MESSAGE and isinstance(record.args, tuple) and len(record.args) == 3:
        key, value, partition = record.args
        record.msg = "Sending (key of %s, value of %s) to %s"
        record.args = (_size(key), _size(value), partition)
    return True


def redact_produce_request(record: logging.LogRecord) -> bool:
    """Replace a produce request in aiokafka's "Request to" message with its type name."""
    args = record.args
    if record.msg == REQUEST_MESSAGE and isinstance(args, tuple) and len(args) == 4:
        request_name = type(args[3]).__name__
        if request_name.startswith("ProduceRequest"):
            record.args = (*args[:3], f"{request_name} (record contents not logged)")
    return True


def install_kafka_log_redaction() -> None:
    """Attach the filters to aiokafka's loggers. Calling it again adds nothing."""
    logging.getLogger(PRODUCER_LOGGER).addFilter(redact_sent_record)
    logging.getLogger(CONNECTION_LOGGER).addFilter(redact_produce_request)
