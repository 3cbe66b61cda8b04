"""Twilio: `X-Twilio-Signature: <base64 HMAC-SHA1(auth token, URL + parameters)>`.

The signed text is the URL that Twilio requested, query string included,
followed for form-encoded bodies by every POST parameter as name + value with
no separators, sorted by name and then by value. Repeated pairs count once,
as in twilio-python 9's `RequestValidator`. Twilio signs no timestamp, so
there is no replay window.

The URL is the `public_url` option: the URL configured at Twilio. It is never
rebuilt from the request's Host or X-Forwarded-* headers, because behind a
TLS-terminating proxy those describe the internal hop, and trusting them
would let any client choose the signed URL. The URL is tried as configured
and with its default port (443 for https, 80 for http) added or removed,
because Twilio's SDKs accept both forms.

For any body that is not form-encoded, Twilio appends `bodySHA256=<hex
SHA-256 of the raw body>` to the query string and signs the URL alone. The
verifier appends the hash of the body it received, so a swapped body fails
the signature. When `public_url` already contains a `bodySHA256` parameter,
the URL is used as is and the parameter must equal the hash of the body,
or the request is rejected with 403.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from hookline.errors import ConfigError, VerificationError
from ingest.schemes.base import (
    NO_MATCHING_SIGNATURE,
    Verifier,
    matches_any,
    require_header,
    signature_bytes,
)

HEADER = "x-twilio-signature"
BODY_HASH_PARAMETER = "bodySHA256"
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
BODY_HASH_MISMATCH = "body_hash_mismatch"
DEFAULT_PORTS = {"https": 443, "http": 80}


def require_url_option(options: Mapping[str, Any], scheme: str, option: str) -> str:
    """Return the absolute http(s) URL in OPTIONS[OPTION].

    Raises:
        ConfigError: when the option is missing or is not an http(s) URL.
    """
    url = options.get(option)
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(
            f"scheme {scheme!r} needs {option} = '<URL the provider calls>', "
            "copied from the provider's webhook settings"
        )
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ConfigError(f"{option} = {url!r} is invalid; use an absolute http:// or https:// URL")
    try:
        _ = parts.port
    except ValueError:
        raise ConfigError(f"{option} = {url!r} has an invalid port") from None
    return url


def url_variants(url: str) -> list[str]:
    """Return URL as given and with its scheme's default port added or removed.

    A URL with a port other than the default is returned alone.
    """
    parts = urlsplit(url)
    default_port = DEFAULT_PORTS.get(parts.scheme)
    userinfo, at, host_port = parts.netloc.rpartition("@")
    if default_port is None:
        return [url]

    if parts.port is None:
        other_host_port = f"{host_port}:{default_port}"
    elif parts.port == default_port:
        other_host_port = host_port.rpartition(":")[0]
    else:
        return [url]
    other = parts._replace(netloc=f"{userinfo}{at}{other_host_port}")
    return [url, urlunsplit(other)]


def query_parameter(url: str, name: str) -> str | None:
    """Return the first value of the query parameter NAME in URL, or None."""
    for key, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if key == name:
            return value
    return None


def with_body_hash(url: str, body_hash: str) -> str:
    """Return URL with `bodySHA256=<BODY_HASH>` appended to its query string."""
    parts = urlsplit(url)
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(query=f"{query}{BODY_HASH_PARAMETER}={body_hash}"))


def form_parameters(body: bytes) -> list[tuple[bytes, bytes]]:
    """Parse an `application/x-www-form-urlencoded` body into (name, value) bytes.

    Latin-1 maps each byte to one code point and back, so percent-escapes that
    are not UTF-8 and raw non-ASCII bytes survive unchanged. Blank values are
    kept, because Twilio signs them too.
    """
    pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in pairs]


def signed_payload(url: str, parameters: Iterable[tuple[bytes, bytes]] = ()) -> bytes:
    """Return the bytes Twilio signs: URL, then the sorted distinct name + value pairs."""
    return url.encode() + b"".join(name + value for name, value in sorted(set(parameters)))


def twilio_signature(key: bytes, payload: bytes) -> bytes:
    """Return the base64 HMAC-SHA1 of PAYLOAD, as sent in X-Twilio-Signature."""
    return base64.b64encode(hmac.new(key, payload, hashlib.sha1).digest())


def _media_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


class TwilioVerifier(Verifier):
    """Verify Twilio's `X-Twilio-Signature` header against the configured URL.

    Options:
        public_url: The webhook URL as configured at Twilio, with its query
            string. Required.
    """

    name = "twilio"
    option_names = frozenset({"public_url"})
    signed_headers = frozenset({HEADER})

    def __init__(
        self,
        secrets: Sequence[str],
        tolerance_seconds: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(secrets, tolerance_seconds, options)
        self.public_url = require_url_option(self.options, self.name, "public_url")
        self.fixed_body_hash = query_parameter(self.public_url, BODY_HASH_PARAMETER)

    def check(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        _, value = require_header(headers, HEADER)
        body_hash = hashlib.sha256(body).hexdigest()
        parameters: list[tuple[bytes, bytes]] = []
        if self.fixed_body_hash is not None:
            url = self.public_url
        elif _media_type(headers.get("content-type", "")) == FORM_MEDIA_TYPE:
            url = self.public_url
            parameters = form_parameters(body)
        else:
            url = with_body_hash(self.public_url, body_hash)

        expected = [
            twilio_signature(key, signed_payload(variant, parameters))
            for key in self.keys
            for variant in url_variants(url)
        ]
        if not matches_any(expected, [signature_bytes(value.strip())]):
            raise VerificationError(
                NO_MATCHING_SIGNATURE, "X-Twilio-Signature does not match public_url and a secret"
            )

        if self.fixed_body_hash is not None and not hmac.compare_digest(
            self.fixed_body_hash.lower().encode(), body_hash.encode()
        ):
            raise VerificationError(
                BODY_HASH_MISMATCH,
                "SHA-256 of the body does not equal the bodySHA256 parameter of public_url",
                status=403,
            )
