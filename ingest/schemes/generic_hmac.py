"""Generic HMAC: a signature header described entirely by source options.

For senders without a scheme of their own. Options:

- `header` (required): the header with the signature, such as `X-Signature`.
- `algorithm`: `sha1`, `sha256` (default) or `sha512`.
- `encoding`: `hex` (default; either case accepted) or `base64`.
- `prefix`: text before the signature in the header, such as `sha256=`.
- `signed_content`: template of the signed bytes, `{body}` by default, such
  as `{timestamp}.{body}`. It must contain `{body}` exactly once and may
  contain `{timestamp}`. Other text is signed literally, with `{{` and `}}`
  for braces.
- `timestamp_header`: the header with Unix seconds that `{timestamp}` stands
  for. Required with `{timestamp}` and only allowed with it, because an
  unsigned timestamp proves nothing. The window is the source's
  `tolerance_seconds`, 300 s when unset.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hookline.errors import ConfigError, VerificationError
from ingest.schemes.base import (
    HASH_ALGORITHMS,
    MALFORMED_HEADER,
    NO_MATCHING_SIGNATURE,
    SIGNATURE_ENCODINGS,
    ReplayIdentity,
    Verifier,
    check_tolerance,
    matches_any,
    option_choice,
    option_text,
    parse_unix_seconds,
    replay_material,
    require_header,
    strip_prefix,
)

BODY_FIELD = "body"
TIMESTAMP_FIELD = "timestamp"
DEFAULT_TOLERANCE_SECONDS = 300


def parse_template(template: str) -> tuple[tuple[str, str | None], ...]:
    """Split a signed-content template into (literal text, field name or None) parts.

    Raises:
        ConfigError: when the template has an unknown field, a format spec,
            unbalanced braces, or not exactly one `{body}`.
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise ConfigError(f"option signed_content = {template!r} is invalid: {error}") from None

    parts: list[tuple[str, str | None]] = []
    for literal, field, spec, conversion in parsed:
        if field is not None and (field not in (BODY_FIELD, TIMESTAMP_FIELD) or spec or conversion):
            raise ConfigError(
                f"option signed_content = {template!r} is invalid; "
                "use only the fields {body} and {timestamp}"
            )
        parts.append((literal, field))

    if sum(field == BODY_FIELD for _, field in parts) != 1:
        raise ConfigError(
            f"option signed_content = {template!r} is invalid; it must contain {{body}} once"
        )
    return tuple(parts)


