"""Shared-secret schemes without a signature: a static token and HTTP basic auth.

`token`: the request carries one of the configured secrets in a header,
`Authorization: Bearer <token>` by default. Options: `header`, the name of
the header, and `prefix`, the text before the token. The prefix defaults to
`Bearer ` for the Authorization header and to nothing for any other header.

`basic-auth`: `Authorization: Basic <base64 user:password>` (RFC 7617), with
each secret written as `user:password`. User name and password are both
compared, and a 401 carries `WWW-Authenticate: Basic realm=...`.

Neither scheme protects the body or limits replays, so they suit senders
that can do nothing better, over HTTPS only. Values are compared through
SHA-256 digests with `hmac.compare_digest`, and the digests of the secrets
are computed once at start-up, so the time taken reveals neither the
content nor the length of a secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hookline.errors import ConfigError, VerificationError
from ingest.schemes.base import (
    MALFORMED_HEADER,
    Verifier,
    matches_any,
    option_text,
    require_header,
)

NO_MATCHING_TOKEN = "no_matching_token"
NO_MATCHING_CREDENTIALS = "no_matching_credentials"
AUTHORIZATION = "authorization"
BEARER_PREFIX = "Bearer "
BASIC_PREFIX = "Basic "


def header_bytes(value: str) -> bytes:
    """Return the bytes of a header value as they were sent.

    Ingest decodes header bytes as Latin-1, which this reverses, so a token
    with UTF-8 characters matches its configured form. Text outside Latin-1,
    which only a direct caller can pass, is encoded as UTF-8.
    """
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace")


def token_digest(value: bytes) -> bytes:
    """Return the SHA-256 digest under which a token or credential is compared."""
    return hashlib.sha256(value).digest()


def matches_token(key_digests: Iterable[bytes], received: bytes) -> bool:
    """Return True when RECEIVED has one of KEY_DIGESTS, compared in constant time."""
    return matches_any(key_digests, [token_digest(received)])


def token_header_format(options: Mapping[str, Any]) -> tuple[str, str]:
    """Return the header name and the prefix before the token, from a source's options.

    Raises:
        ConfigError: when `header` is empty or an option is not a string.
    """
    header = option_text(options, "header", "Authorization").strip()
    if not header:
        raise ConfigError("option header is empty; name the header that carries the token")
    default_prefix = BEARER_PREFIX if header.lower() == AUTHORIZATION else ""
    return header, option_text(options, "prefix", default_prefix)


def strip_auth_scheme(value: str, prefix: str) -> str | None:
    """Return VALUE after PREFIX, whose scheme name matches case-insensitively, or None."""
    value = value.strip()
    if value[: len(prefix)].lower() != prefix.lower():
        return None
    return value[len(prefix) :].strip()


class StaticTokenVerifier(Verifier):
    """Accept a request whose token header equals one of the secrets."""

    name = "token"
    option_names = frozenset({"header", "prefix"})

    def __init__(
        self,
        secrets: Sequence[str],
        tolerance_seconds: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(secrets, tolerance_seconds, options)
        self.header, self.prefix = token_header_format(self.options)
        self.key_digests = [token_digest(key) for key in self.keys]
        # The header is named by the config, so it may be missing from the
        # audit log's built-in list of credential headers.
        self.signed_headers = frozenset({self.header.lower()})
        self.credential_headers = self.signed_headers

    def check(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        _, value = require_header(headers, self.header.lower())
        token = strip_auth_scheme(value, self.prefix)
        if token is None:
            raise VerificationError(
                MALFORMED_HEADER, f"{self.header} must have the form {self.prefix}<token>"
            )

        if not matches_token(self.key_digests, header_bytes(token)):
            raise VerificationError(NO_MATCHING_TOKEN, f"{self.header} does not match a secret")


class BasicAuthVerifier(Verifier):
    """Accept a request whose basic-auth user and password equal one configured pair."""

    name = "basic-auth"
    option_names = frozenset({"realm"})
    signed_headers = frozenset({AUTHORIZATION})
    auth_challenge = 'Basic realm="hookline", charset="UTF-8"'

    def __init__(
        self,
        secrets: Sequence[str],
        tolerance_seconds: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(secrets, tolerance_seconds, options)
        realm = option_text(self.options, "realm", "hookline").replace('"', "")
        self.auth_challenge = f'Basic realm="{realm}", charset="UTF-8"'
        self.credentials = [
            (token_digest(user), token_digest(password))
            for user, _, password in (key.partition(b":") for key in self.keys)
        ]

    def decode_secret(self, secret: str) -> bytes:
        user, separator, _ = secret.partition(":")
        if not separator or not user:
            raise ConfigError(
                "a basic-auth secret must have the form user:password with a non-empty user"
            )
        return secret.encode()

    def check(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        _, value = require_header(headers, AUTHORIZATION)
        encoded = strip_auth_scheme(value, BASIC_PREFIX)
        if encoded is None:
            raise VerificationError(
                MALFORMED_HEADER, "Authorization must have the form Basic <base64 user:password>"
            )
        try:
            decoded = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise VerificationError(
                MALFORMED_HEADER, "Authorization Basic credentials are not valid base64"
            ) from None
        user, separator, password = decoded.partition(b":")
        if not separator:
            raise VerificationError(
                MALFORMED_HEADER, "Authorization Basic credentials have no ':' separator"
            )

        received_user, received_password = token_digest(user), token_digest(password)
        found = False
        for expected_user, expected_password in self.credentials:
            # Both comparisons always run, so timing does not reveal which part matched.
            user_matches = hmac.compare_digest(expected_user, received_user)
            password_matches = hmac.compare_digest(expected_password, received_password)
            found |= user_matches & password_matches
        if not found:
            raise VerificationError(
                NO_MATCHING_CREDENTIALS, "basic-auth user and password match no configured pair"
            )
