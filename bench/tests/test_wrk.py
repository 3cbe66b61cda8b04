"""Unit tests of bench.wrk: reading the result line of post.lua."""

import pytest

from bench.wrk import WrkError, parse_result

OUTPUT = """Running 10s test @ http://127.0.0.1:8000/webhooks/stripe
  1 threads and 64 connections
BENCH_RESULT {"duration_us": 10000000, "requests": 20500, "bytes": 1, "connect_errors": 0, \
"read_errors": 0, "write_errors": 0, "status_errors": 500, "timeouts": 0, \
"latency_mean_us": 3000.5, "latency_p50_us": 2500, "latency_p90_us": 4000, \
"latency_p99_us": 9000, "latency_max_us": 20000}
"""


def test_parse_result_reads_bench_line():
    result = parse_result(OUTPUT)
    assert result.requests == 20500
    assert result.latency_p99_us == 9000


def test_accepted_excludes_error_statuses():
    result = parse_result(OUTPUT)
    assert result.accepted == 20000
    assert result.accepted_per_second == pytest.approx(2000.0)


def test_parse_result_without_line_raises():
    with pytest.raises(WrkError, match="no BENCH_RESULT line"):
        parse_result("Running 10s test\n")