@dataclass(frozen=True)
class GenericHmacSettings:
    """The signature format a generic-hmac source describes with its options."""

    header: str
    algorithm: str = "sha256"
    encoding: str = "hex"
    prefix: str = ""
    template: tuple[tuple[str, str | None], ...] = (("", BODY_FIELD),)
    timestamp_header: str | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> GenericHmacSettings:
        """Read and check the settings in a source's options.

        Raises:
            ConfigError: when an option is missing, invalid or inconsistent.
        """
        header = option_text(options, "header", "").strip()
        if not header:
            raise ConfigError("scheme 'generic-hmac' needs header = '<signature header name>'")
        template = parse_template(option_text(options, "signed_content", "{body}"))
        timestamp_header = option_text(options, "timestamp_header", "").strip() or None
        uses_timestamp = any(field == TIMESTAMP_FIELD for _, field in template)
        if uses_timestamp and timestamp_header is None:
            raise ConfigError(
                "option signed_content uses {timestamp}; set timestamp_header = '<header name>'"
            )
        if timestamp_header is not None and not uses_timestamp:
            raise ConfigError(
                "option timestamp_header is set but signed_content does not contain {timestamp}; "
                "an unsigned timestamp cannot limit replays"
            )

        return cls(
            header=header,
            algorithm=option_choice(options, "algorithm", tuple(HASH_ALGORITHMS), "sha256"),
            encoding=option_choice(options, "encoding", SIGNATURE_ENCODINGS, "hex"),
            prefix=option_text(options, "prefix", ""),
            template=template,
            timestamp_header=timestamp_header,
        )

    def signed_content(self, body: bytes, timestamp_text: str = "") -> bytes:
        """Return the bytes to sign: the template with BODY and TIMESTAMP_TEXT filled in."""
        pieces: list[bytes] = []
        for literal, field in self.template:
            pieces.append(literal.encode())
            if field == BODY_FIELD:
                pieces.append(body)
            elif field == TIMESTAMP_FIELD:
                pieces.append(timestamp_text.encode())
        return b"".join(pieces)

    def digests(self, keys: Iterable[bytes], body: bytes, timestamp_text: str = "") -> list[bytes]:
        """Return the raw HMAC digest of the signed content under each key."""
        content = self.signed_content(body, timestamp_text)
        digestmod = HASH_ALGORITHMS[self.algorithm]
        return [hmac.new(key, content, digestmod).digest() for key in keys]

    def encode(self, digest: bytes) -> str:
        """Return the header value that carries DIGEST, prefix included."""
        text = base64.b64encode(digest).decode() if self.encoding == "base64" else digest.hex()
        return self.prefix + text

    def decode(self, value: str) -> bytes:
        """Return the raw digest in a received header value.

        Raises:
            VerificationError: `malformed_header` when the prefix is missing or
                the rest is not valid hex or base64.
        """
        text = strip_prefix(self.header, value, self.prefix).strip()
        try:
            if self.encoding == "base64":
                return base64.b64decode(text, validate=True)
            return bytes.fromhex(text)
        except (binascii.Error, ValueError):
            raise VerificationError(
                MALFORMED_HEADER, f"signature in {self.header} is not valid {self.encoding}"
            ) from None


class GenericHmacVerifier(Verifier):
    """Verify an HMAC signature whose header and signed content come from the options."""

    name = "generic-hmac"
    option_names = frozenset(
        {"header", "algorithm", "encoding", "prefix", "signed_content", "timestamp_header"}
    )

    def __init__(
        self,
        secrets: Sequence[str],
        tolerance_seconds: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(secrets, tolerance_seconds, options)
        self.settings = GenericHmacSettings.from_options(self.options)
        if self.settings.timestamp_header is None:
            self.tolerance_seconds = None
        elif tolerance_seconds is None:
            self.tolerance_seconds = DEFAULT_TOLERANCE_SECONDS
        # The signature header is named by the config, so it may be missing
        # from the audit log's built-in list of credential headers.
        self.credential_headers = frozenset({self.settings.header.lower()})
        self.signed_headers = self.credential_headers
        if self.settings.timestamp_header is not None:
            self.signed_headers |= {self.settings.timestamp_header.lower()}
            self.signs_timestamp = True

    def check(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        settings = self.settings
        _, value = require_header(headers, settings.header.lower())
        timestamp_text = ""
        timestamp: int | None = None
        if settings.timestamp_header is not None:
            _, timestamp_text = require_header(headers, settings.timestamp_header.lower())
            timestamp_text = timestamp_text.strip()
            timestamp = parse_unix_seconds(settings.timestamp_header, timestamp_text)
        received = settings.decode(value)

        expected = settings.digests(self.keys, body, timestamp_text)
        if not matches_any(expected, [received]):
            raise VerificationError(
                NO_MATCHING_SIGNATURE, f"{settings.header} does not match a secret"
            )

        if timestamp is not None:
            check_tolerance(timestamp, now, self.tolerance_seconds)

    def replay_identity(self, headers: Mapping[str, str], body: bytes) -> ReplayIdentity:
        timestamp_header = self.settings.timestamp_header
        if timestamp_header is None:
            return ReplayIdentity()
        timestamp_text = headers[timestamp_header.lower()].strip()
        timestamp = parse_unix_seconds(timestamp_header, timestamp_text)
        return ReplayIdentity(replay_material(timestamp_text), timestamp)
