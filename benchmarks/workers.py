"""Benchmark (not a test): requests/s of the reference with one uvicorn worker against two, side by side.

    .venv/bin/python benchmarks/workers.py [--rounds 3] [--duration-s 10] [--concurrency 32]

Both services run at once (`python src/serve.py`, WORKERS=1 and WORKERS=2, on 127.0.0.1) and wrk loads them
in alternation, round after round, so that whatever else the machine is doing weighs on both alike. Prints a
JSON line per run and the ratio of the medians. Each worker process sizes its ONNX Runtime threads from the
cores left after one for HTTP (`ServiceSettings.threads_per_worker`), so two workers do not oversubscribe.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from course_utils.bench import run_wrk
from course_utils.config import PROJECT_ROOT, get_settings
from course_utils.server import ServerProcess

SERVE_SCRIPT = PROJECT_ROOT / "solutions" / "capstone" / "src" / "serve.py"
BODY = json.dumps({"text": "A short review: the plot was thin but the acting carried the film."})


def start(workers: int, folder: Path) -> ServerProcess:
    env = {"MODEL_DIR": str(get_settings().model_dir), "WORKERS": str(workers), "TMPDIR": str(folder)}
    server = ServerProcess(
        command=[sys.executable, str(SERVE_SCRIPT)],
        env=env,
        health_path="/ready",  # loaded and warmed up
        start_timeout_s=180,
        log_path=folder / f"workers-{workers}.log",
    )
    return server.start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration-s", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="workers-bench-") as tmp:
        servers: dict[int, ServerProcess] = {}
        try:
            for workers in (1, 2):  # inside the try: a failed second start still stops the first server
                servers[workers] = start(workers, Path(tmp))
            throughput: dict[int, list[float]] = {1: [], 2: []}
            for round_ in range(args.rounds):
                for workers, server in servers.items():
                    result = run_wrk(
                        server.url + "/predict",
                        method="POST",
                        body=BODY,
                        concurrency=args.concurrency,
                        duration_s=args.duration_s,
                    )
                    throughput[workers].append(result.throughput_rps)
                    line = {"round": round_, "workers": workers, "rps": round(result.throughput_rps, 1)}
                    line |= {"p50_ms": round(result.p50_ms, 1), "p99_ms": round(result.p99_ms, 1)}
                    line["non_200"] = {k: v for k, v in result.status_counts.items() if k != 200}
                    print(json.dumps(line), flush=True)
        finally:
            for server in servers.values():
                server.stop()
    one, two = (statistics.median(throughput[w]) for w in (1, 2))
    print(
        json.dumps(
            {
                "median_rps_1_worker": round(one, 1),
                "median_rps_2_workers": round(two, 1),
                "ratio_2_over_1": round(two / one, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
