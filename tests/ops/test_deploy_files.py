"""The Grafana dashboard and the Prometheus alert rules under deploy/ parse, and every metric
they query is one the app exports (app/metrics.py): a renamed metric fails here, not at 3 am."""

from __future__ import annotations

import json
import re

import yaml
from prometheus_client import Counter, Gauge, Histogram

from app import metrics
from app.settings import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"


def exported_names() -> set[str]:
    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, Counter):
            names.add(value._name + "_total")
        elif isinstance(value, Gauge):
            names.add(value._name)
        elif isinstance(value, Histogram):
            names |= {value._name + suffix for suffix in ("_bucket", "_count", "_sum")}
    return names


def queried(expressions: list[str]) -> set[str]:
    return {name for expr in expressions for name in re.findall(r"\bopd_[a-z0-9_]+", expr)}


def test_alert_rules_query_exported_metrics() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "opd-alerts.yml").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    # The failures the issue names: stale screens, no leader, a growing backlog, a failing provider.
    assert {"OPDScreensStale", "OPDNoEngineLeader", "OPDOutboxBacklogGrowing", "OPDProviderFailing"} <= alerts
    used = queried(expressions)
    assert used and used <= exported_names(), used - exported_names()


def test_dashboard_queries_exported_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "opd-queue-board.json").read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    used = queried(expressions)
    assert len(expressions) >= 15 and used <= exported_names(), used - exported_names()
    # Every exported family has a panel.
    families = {re.sub(r"_(bucket|count|sum)$", "", n) for n in exported_names()}
    shown = {re.sub(r"_(bucket|count|sum)$", "", n) for n in used}
    assert families <= shown, families - shown
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
