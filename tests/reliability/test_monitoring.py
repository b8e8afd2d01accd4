"""The reference's monitoring as deployed: alert rules under promtool, every Grafana panel's query against a
real Prometheus scraping the service (two workers, as docker-compose runs it), and the Kubernetes manifests
against the Kubernetes schemas.

Nothing here downloads anything: promtool and prometheus are Debian's (.ci/components.sh), and
kubernetes-validate ships the schemas of every Kubernetes version it knows in its wheel.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from capstone_support import SERVE_SCRIPT, SOLUTION_DIR, UvicornProcess
from reliability_support import PrometheusServer, tool_path

from course_utils.bench import run_open_loop

DEPLOY = SOLUTION_DIR / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "service.json"
#: The Kubernetes version the manifests must be valid for (kubernetes-validate bundles its schemas).
KUBERNETES_VERSION = "1.37.0"
SCRAPE_S = 1
# Grafana's interval variables, made concrete for a 1 s scrape: $__rate_interval is at least four scrapes.
GRAFANA_INTERVALS = {"$__rate_interval": "10s", "$__interval": "2s", "$__range": "60s"}


def panels(items: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel with queries, the panels of collapsed rows included."""
    for panel in items:
        if panel.get("type") == "row":
            yield from panels(panel.get("panels", []))
        elif panel.get("targets"):
            yield panel


def panel_queries() -> list[tuple[str, str]]:
    """(panel title / refId, PromQL) of every target of the dashboard, Grafana's variables filled in."""
    queries = []
    for panel in panels(json.loads(DASHBOARD.read_text())["panels"]):
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in GRAFANA_INTERVALS.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"{panel['title']}: a variable the test cannot fill: {expr}"
            queries.append((f"{panel['title']} / {target['refId']}", expr))
    return queries


# Alert rules -----------------------------------------------------------------------------------------------


def test_alert_rules_pass_promtool_check_and_their_unit_tests(
    require_component: Callable[[str, bool, str], None],
) -> None:
    promtool = tool_path("promtool", require_component)
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        done = subprocess.run(
            [promtool, *args], cwd=DEPLOY, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, f"promtool {' '.join(args)} (exit {done.returncode}):\n{done.stdout}"


def test_every_alert_has_a_unit_test_that_fires_it_and_one_that_keeps_it_quiet() -> None:
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule}
    cases = [
        case
        for test in yaml.safe_load((DEPLOY / "alerts_test.yml").read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    fired = {case["alertname"] for case in cases if case["exp_alerts"]}
    quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
    golden = {
        "SentimentTargetDown",
        "SentimentErrors",
        "SentimentHighLatencyP95",
        "SentimentQueueNearCapacity",
    }
    assert golden | {"SentimentInFlightHigh"} <= alerts
    assert alerts - fired == set(), "alerts no unit test makes fire"
    assert alerts - quiet == set(), "alerts no unit test keeps quiet"


# Grafana ---------------------------------------------------------------------------------------------------


def test_the_dashboard_shows_the_golden_signals_and_latency_percentiles() -> None:
    queries = [expr for _, expr in panel_queries()]
    for quantile in ("0.5", "0.95", "0.99"):
        pattern = rf"histogram_quantile\({quantile}, .*predict_latency_seconds_bucket"
        assert any(re.search(pattern, query) for query in queries), f"no p{quantile} latency panel"
    for series in ("http_requests_total", 'status=~"5..', "predict_requests_in_flight", "batch_queue_depth"):
        assert any(series in query for query in queries), f"no panel on {series}"
    assert any("rate(process_cpu_seconds_total" in query for query in queries), "no CPU panel"


def test_compose_provisions_grafana_with_the_dashboard_and_a_pinned_image() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    image, _, tag = grafana["image"].partition(":")
    assert image == "grafana/grafana" and re.fullmatch(r"\d+\.\d+\.\d+", tag), grafana["image"]
    mounts = {volume.split(":")[1]: DEPLOY / volume.split(":")[0] for volume in grafana["volumes"]}
    provisioning = mounts["/etc/grafana/provisioning"]
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"][
        0
    ]
    assert datasource["url"] == "http://prometheus:9090" and "prometheus" in compose["services"]
    provider = yaml.safe_load((provisioning / "dashboards" / "dashboards.yml").read_text())["providers"][0]
    assert (mounts[provider["options"]["path"]] / DASHBOARD.name).is_file()
    dashboard = json.loads(DASHBOARD.read_text())
    uids = {
        target["datasource"]["uid"] for panel in panels(dashboard["panels"]) for target in panel["targets"]
    }
    assert uids == {datasource["uid"]}


@pytest.fixture(scope="module")
def two_workers(
    start_server: Callable[..., UvicornProcess], model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> UvicornProcess:
    """The service as docker-compose runs it: `python src/serve.py` with WORKERS=2."""
    env = {"MODEL_DIR": str(model_dir), "WORKERS": "2", "TMPDIR": str(tmp_path_factory.mktemp("metrics"))}
    return start_server(env, command=[sys.executable, str(SERVE_SCRIPT)])


def test_every_dashboard_query_returns_data_from_a_real_prometheus(
    two_workers: UvicornProcess, tmp_path: Path, require_component: Callable[[str, bool, str], None]
) -> None:
    binary = tool_path("prometheus", require_component)
    target = f"127.0.0.1:{two_workers.port}"
    with PrometheusServer(binary, [target], tmp_path, scrape_s=SCRAPE_S) as prometheus:
        load = run_open_loop(
            two_workers.url("/predict"),
            method="POST",
            json={"text": "Every panel needs a little traffic."},
            rate_rps=20,
            duration_s=8,
            timeout_s=30,
            progress=False,
        )
        assert load.status_counts.get(200, 0) > 0, load
        time.sleep(3 * SCRAPE_S)  # let Prometheus scrape past the end of the load
        at = f"{time.time():.3f}"
        without_data = {}
        for name, expr in panel_queries():
            result = prometheus.api("query", query=expr, time=at)["result"]
            values = [float(sample["value"][1]) for sample in result]
            if not any(math.isfinite(value) for value in values):  # no series, or only NaN (0/0)
                without_data[name] = (expr, values)
    assert without_data == {}, f"panels without data: {without_data}"


# Kubernetes ------------------------------------------------------------------------------------------------


def manifests() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.name}#{index}", document)
        for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
        for index, document in enumerate(yaml.safe_load_all(path.read_text()))
        if document
    ]


@pytest.mark.parametrize(("name", "manifest"), manifests(), ids=[name for name, _ in manifests()])
def test_kubernetes_manifests_match_the_schemas(name: str, manifest: dict[str, Any]) -> None:
    # strict: unknown fields fail too (kubectl would drop a misspelt field such as `minAvailabl` silently)
    try:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = "/".join(str(part) for part in exc.path)
        kind = manifest.get("kind")
        pytest.fail(
            f"{name}: not a valid {kind} of Kubernetes {KUBERNETES_VERSION} at {where!r}: {exc.message}"
        )


def test_the_schema_check_catches_a_misspelt_field() -> None:
    ((_, pdb),) = [(name, doc) for name, doc in manifests() if doc["kind"] == "PodDisruptionBudget"]
    pdb["spec"]["minAvailabl"] = pdb["spec"].pop("minAvailable")
    with pytest.raises(kubernetes_validate.ValidationError, match="minAvailabl"):
        kubernetes_validate.validate(pdb, KUBERNETES_VERSION, strict=True)
