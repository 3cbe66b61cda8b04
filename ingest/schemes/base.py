"""The interface every signature verification scheme implements, and shared helpers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from hookline.config import SourceConfig
from hookline.errors import ConfigError, VerificationError

MISSING_HEADER = "missing_header"
MALFORMED_HEADER = "malformed_header"
NO_MATCHING_SIGNATURE = "no_matching_signature"
TIMESTAMP_OUTSIDE_TOLERANCE = "timestamp_outside_tolerance"
# The signature matched, but a field the scheme reads from the body is
# missing or the body is not the JSON the scheme expects.
INVALID_BODY = "invalid_body"

# Hash functions a scheme may name, mapped to their hashlib constructors.
HASH_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
SIGNATURE_ENCODINGS = ("hex", "base64")

# Unix seconds as decimal ASCII digits only, because int() alone would also accept
# signs, underscores, surrounding spaces and non-ASCII digits.
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True)
class ReplayIdentity:
    """Signed values of a verified request besides its body, used to detect replays.

    Two requests with equal `material` and equal bodies carry the same
    signature, so the second is a replay unless the sender signs each attempt
    anew. A provider's retry signs a new timestamp, so its material differs.
    """

    # Signed values other than the body, such as the timestamp text and a
    # message id, joined unambiguously.
    material: bytes = b""
    # The signed timestamp in Unix seconds, or None when the scheme signs none.
    timestamp: float | None = None


def replay_material(*values: str) -> bytes:
    """Join signed header values into `ReplayIdentity.material`, each prefixed by its length."""
    parts = [value.encode("utf-8", "backslashreplace") for value in values]
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


@dataclass(frozen=True)
class Handshake:
    """Reply to a provider's handshake request, which ingest returns instead of producing.

    Providers send these to prove that an endpoint is theirs (Slack
    url_verification, Zoom endpoint.url_validation, Discord PING). They are
    verified like events but never reach Kafka.
    """

    body: bytes
    content_type: str = "application/json"
    status: int = 200


class Verifier(ABC):
    """Check that a webhook request was signed by the provider.

    A subclass implements one scheme. It reads only the request headers and
    the raw body bytes, so the body is never decoded or re-serialised before
    verification. Subclasses are registered by name in `ingest.schemes.SCHEMES`.

    Args:
        secrets: One or more secrets. A request is authentic when it matches
            any of them, which allows rotating a secret without downtime.
        tolerance_seconds: Maximum difference in seconds between the signed
            timestamp and the clock, in both directions. None selects the
            scheme's default. Ignored by schemes without a timestamp.
        options: Scheme-specific settings from the source config.

    Raises:
        ConfigError: when no secret is given or a secret cannot be used.
    """

    name: ClassVar[str]
    default_tolerance_seconds: ClassVar[int | None] = None
    # Option names the scheme reads. None leaves options unchecked, so a
    # scheme that lists its options gets a ConfigError for a misspelt one.
    option_names: ClassVar[frozenset[str] | None] = None
    # `WWW-Authenticate` value sent with a 401, for HTTP authentication schemes.
    auth_challenge: str | None = None
    # Lower-case names of the request headers the scheme reads to verify a
    # request. Ingest rejects a request that repeats one of them.
    signed_headers: frozenset[str] = frozenset()
    # Lower-case names of headers whose values are credentials, redacted in the
    # audit log in addition to `hookline.records.CREDENTIAL_HEADERS`.
    credential_headers: frozenset[str] = frozenset()
    # Whether the scheme signs a timestamp, which makes replays of a request
    # expire with the tolerance window.
    signs_timestamp: bool = False

    def __init__(
        self,
        secrets: Sequence[str],
        tolerance_seconds: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        if not secrets:
            raise ConfigError(
                f"scheme {self.name!r} needs at least one secret; set secrets = [...]"
            )
        if tolerance_seconds is not None and tolerance_seconds < 0:
            raise ConfigError(
                f"tolerance_seconds = {tolerance_seconds} is invalid; use 0 or more seconds"
            )
        self.options = dict(options or {})
        if self.option_names is not None:
            unknown = sorted(set(self.options) - self.option_names)
            if unknown:
                known = ", ".join(sorted(self.option_names)) or "none"
                raise ConfigError(
                    f"scheme {self.name!r} has no option {', '.join(unknown)}; "
                    f"its options are: {known}"
                )
        self.keys = [self.decode_secret(secret) for secret in secrets]
        if tolerance_seconds is None:
            tolerance_seconds = self.default_tolerance_seconds
        self.tolerance_seconds = tolerance_seconds

    @classmethod
    def from_source(cls, source: SourceConfig) -> Verifier:
        """Build the verifier that a source config describes."""
        try:
            return cls(source.secrets, source.tolerance_seconds, source.options)
        except ConfigError as error:
            raise ConfigError(f"source {source.name!r}: {error}") from None

    def decode_secret(self, secret: str) -> bytes:
        """Return the HMAC key for SECRET, by default its UTF-8 bytes."""
        return secret.encode()

    def verify(self, headers: Mapping[str, str], body: bytes, now: float | None = None) -> None:
        """Raise VerificationError unless the request is authentic and fresh.

        Args:
            headers: Request headers, whose names are matched case-insensitively.
            body: The raw body bytes as received.
            now: The clock in Unix seconds, by default the current time.
        """
        lowered = {name.lower(): value for name, value in headers.items()}
        self.check(lowered, body, time.time() if now is None else now)

    def handshake(self, headers: Mapping[str, str], body: bytes) -> Handshake | None:
        """Return the reply to a verified handshake request, or None for an event.

        Called only after `verify` passed. HEADERS has lower-case names.
        """
        return None

    def replay_identity(self, headers: Mapping[str, str], body: bytes) -> ReplayIdentity:
        """Return what the signature of a verified request covers besides the body.

        Called only after `verify` passed. HEADERS has lower-case names.
        Schemes that sign a timestamp or message id return them here. The
        default, for schemes that sign only the body, is empty.
        """
        return ReplayIdentity()

    @abstractmethod
    def check(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        """Raise VerificationError unless the request is authentic.

        HEADERS has lower-case names. Implementations compare signatures with
        `hmac.compare_digest`.
        """


def require_header(headers: Mapping[str, str], *names: str) -> tuple[str, str]:
    """Return the name and value of the first of NAMES present in HEADERS.

    Raises:
        VerificationError: `missing_header` when none of them is present.
    """
    for name in names:
        value = headers.get(name)
        if value is not None:
            return name, value
    raise VerificationError(MISSING_HEADER, f"header {' or '.join(names)} is missing")


def parse_unix_seconds(header: str, value: str) -> int:
    """Parse a Unix timestamp in seconds from a header value.

    Raises:
        VerificationError: `malformed_header` when VALUE is not a whole number.
    """
    value = value.strip()
    if not _UNIX_SECONDS.fullmatch(value):
        raise VerificationError(MALFORMED_HEADER, f"timestamp in {header} is not Unix seconds")
    return int(value)


def unix_seconds_or_none(value: str) -> int | None:
    """Return VALUE as Unix seconds like `parse_unix_seconds`, or None when it is not."""
    value = value.strip()
    return int(value) if _UNIX_SECONDS.fullmatch(value) else None


def check_tolerance(timestamp: float, now: float, tolerance_seconds: int | None) -> None:
    """Raise `timestamp_outside_tolerance` when TIMESTAMP is too old or too far ahead."""
    if tolerance_seconds is None:
        return
    if abs(now - timestamp) > tolerance_seconds:
        raise VerificationError(
            TIMESTAMP_OUTSIDE_TOLERANCE,
            f"signed timestamp differs from the receiver clock by more than {tolerance_seconds} s",
        )


def signature_bytes(text: str) -> bytes:
    """Encode a received signature for `hmac.compare_digest`.

    compare_digest raises TypeError for str arguments with non-ASCII
    characters, so received text is compared as bytes. Characters that UTF-8
    cannot encode become escapes, which never equal an expected signature.
    """
    return text.encode("utf-8", "backslashreplace")


def matches_any(expected: Iterable[bytes], received: Iterable[bytes]) -> bool:
    """Return True when any received signature equals any expected one.

    Every pair is compared in constant time and the loop does not stop early,
    so timing reveals neither which secret nor which entry matched.
    """
    received = list(received)
    found = False
    for candidate in expected:
        for signature in received:
            found |= hmac.compare_digest(candidate, signature)
    return found


def strip_prefix(header: str, value: str, prefix: str) -> str:
    """Return VALUE without PREFIX and surrounding spaces.

    Raises:
        VerificationError: `malformed_header` when VALUE does not start with PREFIX.
    """
    value = value.strip()
    if not value.startswith(prefix):
        raise VerificationError(
            MALFORMED_HEADER, f"{header} must have the form {prefix}<signature>"
        )
    return value.removeprefix(prefix)


def hmac_signatures(
    keys: Iterable[bytes], message: bytes, algorithm: str = "sha256", encoding: str = "hex"
) -> list[bytes]:
    """Return the HMAC of MESSAGE under each key, as ASCII hex or base64 bytes.

    ALGORITHM is a key of `HASH_ALGORITHMS` and ENCODING one of
    `SIGNATURE_ENCODINGS`. Hex digits are lower-case.
    """
    digestmod = HASH_ALGORITHMS[algorithm]
    digests = [hmac.new(key, message, digestmod).digest() for key in keys]
    if encoding == "base64":
        return [base64.b64encode(digest) for digest in digests]
    return [digest.hex().encode() for digest in digests]


def option_text(options: Mapping[str, Any], name: str, default: str) -> str:
    """Return the string option NAME, or DEFAULT when it is not set.

    Raises:
        ConfigError: when the option is set to something other than a string.
    """
    value = options.get(name, default)
    if not isinstance(value, str):
        raise ConfigError(f"option {name} = {value!r} is invalid; use a string")
    return value


def option_choice(
    options: Mapping[str, Any], name: str, choices: Sequence[str], default: str
) -> str:
    """Return the option NAME, which must be one of CHOICES, or DEFAULT when unset.

    Raises:
        ConfigError: when the option is set to anything else.
    """
    value = options.get(name, default)
    if value not in choices:
        raise ConfigError(f"option {name} = {value!r} is invalid; use one of {', '.join(choices)}")
    return str(value)


def json_object(body: bytes) -> dict[str, Any] | None:
    """Return BODY parsed as a JSON object, or None when it is not one.

    Bodies that are not UTF-8, not JSON, or JSON of another type give None,
    so a scheme can tell a handshake or a body field apart without raising.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return document if isinstance(document, dict) else None


def option_flag(options: Mapping[str, Any], name: str, default: bool = False) -> bool:
    """Return the boolean option NAME, or DEFAULT when it is not set.

    Raises:
        ConfigError: when the option is set to something other than true or false.
    """
    value = options.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(f"option {name} = {value!r} is invalid; use true or false")
    return value
