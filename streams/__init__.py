"""Router: the Faust application between `webhooks.raw` and the routed topics.

It consumes the raw deliveries that ingest wrote (`hookline.records`) and
drops repeats of a provider event within the deduplication window. It
produces each remaining event as a CloudEvent to the topics that the routing
rules (`router.rules_file`) name, else to the default topic of its source. An
event of unknown type goes to the unrouted topic, and a record the router
cannot read goes to the dead-letter topic. Entry points:
`streams.app.create_app`, `streams.worker.run` and
`streams.topics.ensure_topics`.
"""
