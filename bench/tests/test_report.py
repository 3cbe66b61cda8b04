"""Unit tests of bench.report: target checks and the rendered summary."""

import math

from bench.pipeline_bench import memory_growth
from bench.report import Target, render
from bench.sink_bench import sink_rate


def test_target_at_least_met():
    assert Target("x", 0.8, at_least=True).check(0.9).startswith("**met**")


def test_target_at_least_missed_says_how_far():
    text = Target("x", 0.8, at_least=True).check(0.4)
    assert text.startswith("**missed**")
    assert "50 % below the target" in text


def test_target_at_most_missed_says_times():
    text = Target("x", 50.0, at_least=False, unit=" ms").check(1000.0)
    assert "20.0 times the limit" in text


def test_target_without_value():
    assert Target("x", 1.0, at_least=True).check(math.nan).startswith("not measured")


def test_sink_rate_leaves_first_insert_out():
    inserts = [(1_000_000, 500), (1_500_000, 1000), (2_000_000, 1000)]
    assert sink_rate(inserts) == 2000.0
    assert sink_rate(inserts[:1]) is None


def test_memory_growth_slope_uses_second_half():
    samples = [{"seconds": 60.0 * index, "a": (100 + index) * 2**20} for index in range(6)]
    growth = memory_growth(samples, ["a"])["a"]
    assert growth["first_mib"] == 100
    assert growth["last_mib"] == 105
    assert growth["second_half_slope_mib_per_minute"] == 1.0


def _ingest_section(hookline_rate, bare_rate):
    def run(rate):
        return {
            "accepted_per_second": rate,
            "latency_p50_us": 5000,
            "latency_p99_us": 9000,
            "rss_max_bytes": 50 * 2**20,
            "status_errors": 0,
        }

    return {
        "connections": 64,
        "wrk_threads": 1,
        "seconds": 10,
        "rounds": 1,
        "server_cpus": "0",
        "wrk_cpus": "1",
        "broker_cpus": "1",
        "runs": {"hookline": [run(hookline_rate)], "bare": [run(bare_rate)]},
        "medians": {
            name: {
                "accepted_per_second": rate,
                "latency_p50_ms": 5.0,
                "latency_p99_ms": 9.0,
                "rss_max_mib": 50.0,
                "server_cpu_us_per_accepted": 300.0,
                "status_errors": 0,
                "socket_errors": 0,
            }
            for name, rate in (("hookline", hookline_rate), ("bare", bare_rate))
        },
        "ratios": {"hookline/bare": {"of_medians": hookline_rate / bare_rate, "per_round": [0.5]}},
        "hookline_p99_over_p50": 1.8,
    }


def test_render_states_machine_and_targets():
    results = {
        "command": "python -m bench.run",
        "started_at": "2026-01-01T00:00:00+00:00",
        "duration_seconds": 500.0,
        "machine": {
            "nproc": 2,
            "cpu_model": "Test CPU",
            "memory_total_mib": 1024,
            "kernel": "6.1",
            "python": "3.11.7",
            "node": "v20",
            "java": "openjdk 17",
            "wrk": "wrk 4.1.0",
        },
        "load_average_start": [1.0, 2.0, 3.0],
        "load_average_end": [1.5, 2.0, 3.0],
        "ingest": _ingest_section(1000.0, 2000.0),
        "errors": {"router": "RuntimeError: broken"},
    }
    text = render(results)
    assert "2 CPUs" in text
    assert "Test CPU" in text
    assert "`python -m bench.run`" in text
    assert "**missed**: 0.50 vs >= 0.80" in text
    assert "**met**: 1.80 vs <= 3.00" in text
    assert "router: RuntimeError: broken" in text
