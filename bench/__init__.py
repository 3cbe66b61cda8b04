"""Benchmark suite of Hookline: ingest, router, audit sink, end to end, memory and a profile.

`make bench` (or `.venv/bin/python -m bench.run`) starts a Kafka broker of its own on free
loopback ports, runs every stage against it and writes `bench/results/results.json` (raw
numbers) and `bench/results/summary.md` (the tables of `docs/benchmarks.md`). Every process
the run starts is stopped at its end, also after an error or Ctrl-C.

Modules: `run` (command line and order of the stages), `ingest_bench`, `router_bench` with
`router_loop` (the aiokafka baseline process), `sink_bench` with `sink_store` (the store-layer
process), `pipeline_bench` (end-to-end latency, memory and soak), `profile`, `report`, and
the helpers `context`, `configs`, `processes`, `signed_requests`, `wrk`, `apps`, `machine`
and `stats`.
"""
