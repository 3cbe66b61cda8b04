"""GitLab: the secret token in `X-Gitlab-Token`, or a Standard Webhooks signing token.

With the default option `signing = "secret-token"`, each secret is a webhook
secret token, which GitLab sends unchanged in `X-Gitlab-Token`. The token is
compared in constant time with every secret, and the body is not protected.

With `signing = "standard-webhooks"`, each secret is a GitLab signing token
(`whsec_<base64>`), and the request is verified exactly as Standard
Webhooks: `webhook-id`, `webhook-timestamp` and `webhook-signature`, key
base64-decoded after `whsec_`, 300 s window. `X-Gitlab-Token` is then ignored.

Either way `Idempotency-Key` (equal to `webhook-id` when signed) identifies
the delivery across retries, and `X-Gitlab-Event` names the hook type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hookline.errors import VerificationError
from ingest.schemes.base import ReplayIdentity, Verifier, option_choice, require_header
from ingest.schemes.standard_webhooks import StandardWebhooksVerifier
from ingest.schemes.token import NO_MATCHING_TOKEN, header_bytes, matches_token, token_digest

HEADER = "x-gitlab-token"
SECRET_TOKEN = "secret-token"
STANDARD_WEBHOOKS = "standard-webhooks"


class GitLabVerifier(Verifier):
    """Verify GitLab's secret token, or its signing token with `signing = "standard-webhooks"`."""

    name = "gitlab"
    option_names = frozenset({"signing"})

    def __init__(
        self,
        secrets: Sequence[str],
        tolerance_seconds: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(secrets, tolerance_seconds, options)
        self.signing = option_choice(
            self.options, "signing", (SECRET_TOKEN, STANDARD_WEBHOOKS), SECRET_TOKEN
        )
        self.key_digests = [token_digest(key) for key in self.keys]
        self.signed: StandardWebhooksVerifier | None = None
        self.signed_headers = frozenset({HEADER})
        if self.signing == STANDARD_WEBHOOKS:
            self.signed = StandardWebhooksVerifier(secrets, tolerance_seconds)
            self.tolerance_seconds = self.signed.tolerance_seconds
            self.signed_headers = self.signed.signed_headers
            self.signs_timestamp = True

    def check(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        if self.signed is not None:
            self.signed.check(headers, body, now)
            return

        _, value = require_header(headers, HEADER)
        if not matches_token(self.key_digests, header_bytes(value.strip())):
            raise VerificationError(NO_MATCHING_TOKEN, "X-Gitlab-Token does not match a secret")

    def replay_identity(self, headers: Mapping[str, str], body: bytes) -> ReplayIdentity:
        if self.signed is not None:
            return self.signed.replay_identity(headers, body)
        return ReplayIdentity()
