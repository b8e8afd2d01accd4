"""Measure the reference capstone side by side: batching off vs on, concurrency 1 and 32 (loopback only).

Both variants run as real uvicorn processes on 127.0.0.1 and are measured in the same run, interleaved,
with wrk (C, so the client is not the bottleneck) when installed, else the project's own load generator.
Prints a Markdown table and writes benchmarks/results/capstone.json. Bounded: about 2 minutes.

    .venv/bin/python benchmarks/capstone.py [--duration-s 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
from pathlib import Path

from course_utils.bench import LoadResult, run_closed_loop, run_wrk
from course_utils.config import PROJECT_ROOT, get_settings
from course_utils.server import ServerProcess

APP_DIR = PROJECT_ROOT / "solutions" / "capstone" / "src"
RESULTS = Path(__file__).resolve().parent / "results"
BODY = {"text": "The hotel staff were friendly and the room was spotless."}
VARIANTS = {"no batching": {"MAX_BATCH_SIZE": "1"}, "batching (16, 2 ms)": {"MAX_BATCH_SIZE": "16"}}
CONCURRENCY = (1, 32)


def _measure(url: str, concurrency: int, duration_s: float) -> LoadResult:
    if shutil.which("wrk"):
        return run_wrk(
            url, concurrency=concurrency, duration_s=duration_s, method="POST", body=json.dumps(BODY)
        )
    return run_closed_loop(
        url, concurrency=concurrency, duration_s=duration_s, method="POST", json=BODY, progress=False
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the median is reported")
    args = parser.parse_args()

    runs: dict[tuple[str, int], list[LoadResult]] = {}
    for _ in range(args.rounds):
        for name, env in VARIANTS.items():
            server_env = {"MODEL_DIR": str(get_settings().model_dir), "UVICORN_ACCESS_LOG": "false", **env}
            with ServerProcess("app:app", app_dir=APP_DIR, env=server_env, health_path="/ready") as server:
                for concurrency in CONCURRENCY:
                    _measure(server.url + "/predict", concurrency, 2.0)  # warm-up, not recorded
                    result = _measure(server.url + "/predict", concurrency, args.duration_s)
                    runs.setdefault((name, concurrency), []).append(result)

    rows = []
    for (name, concurrency), results in runs.items():
        rows.append(
            {
                "variant": name,
                "concurrency": concurrency,
                "rps": round(statistics.median(r.throughput_rps for r in results), 1),
                "p50_ms": round(statistics.median(r.p50_ms for r in results), 2),
                "p99_ms": round(statistics.median(r.p99_ms for r in results), 2),
                "errors": sum(r.n_errors + sum(r.status_counts.values()) - r.n_ok for r in results),
            }
        )
    print(
        f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}, "
        f"client: {'wrk' if shutil.which('wrk') else 'course_utils.bench'}"
    )
    print("| variant | concurrency | requests/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['variant']} | {row['concurrency']} | {row['rps']} | {row['p50_ms']} | {row['p99_ms']} "
            f"| {row['errors']} |"
        )
    by_key = {(r["variant"], r["concurrency"]): r["rps"] for r in rows}
    ratio = by_key[("batching (16, 2 ms)", 32)] / by_key[("no batching", 32)]
    print(f"\nbatching speed-up at concurrency 32: {ratio:.2f}x")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "capstone.json").write_text(
        json.dumps({"rows": rows, "batching_speedup_c32": ratio}, indent=2)
    )


if __name__ == "__main__":
    main()
