"""What an operator loads into Prometheus and Grafana (deploy/prometheus, deploy/grafana), checked
by Prometheus's own promtool: the rules parse, their unit tests fire each alert when they should and
not before, and every query of the dashboard parses and names only metrics meter exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tests.servers import ROOT

pytestmark = pytest.mark.database_agnostic

PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "meter-dashboard.json"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        reason = "promtool is not installed (Debian's prometheus package; `make test` installs it as root)"
        print(f"\nSKIPPED: {reason}")
        pytest.skip(reason)
    return found


def test_the_alert_rules_parse_and_their_unit_tests_pass():
    tool = promtool()
    checked = subprocess.run(
        [tool, "check", "rules", "meter-rules.yml"], cwd=PROMETHEUS, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [tool, "test", "rules", "meter-rules.test.yml"], cwd=PROMETHEUS, capture_output=True, text=True
    )
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] and board["title"] and board["panels"]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    queries = []
    for panel in board["panels"]:
        assert panel["type"] in {"timeseries", "stat"} and panel["targets"], panel["title"]
        for target in panel["targets"]:
            queries.append(target["expr"])
    return queries


def test_every_dashboard_query_parses(tmp_path):
    """Grafana's own variables replaced as Grafana would ($__rate_interval, $job), each query is a
    recording rule that promtool must accept: a typo in PromQL fails here, not on the operator's screen."""
    tool = promtool()
    rules = {"groups": [{"name": "dashboard", "rules": []}]}
    for n, expr in enumerate(dashboard_queries()):
        concrete = expr.replace("$__rate_interval", "5m").replace("$job", "meter")
        rules["groups"][0]["rules"].append({"record": f"meter:dashboard_query_{n}", "expr": concrete})
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(json.dumps(rules))  # JSON is YAML
    checked = subprocess.run([tool, "check", "rules", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def exported_names(client) -> set[str]:
    text = client.get("/metrics").get_data(as_text=True)
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    return {name.removesuffix("_total") for name in names}  # a counter's TYPE line names it with _total


def test_the_rules_and_the_dashboard_name_only_metrics_meter_exports(app, client, api):
    """A metric renamed in meter but not in the rules would leave an alert that never fires."""
    api.access("tempo:1", anonymous_id="visitor-0001")
    served = rebuilt_with_backup(app).test_client()
    names = exported_names(served)
    text = (PROMETHEUS / "meter-rules.yml").read_text() + "\n".join(dashboard_queries())
    used = set(re.findall(r"\b(meter_[a-z_]+?)(?:_total|_bucket|_count|_sum)?\b", text))
    missing = {name for name in used if name not in names}
    assert not missing, f"not exported by meter: {sorted(missing)}"


def rebuilt_with_backup(app):
    from tests.conftest import rebuilt

    return rebuilt(app, BACKUP_STATUS_FILE="/nonexistent/last-success")
