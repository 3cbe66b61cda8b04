"""Ingest: the HTTP front door of Hookline.

Providers POST webhooks to `/webhooks/<source>`. Each request is checked
against its source's config (body size, content type, signature). An accepted
request is produced to the Kafka topic `webhooks.raw`, and the response is 200
only after the broker acknowledged the record. A rejected request gets a 4xx
response and is recorded on `webhooks.rejected` for the audit log.
`ingest.app.create_app` builds the Litestar application and
`ingest.server.run` serves it.
"""
