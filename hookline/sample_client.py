"""Send signed sample webhooks to a running ingest, as a provider would."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable

import httpx

from hookline.config import SourceConfig

# A secret no source is configured with, in a form every scheme accepts
# (Standard Webhooks needs base64 after the `whsec_` prefix).
FORGED_SECRET = "whsec_" + base64.b64encode(b"hookline-forged-secret").decode()


def send_samples(
    source: SourceConfig,
    base_url: str,
    count: int,
    repeat: int,
    forge: bool,
    echo: Callable[[str], None],
) -> int:
    """POST COUNT distinct sample events, each REPEAT times, and echo each response.

    Returns the number of requests that did not get a 2xx response.
    """
    from ingest.samples import build_sample

    if forge:
        source = dataclasses.replace(source, secrets=(FORGED_SECRET,))

    url = f"{base_url.rstrip('/')}/webhooks/{source.name}"
    failures = 0
    with httpx.Client(timeout=30.0) as client:
        for _ in range(count):
            headers, body = build_sample(source)
            for _ in range(repeat):
                try:
                    response = client.post(url, content=body, headers=headers)
                except httpx.TransportError as error:
                    echo(f"POST {url} failed: {error}; is the pipeline running (make up)?")
                    failures += 1
                    continue
                echo(f"POST {url} -> {response.status_code} {response.text.strip()}")
                if not response.is_success:
                    failures += 1
    return failures
