"""The Markdown summary of one benchmark run, built from its results dictionary.

Every number in the summary comes from `results.json` of the same run. Targets are checked
here, and each check states the measured value, the target and how far apart they are.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIB = 2**20


@dataclass(frozen=True)
class Target:
    """A goal for one measured value: at least or at most LIMIT."""

    name: str
    limit: float
    at_least: bool
    unit: str = ""

    def check(self, value: float | None) -> str:
        """Return "met" or "missed" with the value, the limit and the distance between them."""
        if value is None or math.isnan(value):
            return f"not measured (target {self._limit_text()})"
        met = value >= self.limit if self.at_least else value <= self.limit
        comparison = f"{_number(value)}{self.unit} vs {self._limit_text()}"
        if met:
            return f"**met**: {comparison}"
        if self.at_least:
            short = (self.limit - value) / self.limit * 100
            return f"**missed**: {comparison}, {short:.0f} % below the target"
        over = value / self.limit
        return f"**missed**: {comparison}, {over:.1f} times the limit"

    def _limit_text(self) -> str:
        sign = ">=" if self.at_least else "<="
        return f"{sign} {_number(self.limit)}{self.unit}"


INGEST_VS_BARE = Target("hookline / bare Litestar throughput", 0.8, at_least=True)
INGEST_VS_EXPRESS = Target("hookline / Express throughput", 1.7, at_least=True)
INGEST_P99_OVER_P50 = Target("hookline p99 / p50", 3.0, at_least=False)
ROUTER_VS_LOOP = Target("router / aiokafka loop throughput", 0.6, at_least=True)
SINK_ROWS_PER_CORE = Target("audit store rows/s on one core", 200_000, at_least=True)
E2E_ROUTED_P99 = Target("p99 from 200 to routed record", 50.0, at_least=False, unit=" ms")


def _number(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.{digits}f}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        cells = [cell if isinstance(cell, str) else _number(cell) for cell in row]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def _machine(results: dict[str, Any]) -> list[str]:
    machine = results["machine"]
    start, end = results["load_average_start"], results.get("load_average_end")
    end_text = ", ".join(f"{value:.2f}" for value in end) if end else "n/a"
    return [
        f"- Command: `{results['command']}`",
        f"- Started {results['started_at']}, took {_number(results.get('duration_seconds'))} s",
        f"- Machine: {machine['nproc']} CPUs (`nproc`), {machine['cpu_model']} "
        f"(model name in /proc/cpuinfo), {machine['memory_total_mib']} MiB RAM, "
        f"Linux {machine['kernel']}",
        f"- Tools: Python {machine['python']}, Node.js {machine['node']}, {machine['java']}, "
        f"{machine['wrk']}",
        "- Load average (1, 5, 15 min) at start: "
        + ", ".join(f"{value:.2f}" for value in start)
        + f"; at end: {end_text}",
        "",
    ]


def _ingest(section: dict[str, Any], title: str) -> list[str]:
    lines = [f"## {title}", ""]
    lines.append(
        f"wrk: {section['connections']} connections, {section['wrk_threads']} thread(s), "
        f"{section['seconds']} s per run after a 2 s warm-up, {section['rounds']} rounds in "
        f"rotating order. Server on CPU {section['server_cpus']}, wrk on CPU "
        f"{section['wrk_cpus']}, Kafka broker on CPU {section['broker_cpus']}."
    )
    lines.append("")
    medians = section["medians"]
    rows = [
        [
            name,
            values["accepted_per_second"],
            values["latency_p50_ms"],
            values["latency_p99_ms"],
            values["rss_max_mib"],
            values.get("server_cpu_us_per_accepted"),
            values.get("server_cpu_fraction"),
            values.get("broker_cpu_fraction"),
            f"{values['status_errors']} / {values['socket_errors']}",
        ]
        for name, values in medians.items()
    ]
    lines += _table(
        [
            "server",
            "accepted req/s (median)",
            "p50 ms",
            "p99 ms",
            "max RSS MiB",
            "server CPU µs per request",
            "server CPU, cores",
            "broker CPU, cores",
            "non-2xx / socket errors (all rounds)",
        ],
        rows,
    )
    names = list(section["runs"])
    rounds = len(section["runs"][names[0]])
    per_round = [
        [str(index + 1), *(section["runs"][name][index]["accepted_per_second"] for name in names)]
        for index in range(rounds)
    ]
    lines += _table(["round", *(f"{name} req/s" for name in names)], per_round)
    return lines


def _ingest_targets(section: dict[str, Any]) -> list[str]:
    ratios = section["ratios"]
    lines = []
    bare = ratios.get("hookline/bare")
    express = ratios.get("hookline/express")
    if bare:
        lines.append(f"- {INGEST_VS_BARE.name}: {INGEST_VS_BARE.check(bare['of_medians'])}")
    if express:
        lines.append(
            f"- {INGEST_VS_EXPRESS.name}: {INGEST_VS_EXPRESS.check(express['of_medians'])}"
        )
    lines.append(
        f"- {INGEST_P99_OVER_P50.name}: "
        f"{INGEST_P99_OVER_P50.check(section.get('hookline_p99_over_p50'))}"
    )
    for key, value in ratios.items():
        per_round = ", ".join(_number(ratio) for ratio in value["per_round"])
        lines.append(f"- {key} per round: {per_round}")
        lines.append(
            f"- {key} from the median CPU time per request (requests per CPU-second): "
            f"{_number(value.get('of_cpu_per_request'))}"
        )
    return lines + [""]


def _profile(section: dict[str, Any]) -> list[str]:
    wrk = section["wrk_while_profiling"]
    lines = [
        "## Where ingest spends its time",
        "",
        f"py-spy, {section['samples']} samples at {section['samples_per_second']} Hz of the "
        "pinned hookline ingest under the same wrk load "
        f"({_number(wrk['accepted_per_second'])} req/s while profiled). Flame graph: "
        "`bench/results/ingest.svg`. Each sample counts for the layer of its frame nearest "
        "the leaf that belongs to one.",
        "",
    ]
    if section.get("complete_share") is not None:
        lines += [
            f"{section['complete_share'] * 100:.0f} % of the samples have a complete stack. "
            "py-spy read the others without pausing the process, and they lack their outer "
            "frames, so the inclusive shares below are lower bounds.",
            "",
        ]
    return lines + _profile_tables(section)


def _percent(share: float) -> str:
    return f"{share * 100:.1f} %"


def _profile_tables(section: dict[str, Any]) -> list[str]:
    """Return the layer table, with a column per thread when known, and the function table."""
    threads = list(section.get("threads") or {})
    by_thread = section.get("layers_by_thread") or {}
    rows = [
        [
            layer,
            _percent(share),
            *(_percent(by_thread[thread].get(layer, 0.0)) for thread in threads),
        ]
        for layer, share in section["layers"].items()
    ]
    lines = _table(["layer", "share of samples", *(f"of which {name}" for name in threads)], rows)
    lines += _table(
        ["function (inclusive)", "share of samples"],
        [[name, _percent(share)] for name, share in section["functions"]],
    )
    return lines


def _router_profile(section: dict[str, Any]) -> list[str]:
    lines = ["## Where the router spends its time", ""]
    if "skipped" in section:
        return lines + [f"Not profiled: {section['skipped']}", ""]
    if "error" in section:
        return lines + [f"Profiling failed: {section['error']}", ""]

    timing = section["router_while_profiling"]
    rate = section["samples_per_second"]
    threads = ", ".join(f"{name} {_percent(share)}" for name, share in section["threads"].items())
    lines += [
        f"py-spy, {section['samples']} samples at {rate} Hz over {section['seconds']} s of a "
        "second router run that routes the same raw records in its own consumer group, pinned "
        f"like the timed run ({_number(timing['records_per_second'])} events/s and "
        f"{_number(timing.get('cpu_us_per_record'))} µs CPU per event while profiled; the "
        "router table above comes from the run without py-spy). Flame graph: `router.svg`, "
        "collapsed stacks: `router-stacks.txt`, both next to this summary. Each sample counts "
        "for the layer of its frame nearest the leaf that belongs to one.",
        "",
        "py-spy's `--idle` was off, so a thread waiting in `select` or on a lock adds no "
        "samples, and the shares are of the time a thread was running or ready to run. In the "
        f"{_number(section['wall_seconds_while_recording'])} s of the stacks recording the "
        f"router used {_number(section['cpu_seconds_while_recording'])} CPU-seconds (from "
        "/proc). Time in C code (orjson, msgspec, aiokafka's record batches) counts for the "
        "Python function that called it.",
        "",
        f"Samples by thread: {threads}. "
        f"{section['complete_share'] * 100:.0f} % of the samples have a complete stack; the "
        "others lack their outer frames, so the inclusive shares below are lower bounds.",
        "",
    ]
    if section.get("py_spy_errors") is not None:
        lines += [
            f"py-spy reported {section['py_spy_errors']} errors (stacks it could not read) "
            f"with {section['py_spy_samples']} samples, and the failed reads are missing "
            "from the shares.",
            "",
        ]
    idle_after = section.get("last_output_after_stacks_seconds")
    if idle_after is not None and idle_after < 0:
        lines += [
            f"The router ran out of records {_number(-idle_after)} s before the stacks "
            "recording ended, so the profile includes idle time. Raise --router-records.",
            "",
        ]
    return lines + _profile_tables(section)


def _router(section: dict[str, Any]) -> list[str]:
    rows = []
    for name in ("router", "aiokafka_loop"):
        run = section[name]
        rows.append(
            [
                name,
                run["records_per_second"],
                run["seconds_first_to_last"],
                run["seconds_from_start_to_first_output"],
                run.get("cpu_us_per_record"),
                run["rss_max_bytes"] / MIB,
            ]
        )
    lines = [
        "## Router",
        "",
        f"{section['records']} pre-produced raw records (bodies of "
        f"{_number(section['body_bytes_mean'])} bytes on average), every event id distinct. "
        f"Each worker pinned to CPU {section['worker_cpus']}, the broker on CPU "
        f"{section['broker_cpus']}. Rate from the create times of the records each produced.",
        "",
    ]
    lines += _table(
        [
            "worker",
            "events/s",
            "s first to last output",
            "s from start to first output",
            "worker CPU µs per event",
            "max RSS MiB",
        ],
        rows,
    )
    lines.append(
        f"- {ROUTER_VS_LOOP.name}: {ROUTER_VS_LOOP.check(section['ratio_router_to_loop'])}"
    )
    lines.append(
        "- the same from the CPU time per event (events per CPU-second): "
        f"{_number(section.get('ratio_router_to_loop_by_cpu'))}"
    )
    return lines + [""]


def _sink(store: dict[str, Any] | None, sink: dict[str, Any] | None) -> list[str]:
    lines = ["## Audit sink", ""]
    best: float | None = None
    if store:
        lines.append(
            f"Store layer alone (`AuditStore.insert` of pre-built rows, "
            f"{store['rows_per_batch_size']} rows per batch size, rows of "
            f"{_number(store['row_bytes_mean'])} body bytes), pinned to CPU {store['cpus']}. "
            f"Building a row from a Kafka record (`sinks.rows.event_row`) took "
            f"{_number(store['event_row_us_per_row'])} µs, outside these timings."
        )
        lines.append("")
        rows = [
            [
                size,
                run["rows_per_second"],
                run.get("rows_per_cpu_second"),
                run["insert_p50_ms"],
                run["insert_p99_ms"],
            ]
            for size, run in store["batches"].items()
        ]
        lines += _table(
            ["rows per insert", "rows/s", "rows per CPU-second", "insert p50 ms", "insert p99 ms"],
            rows,
        )
        best = max(run["rows_per_second"] for run in store["batches"].values())
        lines.append(
            f"- {SINK_ROWS_PER_CORE.name} (best batch size): {SINK_ROWS_PER_CORE.check(best)}"
        )
        best_cpu = max(
            (run.get("rows_per_cpu_second") or 0.0 for run in store["batches"].values()),
            default=0.0,
        )
        lines.append(
            f"- the same per CPU-second of the store process: {SINK_ROWS_PER_CORE.check(best_cpu)}"
        )
        lines.append("")
    if sink:
        lines.append(
            f"Whole sink (`hookline sink`) reading {sink['records']} pre-produced records "
            f"from Kafka, pinned to CPU {sink['sink_cpus']}, broker on CPU "
            f"{sink['broker_cpus']}. Rate from the `inserted_at` of the stored rows."
        )
        lines.append("")
        rows = [
            [
                batch,
                run["rows_per_second"],
                run["inserts"],
                run["rows_per_insert_mean"],
                run.get("cpu_us_per_row"),
                run["rss_max_bytes"] / MIB,
            ]
            for batch, run in sink["runs"].items()
        ]
        lines += _table(
            [
                "batch_max_rows",
                "rows/s",
                "inserts",
                "rows per insert",
                "sink CPU µs per row",
                "max RSS MiB",
            ],
            rows,
        )
    return lines


def _latency_rows(section: dict[str, Any]) -> list[list[Any]]:
    labels = {
        "ingest_response": "request sent to 200 received",
        "to_routed_read_committed": "200 to routed record, read_committed",
        "to_routed_read_uncommitted": "200 to routed record, read_uncommitted",
        "to_stored_row": "200 to row inserted (`inserted_at`)",
    }
    return [
        [
            label,
            section[key]["p50_ms"],
            section[key]["p99_ms"],
            section[key]["max_ms"],
            f"{section[key]['events']} / {section[key]['missing']}",
        ]
        for key, label in labels.items()
    ]


def _end_to_end(section: dict[str, Any]) -> list[str]:
    lines = [
        "## End to end",
        "",
        f"{_number(section['rate_per_second'])} requests/s for {_number(section['seconds'])} s "
        f"({section['sent']} sent, {section['accepted']} answered 200; statuses "
        f"{section['statuses']}); {section['placement']}.",
        "",
    ]
    lines += _table(
        ["interval", "p50 ms", "p99 ms", "max ms", "events / missing"], _latency_rows(section)
    )
    routed = section["to_routed_read_committed"]["p99_ms"]
    lines.append(f"- {E2E_ROUTED_P99.name} (read_committed): {E2E_ROUTED_P99.check(routed)}")
    uncommitted = section["to_routed_read_uncommitted"]["p99_ms"]
    lines.append(
        f"- the same for read_uncommitted, before the transaction commits: "
        f"{E2E_ROUTED_P99.check(uncommitted)}"
    )
    return lines + [""]


def _memory(results: dict[str, Any]) -> list[str]:
    lines = ["## Memory (RSS)", ""]
    ingest = results.get("ingest")
    if ingest:
        rows = [[name, values["rss_max_mib"]] for name, values in ingest["medians"].items()]
        lines.append("Ingest servers under wrk load (median of the per-run maximum):")
        lines.append("")
        lines += _table(["server", "max RSS MiB"], rows)
    e2e = results.get("end_to_end")
    if e2e:
        lines.append(
            f"Pipeline processes at idle and during the {_number(e2e['seconds'])} s run at "
            f"{_number(e2e['rate_per_second'])} requests/s, sampled every "
            f"{_number(e2e['rss_interval_seconds'])} s. The slope is a least-squares fit over "
            "the second half of the samples."
        )
        lines.append("")
        rows = []
        for name, growth in e2e["memory_growth"].items():
            rows.append(
                [
                    name,
                    e2e["rss_idle_mib"].get(name),
                    growth["first_mib"],
                    growth["last_mib"],
                    growth["max_mib"],
                    growth["second_half_slope_mib_per_minute"],
                ]
            )
        lines += _table(
            [
                "process",
                "idle MiB",
                "first sample MiB",
                "last sample MiB",
                "max MiB",
                "MiB/min, second half",
            ],
            rows,
        )
    return lines


def _experiment(section: dict[str, Any]) -> list[str]:
    lines = [
        "## Ingest against a baseline commit",
        "",
        f"Baseline: `{section['baseline_ref']}` ({section['baseline_commit'][:12]}); "
        f"`hookline` is this checkout. Both servers pinned to CPU "
        f"{section['server_cpus']}, wrk and the broker on CPU {section['wrk_cpus']}, "
        f"{section['connections']} connections, {section['seconds']} s per run, "
        f"{section['rounds']} rounds in rotating order.",
        "",
    ]
    rows = [
        [
            name,
            values["accepted_per_second"],
            values["latency_p50_ms"],
            values["latency_p99_ms"],
            values.get("server_cpu_us_per_accepted"),
            values.get("server_cpu_fraction"),
            f"{values['status_errors']} / {values['socket_errors']}",
        ]
        for name, values in section["medians"].items()
    ]
    lines += _table(
        [
            "server",
            "accepted req/s (median)",
            "p50 ms",
            "p99 ms",
            "server CPU µs per request",
            "server CPU, cores",
            "non-2xx / socket errors",
        ],
        rows,
    )
    per_round = ", ".join(f"{gain * 100:+.0f} %" for gain in section["per_round_gain"])
    lines.append(
        f"- Throughput change of the medians: {section['gain'] * 100:+.0f} % "
        f"(per round: {per_round})"
    )
    if section.get("cpu_change") is not None:
        lines.append(
            f"- Change of server CPU time per request: {section['cpu_change'] * 100:+.0f} %"
        )
    return lines + [""]


def _errors(results: dict[str, Any]) -> list[str]:
    errors = results.get("errors") or {}
    if not errors:
        return []
    lines = ["## Stages that failed", ""]
    lines += [f"- {stage}: {message}" for stage, message in errors.items()]
    return lines + [""]


def render(results: dict[str, Any]) -> str:
    """Return the Markdown summary of RESULTS (the content of results.json)."""
    lines = ["# Benchmark summary", ""]
    lines += _machine(results)
    if results.get("ingest"):
        lines += _ingest(results["ingest"], "Ingest, one core each")
        lines += _ingest_targets(results["ingest"])
    if results.get("ingest_two_workers"):
        lines += _ingest(results["ingest_two_workers"], "Ingest, two workers each")
        lines += _ingest_targets(results["ingest_two_workers"])
    if results.get("profile"):
        lines += _profile(results["profile"])
    if results.get("router"):
        lines += _router(results["router"])
        if results["router"].get("profile"):
            lines += _router_profile(results["router"]["profile"])
    if results.get("sink_store") or results.get("sink"):
        lines += _sink(results.get("sink_store"), results.get("sink"))
    if results.get("end_to_end"):
        lines += _end_to_end(results["end_to_end"])
    if results.get("baseline_experiment"):
        lines += _experiment(results["baseline_experiment"])
    lines += _memory(results)
    lines += _errors(results)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Print the summary of a results.json file: `python -m bench.report RESULTS_JSON`."""
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=main.__doc__)
    parser.add_argument("results", type=Path, help="results.json written by bench.run")
    arguments = parser.parse_args(argv)
    print(render(json.loads(arguments.results.read_text())), end="")


if __name__ == "__main__":
    main()
