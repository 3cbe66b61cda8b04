"""Signature verification schemes, one module each, registered by name.

To add a scheme, write a `Verifier` subclass in its own module and add it to
`SCHEMES`. A source selects its scheme with `scheme = "<name>"` in the config.
"""

from __future__ import annotations

from hookline.config import SourceConfig
from hookline.errors import ConfigError
from ingest.schemes.base import Verifier
from ingest.schemes.discord import DiscordVerifier
from ingest.schemes.generic_hmac import GenericHmacVerifier
from ingest.schemes.github import GitHubVerifier
from ingest.schemes.gitlab import GitLabVerifier
from ingest.schemes.intercom import IntercomVerifier
from ingest.schemes.linear import LinearVerifier
from ingest.schemes.mailgun import MailgunVerifier
from ingest.schemes.paddle import PaddleVerifier
from ingest.schemes.sendgrid import SendGridVerifier
from ingest.schemes.shopify import ShopifyVerifier
from ingest.schemes.slack import SlackVerifier
from ingest.schemes.square import SquareVerifier
from ingest.schemes.standard_webhooks import StandardWebhooksVerifier
from ingest.schemes.stripe import StripeVerifier
from ingest.schemes.token import BasicAuthVerifier, StaticTokenVerifier
from ingest.schemes.twilio import TwilioVerifier
from ingest.schemes.typeform import TypeformVerifier
from ingest.schemes.zoom import ZoomVerifier

SCHEMES: dict[str, type[Verifier]] = {
    verifier.name: verifier
    for verifier in (
        StripeVerifier,
        GitHubVerifier,
        StandardWebhooksVerifier,
        ShopifyVerifier,
        SlackVerifier,
        ZoomVerifier,
        LinearVerifier,
        IntercomVerifier,
        TypeformVerifier,
        PaddleVerifier,
        GitLabVerifier,
        GenericHmacVerifier,
        StaticTokenVerifier,
        BasicAuthVerifier,
        TwilioVerifier,
        SquareVerifier,
        DiscordVerifier,
        SendGridVerifier,
        MailgunVerifier,
    )
}


def create_verifier(source: SourceConfig) -> Verifier:
    """Build the verifier for SOURCE from its scheme name.

    Raises:
        ConfigError: when the scheme is unknown or its secrets are unusable.
    """
    verifier_class = SCHEMES.get(source.scheme)
    if verifier_class is None:
        raise ConfigError(
            f"source {source.name!r}: scheme {source.scheme!r} is unknown; "
            f"use one of {', '.join(sorted(SCHEMES))}"
        )
    return verifier_class.from_source(source)


__all__ = ["SCHEMES", "Verifier", "create_verifier"]
