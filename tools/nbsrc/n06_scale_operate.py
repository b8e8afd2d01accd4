# ruff: noqa: E501  (notebook text: cell lines follow the notebook, not this file)
"""Notebook 06: scale and operate (dynamic batching, load testing, data drift, a canary rollout)."""

from __future__ import annotations

from nbformat.notebooknode import NotebookNode

from nbsrc._cells import answer, code, md, tests

NAME = "06_scale_operate"


def cells() -> list[NotebookNode]:
    return [
        md("""
        # 06 · Scale and operate

        **Goal.** Run the reference service (the capstone solution) like an operator: measure what dynamic
        batching buys, load-test it closed-loop and open-loop until queues form, detect data drift with PSI
        and the KS test, and roll out a new model variant to 10% of the traffic with a promote/rollback rule.

        **Time.** About 75 minutes. **Graded.** 3 exercises, 7 points.

        Every service here is a separate process on `127.0.0.1` (`course_utils.server.ServerProcess`), every
        load run is bounded in time, and every server is stopped by a stop cell; the clean-up cell at the end
        stops anything left.
        """),
        md("""
        ## 1. Setup

        Imports for the measurements, the tables and the plots.
        """),
        code("""
        import asyncio
        import importlib.util
        import inspect
        import math
        import random
        import sys
        import time

        import matplotlib.pyplot as plt
        import numpy as np
        import pandas as pd
        import requests
        from prometheus_client.parser import text_string_to_metric_families
        from tqdm.auto import tqdm
        """),
        md("""
        From the course library: settings, data, the load generators, the drift measures and the server
        runner. `settings.fast` (`COURSE_FAST=1`) shortens every load run; nothing else changes.
        """),
        code("""
        from course_utils.bench import results_frame, run_closed_loop, run_open_loop
        from course_utils.config import PROJECT_ROOT, get_settings
        from course_utils.data import load_out_of_domain, load_sentiment
        from course_utils.drift import DriftReport, ks, psi
        from course_utils.server import ServerProcess, running_servers, stop_all

        settings = get_settings()
        CAPSTONE_SRC = PROJECT_ROOT / "solutions" / "capstone" / "src"
        REQUEST = {"text": "The hotel staff were friendly and the room was spotless."}
        print(f"fast mode: {settings.fast}; model: {settings.model_dir}")
        """),
        md("""
        One function starts the reference service with extra environment variables. It runs in its own
        process (as in production), and `start()` returns once `/ready` answers 200: the model is loaded,
        checked and warmed up. `name=` means a re-run replaces the old process instead of leaking it.
        """),
        code("""
        def start_service(name, **env):
            \"\"\"The capstone reference service in its own process, ready to serve.\"\"\"
            env = {"MODEL_DIR": str(settings.model_dir), "LOG_LEVEL": "WARNING", **env}
            proc = ServerProcess("app:app", app_dir=CAPSTONE_SRC, env=env, health_path="/ready",
                                 name=name, start_timeout_s=90)
            return proc.start()
        """),
        md("""
        ## 2. Dynamic batching: read the rules

        The service does not call the model once per request. Its batcher (`solutions/capstone/src/batching.py`)
        collects requests into batches, because one forward pass over 16 short texts costs far less than 16
        passes over one. We load that module from its file to read and try it.
        """),
        code("""
        spec = importlib.util.spec_from_file_location("capstone_batching", CAPSTONE_SRC / "batching.py")
        batching = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = batching  # dataclasses look their module up here
        spec.loader.exec_module(batching)
        print(inspect.getsource(batching.DynamicBatcher._collect_batch))
        """),
        md("""
        Read the loop above with these rules in mind:

        1. A batch starts with the first request off the queue, and its deadline `flush_at` counts from when
           that request **arrived** (`arrived_at + max_wait_s`), not from when the worker got to it.
        2. The batch is sent when it holds `max_batch_size` requests **or** the deadline passes, whichever
           comes first. `max_batch_size=1` turns batching off.
        3. Waiting costs no CPU: it awaits the queue or one timer (`asyncio.wait`), never a polling loop.
        4. Elsewhere in the file: the queue is bounded (`QueueFullError` → 503), expired requests are dropped
           before inference (504), and one worker thread runs the model so batches never fight for the CPU.

        We drive the real batcher with a stand-in model (2 ms per batch, whatever its size) and three
        arrival patterns: a burst, a steady trickle (one request per ms) and sparse traffic (one per 10 ms).
        """),
        code("""
        async def try_batcher(n_requests, gap_ms):
            sizes = []
            def fake_model(items):  # a stand-in model: records the batch size, takes 2 ms
                sizes.append(len(items))
                time.sleep(0.002)
                return items
            async def arrive(i):
                await asyncio.sleep(i * gap_ms / 1000)  # the arrival schedule, not a readiness wait
                return await batcher.submit(i, timeout_s=5)
            batcher = batching.DynamicBatcher(fake_model, max_batch_size=8, max_wait_s=0.005, max_queue=64)
            batcher.start()
            done = await asyncio.gather(*(arrive(i) for i in range(n_requests)))
            await batcher.close()
            return {"batches": len(sizes), "batch sizes": " ".join(map(str, sizes)),
                    "longest queue wait (ms)": round(max(c.queue_s for c in done) * 1000, 1)}
        """),
        md("""
        Twenty requests in each pattern, `max_batch_size=8`, `max_wait_ms=5`:
        """),
        code("""
        patterns = {"burst (all at once)": 0.0, "trickle (1 per ms)": 1.0, "sparse (1 per 10 ms)": 10.0}
        demo = {}
        for name, gap_ms in patterns.items():
            demo[name] = await try_batcher(20, gap_ms)
        pd.DataFrame(demo).T
        """),
        md("""
        A burst fills batches of 8 at once (the last one is what is left); a trickle makes batches in between,
        sent when the first request's 5 ms run out; sparse traffic gets batches of 1, and each request waited
        `max_wait_ms` for company that never came. That wait is the price of batching, paid on every request
        when traffic is light, so `MAX_WAIT_MS` stays small (the service's default is 2 ms).

        ## 3. Dynamic batching: measure it

        Two copies of the service, one with batching off (`MAX_BATCH_SIZE=1`) and one with batches of up to 16.
        Both run the ONNX FP32 model (`BACKEND=onnx-fp32`), which needs a few milliseconds per text, so the
        model is a large share of each request and batching has something to save. Each takes a few seconds to
        load and warm up.
        """),
        code("""
        batch_servers = {size: start_service(f"nb06-batch{size}", BACKEND="onnx-fp32", MAX_BATCH_SIZE=str(size),
                                             MAX_WAIT_MS="2") for size in tqdm((1, 16), desc="starting")}
        pd.DataFrame({size: {"url": proc.url, "ready": requests.get(f"{proc.url}/ready", timeout=5).status_code}
                      for size, proc in batch_servers.items()}).T
        """),
        md("""
        The service counts the size of every batch it computed in a Prometheus histogram, `batch_size`. Its
        `_sum` (requests) and `_count` (batches), read before and after a run, give the mean batch size.
        """),
        code("""
        def batch_totals(url):
            \"\"\"(requests, batches) the service has computed so far, from its /metrics page.\"\"\"
            text = requests.get(f"{url}/metrics", timeout=5).text
            family = next(f for f in text_string_to_metric_families(text) if f.name == "batch_size")
            values = {sample.name: sample.value for sample in family.samples}
            return values["batch_size_sum"], values["batch_size_count"]
        """),
        md("""
        A closed-loop sweep: at each concurrency level, that many clients send requests back to back for a
        fixed time. Each run is bounded by `duration_s`; one server is measured at a time, the two in turn at
        each level, so a change in the machine's background load hits both alike.
        """),
        code("""
        levels = (1, 4, 16) if settings.fast else (1, 2, 4, 8, 16, 32)
        duration_s = 1.5 if settings.fast else 4.0
        rows = []
        for level, size in tqdm([(level, size) for level in levels for size in batch_servers], desc="sweep"):
            url = batch_servers[size].url
            items_before, batches_before = batch_totals(url)
            result = run_closed_loop(f"{url}/predict", method="POST", json=REQUEST, concurrency=level,
                                     duration_s=duration_s, progress=False)
            items, batches = batch_totals(url)
            mean_batch = (items - items_before) / max(batches - batches_before, 1)
            rows.append({**result.to_dict(), "max_batch_size": size, "mean_batch_size": mean_batch})
        sweep = pd.DataFrame(rows)
        sweep.pivot(index="concurrency", columns="max_batch_size",
                    values=["throughput_rps", "p95_ms", "mean_batch_size"]).round(1)
        """),
        md("""
        Throughput against concurrency, and the classic latency/throughput curve: each point is one
        concurrency level; a curve further right and lower is better.
        """),
        code("""
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
        for size, group in sweep.groupby("max_batch_size"):
            left.plot(group.concurrency, group.throughput_rps, marker="o", label=f"MAX_BATCH_SIZE={size}")
            right.plot(group.throughput_rps, group.p95_ms, marker="o", label=f"MAX_BATCH_SIZE={size}")
            for row in group.itertuples():
                right.annotate(f"c={row.concurrency}", (row.throughput_rps, row.p95_ms), xytext=(4, 4), textcoords="offset points")
        left.set(xscale="log", xticks=levels, xticklabels=levels, xlabel="concurrent clients", ylabel="throughput (requests/s)")
        right.set(xlabel="throughput (requests/s)", ylabel="p95 latency (ms)")
        for ax in (left, right):
            ax.grid(alpha=0.3)
            ax.legend()
        fig.suptitle("Dynamic batching: throughput and latency under a closed-loop sweep")
        plt.show()
        """),
        md("""
        With one client both servers are alike (batches of 1: nobody to wait for). As clients are added, the
        batching server forms bigger batches (see `mean_batch_size`) and should serve more requests per second
        at a lower p95, while without batching requests just queue behind each other. On 2 shared cores the
        load generator competes with the service for the CPU, so read the trend, not the exact numbers. With
        the INT8 model (about 1 ms per text) the gain is smaller: HTTP, JSON and tokenisation then dominate.

        The batching-off server is no longer needed: stop it.
        """),
        code("""
        batch_servers[1].stop()
        print("running:", sorted(running_servers()))
        """),
        md("""
        ## 4. Load testing: Little's law and capacity

        In a closed loop, throughput follows the server: each client waits for its answer before it sends the
        next request. **Little's law** links the three numbers of any stable system: the mean number of
        requests in the system L equals the arrival rate λ (requests/s) times the mean time W each one spends
        there (s): **L = λ · W**.

        ### Exercise 1 (2 points): Little's law

        Write `little_law(throughput_rps, latency_ms)` returning L, the mean number of requests in the system,
        as a float. Mind the units: latency is in **milliseconds**. Negative inputs must raise `ValueError`
        with a message that names the bad argument.
        """),
        answer(
            "ex1-little-law",
            """
        def little_law(throughput_rps, latency_ms):
            \"\"\"Mean number of requests in the system: L = throughput (1/s) x latency (s).\"\"\"
            ### BEGIN SOLUTION
            if throughput_rps < 0 or latency_ms < 0:
                raise ValueError(f"throughput_rps={throughput_rps!r} and latency_ms={latency_ms!r} must be >= 0")
            return float(throughput_rps) * float(latency_ms) / 1000.0
            ### END SOLUTION
        """,
        ),
        md("""
        The tests check the formula and its units.
        """),
        tests(
            "ex1-little-law-tests",
            """
        assert abs(little_law(100, 50) - 5.0) < 1e-9, f"100 req/s x 50 ms = 5 requests in flight, got {little_law(100, 50)!r}: convert ms to s"
        assert little_law(0, 10) == 0.0, "no traffic means nobody in the system"
        assert isinstance(little_law(10, 10), float), "return a float"
        try:
            little_law(-1, 10)
            raise AssertionError("little_law(-1, 10) must raise ValueError: a rate cannot be negative")
        except ValueError:
            pass
        print("Exercise 1: all visible tests passed")
        ### BEGIN HIDDEN TESTS
        assert abs(little_law(250, 8) - 2.0) < 1e-9
        assert abs(little_law(1.5, 2000) - 3.0) < 1e-9
        for bad in ((10, -1), (-0.5, -1)):
            try:
                little_law(*bad)
                raise AssertionError(f"little_law{bad} must raise ValueError")
            except ValueError:
                pass
        ### END HIDDEN TESTS
        """,
            points=2,
        ),
        md("""
        Check it on the batching server's sweep: in a closed loop, the number in the system should be close to
        the number of clients. It is a little lower, because each client also spends time between requests
        (building the next one in Python), which the server never sees.
        """),
        code("""
        closed = sweep[sweep.max_batch_size == 16].set_index("concurrency")
        closed = closed.assign(in_system=[little_law(r.throughput_rps, r.mean_ms) for r in closed.itertuples()])
        closed[["throughput_rps", "mean_ms", "in_system"]].round(2)
        """),
        md("""
        The same law sizes a deployment. We take the best throughput we measured as one replica's capacity and
        plan to run each replica at most 70% busy (headroom for bursts, as we see next):
        """),
        code("""
        capacity_rps = float(sweep.loc[sweep.max_batch_size == 16, "throughput_rps"].max())
        target_rps, max_utilisation = 500, 0.7
        replicas = math.ceil(target_rps / (max_utilisation * capacity_rps))
        pd.Series({"capacity of one replica (req/s)": round(capacity_rps, 1), "target (req/s)": target_rps,
                   "max utilisation": max_utilisation, "replicas needed": replicas})
        """),
        md("""
        ## 5. Load testing: open loop and queueing

        Real users do not wait for each other: they arrive at random, whatever the server is doing. An open-loop
        run sends requests at a Poisson rate (random gaps, fixed mean) and measures each latency from the
        request's *scheduled* time. We offer the batching server a growing share of its capacity.
        """),
        code("""
        shares = (0.3, 0.6, 0.9) if settings.fast else (0.2, 0.4, 0.6, 0.8, 0.9, 1.0)
        open_runs = [run_open_loop(f"{batch_servers[16].url}/predict", method="POST", json=REQUEST,
                                   rate_rps=share * capacity_rps, duration_s=1.5 if settings.fast else 4.0,
                                   seed=settings.seed, progress=False)
                     for share in tqdm(shares, desc="arrival rates")]
        open_loop = results_frame(open_runs).assign(utilisation=shares)
        open_loop[["utilisation", "target_rate_rps", "throughput_rps", "p50_ms", "p95_ms", "status_counts"]].round(1)
        """),
        md("""
        Queueing theory's simplest model (M/M/1: random arrivals, one server) predicts a mean latency of
        `S / (1 - ρ)` for service time S at utilisation ρ: it doubles at 50% and grows without bound near 100%.
        We take S as the mean latency of one lone client and put the prediction beside the measurements.
        """),
        code("""
        service_ms = float(closed.loc[1, "mean_ms"])
        rho = np.linspace(0, 0.95, 50)
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(rho * 100, service_ms / (1 - rho), color="grey", ls="--", label="M/M/1: S / (1 - ρ)")
        ax.plot(open_loop.utilisation * 100, open_loop.mean_ms, marker="o", label="measured mean")
        ax.plot(open_loop.utilisation * 100, open_loop.p95_ms, marker="s", label="measured p95")
        ax.set(xlabel="offered load (% of measured capacity)", ylabel="latency (ms)", yscale="log",
               title="Open loop, Poisson arrivals: latency grows as the load nears capacity")
        ax.grid(alpha=0.3)
        ax.legend()
        plt.show()
        """),
        md("""
        Batching bends the curve a little (a busier server makes bigger, more efficient batches), but the shape
        holds: far below capacity latency is the service time; close to it, requests wait in the queue and the
        tail explodes. This is why we plan for 70% utilisation, not 100%.

        ## 6. Data drift: what the model sees changes

        A model is validated on data like its training data. In production the inputs drift (new topics,
        longer texts, another language) and accuracy drops silently, because nobody sends us labels. We can
        still watch the **inputs** (text length) and the **outputs** (the model's confidence).

        Three samples go through the running service: the in-domain test split is our *reference*, the
        validation split is new in-domain data (no drift expected), and the out-of-domain set (support tickets,
        posts, headlines) is what drift looks like.
        """),
        code("""
        def served_predictions(url, texts):
            \"\"\"The service's answers to `texts`, 64 per /predict/batch request.\"\"\"
            answers = []
            for start in range(0, len(texts), 64):
                r = requests.post(f"{url}/predict/batch", json={"texts": texts[start:start + 64]}, timeout=30)
                r.raise_for_status()
                answers += r.json()
            return pd.DataFrame(answers)
        """),
        md("""
        For each sample: the confidence the service reported, the text length in words, and whether the label
        was right (we know the labels here; production usually does not).
        """),
        code("""
        samples = {"test (reference)": load_sentiment("test"), "val (in-domain)": load_sentiment("val"),
                   "out-of-domain": load_out_of_domain()}
        features = {}
        for name, examples in tqdm(samples.items(), desc="samples"):
            served = served_predictions(batch_servers[16].url, [e.text for e in examples])
            features[name] = pd.DataFrame({"confidence": served.confidence,
                                           "length_words": [len(e.text.split()) for e in examples],
                                           "correct": served.label == [e.label for e in examples]})
        pd.DataFrame({name: f.mean() for name, f in features.items()}).T.round(3)
        """),
        md("""
        Histograms of both features, reference against out-of-domain, as shares of each sample:
        """),
        code("""
        reference, ood = features["test (reference)"], features["out-of-domain"]
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
        for ax, column, bins, unit in ((axes[0], "confidence", np.linspace(0.5, 1, 21), "softmax probability"),
                                       (axes[1], "length_words", np.arange(0, 41, 2), "words")):
            for name, frame in (("test (reference)", reference), ("out-of-domain", ood)):
                weights = np.full(len(frame), 100 / len(frame))
                ax.hist(frame[column], bins=bins, weights=weights, alpha=0.55, label=name)
            ax.set(xlabel=f"{column} ({unit})", ylabel="share of texts (%)", title=column)
            ax.legend()
        axes[0].set(yscale="log", title="confidence (log scale: the tail is what moved)")
        plt.show()
        """),
        md("""
        ### Exercise 2 (3 points): PSI by hand

        The **population stability index** compares two samples bin by bin. Write
        `psi_by_hand(reference, current, bins=10)` following these steps (NumPy only):

        1. Inner bin edges from the **reference's** quantiles: `np.quantile(reference, np.linspace(0, 1, bins + 1))`
           without its first and last value, then `np.unique` (ties merge bins).
        2. Each value's bin: `np.searchsorted(edges, values, side="right")`; the share of each sample in each
           of the `len(edges) + 1` bins: `np.bincount(..., minlength=len(edges) + 1) / len(values)`.
        3. Replace shares below `1e-4` by `1e-4` (`np.maximum`), so an empty bin gives no infinite logarithm.
        4. PSI = Σ (current share − reference share) · ln(current share / reference share), as a float.

        Read: below 0.1 no drift, 0.1 to 0.25 moderate, 0.25 and above significant drift.
        """),
        answer(
            "ex2-psi",
            """
        def psi_by_hand(reference, current, bins=10):
            \"\"\"Population stability index of `current` against `reference`, quantile bins of the reference.\"\"\"
            reference, current = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
            ### BEGIN SOLUTION
            edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1))[1:-1])

            def shares(values):
                counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
                return np.maximum(counts / len(values), 1e-4)

            ref, cur = shares(reference), shares(current)
            return float(np.sum((cur - ref) * np.log(cur / ref)))
            ### END SOLUTION
        """,
        ),
        md("""
        The visible tests use a case small enough to compute on paper: the reference `[1, 2, 3, 4]` with 2 bins
        splits at 2.5 into shares 0.5 / 0.5; the current `[1, 1, 1, 4]` falls 0.75 / 0.25.
        """),
        tests(
            "ex2-psi-tests",
            """
        on_paper = 0.25 * np.log(0.75 / 0.5) - 0.25 * np.log(0.25 / 0.5)
        got = psi_by_hand([1, 2, 3, 4], [1, 1, 1, 4], bins=2)
        assert abs(got - on_paper) < 1e-9, f"expected {on_paper:.6f}, got {got!r}: check the bins (step 1-2) and the sum (step 4)"
        same = psi_by_hand(reference.confidence, reference.confidence)
        assert abs(same) < 1e-9, f"a sample against itself has PSI 0, got {same!r}"
        rng = np.random.default_rng(0)
        shifted = psi_by_hand(rng.normal(0, 1, 2000), rng.normal(1, 1, 2000))
        assert shifted > 0.25, f"a one-sigma shift is significant drift (> 0.25), got {shifted!r}"
        print("Exercise 2: all visible tests passed")
        ### BEGIN HIDDEN TESTS
        rng = np.random.default_rng(42)
        for _ in range(5):
            a, b = rng.gamma(2, 1, 700), rng.gamma(2.5, 1.2, 300)
            assert abs(psi_by_hand(a, b) - psi(a, b)) < 1e-9
            assert abs(psi_by_hand(a, b, bins=4) - psi(a, b, bins=4)) < 1e-9
        assert abs(psi_by_hand(np.arange(100), np.zeros(50), bins=4) - psi(np.arange(100), np.zeros(50), bins=4)) < 1e-9
        for column in ("confidence", "length_words"):
            assert abs(psi_by_hand(reference[column], ood[column]) - psi(reference[column], ood[column])) < 1e-9
        assert isinstance(psi_by_hand([1, 2, 3], [3, 2, 1]), float)
        ### END HIDDEN TESTS
        """,
            points=3,
        ),
        md("""
        The library's `course_utils.drift` does the same (with checks for empty or NaN inputs) and adds the
        KS test, which needs no bins: its statistic is the largest gap between the two cumulative
        distributions. `DriftReport` puts both measures and a verdict per feature in a table.
        """),
        code("""
        current = {name: f for name, f in features.items() if name != "test (reference)"}
        drift_table = pd.concat({name: DriftReport.compare(reference[["confidence", "length_words"]],
                                                           f[["confidence", "length_words"]]).to_frame()
                                 for name, f in current.items()}, names=["sample"])
        drift_table.assign(mine=[psi_by_hand(reference[feat], current[s][feat]) for s, feat in drift_table.index]).round(4)
        """),
        md("""
        The out-of-domain set is flagged clearly on confidence: the model is unsure more often. On length it is
        a borderline case: PSI lands near 0.25 (the long reviews of the reference are missing), while the KS test
        sees no significant gap. PSI says *how much* the shares moved, the KS p-value whether the gap could be
        chance.

        But the in-domain sample is not exactly 0 either. With a few hundred texts per side, PSI has a **noise
        floor**: two samples of one distribution differ by chance, by about (bins − 1) · (1/n + 1/m) on average.
        We measure it by drawing pairs of samples of 300 from the pooled in-domain confidences:
        """),
        code("""
        rng = np.random.default_rng(settings.seed)
        pooled = np.concatenate([reference.confidence, features["val (in-domain)"].confidence])
        chance = [psi(rng.choice(pooled, 300), rng.choice(pooled, 300)) for _ in range(200)]
        pd.Series({"PSI without drift: median": np.median(chance), "PSI without drift: 95th percentile": np.quantile(chance, 0.95),
                   "rule of thumb (bins - 1)(1/n + 1/m)": 9 * (1 / 300 + 1 / 300)}).round(3)
        """),
        md("""
        A PSI near this noise floor (the in-domain row) is no reason to page anyone; the out-of-domain
        confidence PSI, many times above it, is. Two more cautions: the confidence is squeezed against 1.0, so
        quantile bins split hairs there (0.997 against 0.999) and a harmless change can move PSI; and the KS
        p-value shrinks with sample size, so on big windows it flags gaps too small to matter. Alert on PSI over
        large windows (thousands of predictions) and read KS as a second opinion. In a service, the reference
        histogram (`course_utils.drift.reference_histogram`: a few numbers) is computed once at training time,
        and the live values come from the `prediction_confidence` histogram on `/metrics`.
        """),
        md("""
        ## 7. A canary rollout

        A new model variant goes live to a small share of the traffic first, the **canary**, while the current
        variant (**stable**) serves the rest. If the canary is as good on the metrics that matter, it is
        promoted to 100%; if not, it is rolled back and few users ever saw it.

        The stable variant is the FP32 service we have been measuring; the canary is the same service with the
        smaller, faster INT8 model (`BACKEND=onnx-int8`, 4x smaller, slightly different logits).
        """),
        code("""
        variants = {"stable": batch_servers[16], "canary": start_service("nb06-canary", BACKEND="onnx-int8")}
        pd.DataFrame({name: requests.get(f"{proc.url}/ready", timeout=5).json() for name, proc in variants.items()}).T
        """),
        md("""
        ### Exercise 3 (2 points): the router's choice

        The router sends each request to one variant at random, in proportion to its weight. Write
        `choose_variant(weights, rng)`: `weights` maps variant names to non-negative numbers (they need not sum
        to 1), `rng` is a `random.Random`; return one name. Use only `rng` for randomness (no `random.random()`,
        no NumPy), so a seed makes the routing reproducible. Raise `ValueError` when `weights` is empty, a weight
        is negative or all weights are 0.
        """),
        answer(
            "ex3-choose-variant",
            """
        def choose_variant(weights, rng):
            \"\"\"One variant name, drawn with probability weight / sum(weights), using `rng`.\"\"\"
            ### BEGIN SOLUTION
            if not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
                raise ValueError(f"weights={weights!r}: need at least one variant, no negative weight, a positive sum")
            point = rng.random() * sum(weights.values())
            for name, weight in weights.items():
                point -= weight
                if point < 0:
                    return name
            return next(name for name, weight in reversed(weights.items()) if weight > 0)  # rounding at the end
            ### END SOLUTION
        """,
        ),
        md("""
        The tests draw many times and check the shares.
        """),
        tests(
            "ex3-choose-variant-tests",
            """
        rng = random.Random(0)
        draws = [choose_variant({"stable": 0.9, "canary": 0.1}, rng) for _ in range(10_000)]
        assert set(draws) <= {"stable", "canary"}, f"return a key of weights, got {set(draws) - {'stable', 'canary'}}"
        share = draws.count("canary") / len(draws)
        assert 0.085 < share < 0.115, f"the canary got {share:.1%} of the traffic instead of about 10%"
        assert all(choose_variant({"a": 1, "b": 0}, rng) == "a" for _ in range(200)), "a weight of 0 is never chosen"
        print("Exercise 3: all visible tests passed")
        ### BEGIN HIDDEN TESTS
        first = [choose_variant({"a": 1, "b": 1}, random.Random(7)) for _ in range(20)]
        assert len(set(first)) == 1, "the same seed must give the same choice"
        seq1 = [choose_variant({"a": 2, "b": 1, "c": 1}, r) for r in [random.Random(3)] for _ in range(4000)]
        seq2 = [choose_variant({"a": 2, "b": 1, "c": 1}, r) for r in [random.Random(3)] for _ in range(4000)]
        assert seq1 == seq2
        for name, expected in (("a", 0.5), ("b", 0.25), ("c", 0.25)):
            assert abs(seq1.count(name) / 4000 - expected) < 0.035
        assert {choose_variant({"x": 5}, random.Random(i)) for i in range(10)} == {"x"}
        for bad in ({}, {"a": 0, "b": 0}, {"a": -1, "b": 2}):
            try:
                choose_variant(bad, random.Random(0))
                raise AssertionError(f"choose_variant({bad!r}) must raise ValueError")
            except ValueError:
                pass
        ### END HIDDEN TESTS
        """,
            points=2,
        ),
        md("""
        The router: for each request it picks a variant with a seeded `random.Random` and your function, sends
        the request there, and records what a per-variant dashboard would show. A failed connection counts as
        an error, never as a crash of the router.
        """),
        code("""
        traffic = load_sentiment("test") * (1 if settings.fast else 4)
        router_rng, weights, log = random.Random(settings.seed), {"stable": 0.9, "canary": 0.1}, []
        with requests.Session() as session:
            for example in tqdm(traffic, desc="routed requests"):
                variant, t0 = choose_variant(weights, router_rng), time.perf_counter()
                try:
                    r = session.post(f"{variants[variant].url}/predict", json={"text": example.text}, timeout=10)
                    status, label = r.status_code, r.json().get("label")
                except requests.RequestException as exc:
                    status, label = type(exc).__name__, None
                log.append({"variant": variant, "status": status, "latency_ms": (time.perf_counter() - t0) * 1000,
                            "correct": label == example.label})
        traffic_log = pd.DataFrame(log)
        traffic_log.variant.value_counts()
        """),
        md("""
        Latency, error rate and accuracy per variant. Label **agreement** needs both variants' answers to the
        same texts, so we replay a fixed sample through both (a *shadow* comparison: users never see it).
        """),
        code("""
        per_variant = traffic_log.assign(error=traffic_log.status != 200).groupby("variant").agg(
            requests=("error", "size"), error_rate=("error", "mean"), p50_ms=("latency_ms", "median"),
            p95_ms=("latency_ms", lambda ms: ms.quantile(0.95)), accuracy=("correct", "mean"))
        shadow_texts = [e.text for e in load_sentiment("test")[:64]]
        shadow = {name: served_predictions(proc.url, shadow_texts).label for name, proc in variants.items()}
        per_variant["agreement_with_stable"] = [float((shadow[v] == shadow["stable"]).mean()) for v in per_variant.index]
        per_variant.round(3)
        """),
        md("""
        The decision is written down **before** the rollout, so nobody argues with a dashboard afterwards:
        promote only with enough canary traffic, no more errors, a p95 at most 25% slower, and at least 97% of
        the labels the same as the stable variant's. Anything else rolls back.
        """),
        code("""
        def canary_decision(table, *, min_requests=20, max_extra_error_rate=0.01, max_p95_ratio=1.25, min_agreement=0.97):
            stable, canary = table.loc["stable"], table.loc["canary"]
            if canary.requests < min_requests:
                return "wait: not enough canary traffic yet"
            problems = [what for what, bad in (
                ("error rate", canary.error_rate > stable.error_rate + max_extra_error_rate),
                ("p95 latency", canary.p95_ms > max_p95_ratio * stable.p95_ms),
                ("label agreement", canary.agreement_with_stable < min_agreement)) if bad]
            return f"rollback: {', '.join(problems)}" if problems else "promote"
        """),
        md("""
        The decision on our measurements, and on a made-up bad canary (5% errors) to see the rule trip:
        """),
        code("""
        broken = per_variant.copy()
        broken.loc["canary", "error_rate"] = 0.05
        pd.Series({"measured": canary_decision(per_variant), "a canary with 5% errors": canary_decision(broken)})
        """),
        md("""
        With about 30 canary requests (COURSE_FAST) a p95 is a rough number; a real rollout waits for hundreds
        and ramps the weight in steps (1%, 10%, 50%, 100%), checking the rule at each step. Stop both variants:
        """),
        code("""
        for proc in variants.values():
            proc.stop()
        print("running:", sorted(running_servers()))
        """),
        md("""
        ## Summary

        - A dynamic batcher waits at most `MAX_WAIT_MS` from the first arrival for up to `MAX_BATCH_SIZE`
          requests: more throughput and a lower tail under load, a small extra wait when traffic is light.
        - Closed loops measure capacity; open loops (Poisson arrivals) show the queue: latency explodes as the
          offered load nears capacity, so plan for ~70% utilisation. Little's law: L = λ · W.
        - Drift: compare live inputs and outputs with a reference; PSI with quantile bins (0.1 / 0.25), KS as a
          second opinion. Out-of-domain text shows up in both length and confidence.
        - A canary takes a small share of the traffic and is promoted or rolled back by a rule fixed beforehand.

        ## Clean-up

        Stop anything still running (safe to run twice).
        """),
        code("""
        stop_all()
        print("servers still running:", sorted(running_servers()))
        """),
    ]
