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


def _minimal_results():
    return {
        "command": "python -m bench.run",
        "started_at": "2026-01-01T00:00:00+00:00",
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
    }


def test_render_states_machine_and_targets():
    results = {
        **_minimal_results(),
        "duration_seconds": 500.0,
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


def _router_section(profile):
    def run(rate, cpu):
        return {
            "records_per_second": rate,
            "seconds_first_to_last": 8.0,
            "seconds_from_start_to_first_output": 2.0,
            "cpu_us_per_record": cpu,
            "rss_max_bytes": 90 * 2**20,
        }

    return {
        "records": 40000,
        "body_bytes_mean": 1067.0,
        "worker_cpus": "0",
        "broker_cpus": "1",
        "router": run(4500.0, 180.0),
        "aiokafka_loop": run(10000.0, 45.0),
        "ratio_router_to_loop": 0.45,
        "ratio_router_to_loop_by_cpu": 0.25,
        "profile": profile,
    }


ROUTER_PROFILE = {
    "samples": 400,
    "samples_per_second": 200,
    "seconds": 3,
    "idle_included": False,
    "py_spy_samples": 470,
    "py_spy_errors": 149,
    "cpu_seconds_while_recording": 2.8,
    "wall_seconds_while_recording": 3.0,
    "last_output_after_stacks_seconds": 4.0,
    "last_output_after_flamegraph_seconds": 1.0,
    "layers": {"Faust and mode": 0.7, "aiokafka consumer": 0.3},
    "threads": {"MainThread": 0.75, "Faust consumer thread": 0.25},
    "layers_by_thread": {
        "MainThread": {"Faust and mode": 0.7, "aiokafka consumer": 0.05},
        "Faust consumer thread": {"aiokafka consumer": 0.25},
    },
    "functions": [["route (streams/app.py)", 0.2]],
    "complete_share": 0.64,
    "router_while_profiling": {"records_per_second": 5197.0, "cpu_us_per_record": 185.0},
}


def test_render_router_profile_layers_by_thread():
    text = render({**_minimal_results(), "router": _router_section(ROUTER_PROFILE)})
    assert "## Where the router spends its time" in text
    assert (
        "| layer | share of samples | of which MainThread | of which Faust consumer thread |"
        in text
    )
    assert "| aiokafka consumer | 30.0 % | 5.0 % | 25.0 % |" in text
    assert "| route (streams/app.py) | 20.0 % |" in text


def test_render_router_profile_states_how_taken():
    text = render({**_minimal_results(), "router": _router_section(ROUTER_PROFILE)})
    assert "5,197 events/s and 185 µs CPU per event while profiled" in text
    assert "`--idle` was off" in text
    assert "Samples by thread: MainThread 75.0 %, Faust consumer thread 25.0 %" in text
    assert "py-spy reported 149 errors (stacks it could not read) with 470 samples" in text
    assert "ran out of records" not in text


def test_render_router_profile_idle_end_warns():
    profile = {**ROUTER_PROFILE, "last_output_after_stacks_seconds": -1.5}
    text = render({**_minimal_results(), "router": _router_section(profile)})
    assert "ran out of records 1.50 s before the stacks recording ended" in text


def test_render_router_profile_skipped():
    profile = {"skipped": "py-spy not found."}
    text = render({**_minimal_results(), "router": _router_section(profile)})
    assert "Not profiled: py-spy not found." in text


def test_render_ingest_profile_without_threads():
    profile = {
        "samples": 100,
        "samples_per_second": 200,
        "layers": {"Litestar": 1.0},
        "functions": [],
        "complete_share": 0.3,
        "wrk_while_profiling": {"accepted_per_second": 5000.0},
    }
    text = render({**_minimal_results(), "profile": profile})
    assert "| layer | share of samples |\n" in text
    assert "| Litestar | 100.0 % |" in text
