"""The HA alerts (deploy/prometheus/alerts.yml, group tkv_ha) use only what the failover agent
exposes (tkv_ha/agent.py, class Metrics), so renaming a metric there fails here."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tkv_ha.agent import Metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def _ha_rules() -> list[dict]:
    groups = yaml.safe_load((DEPLOY / "alerts.yml").read_text())["groups"]
    (group,) = [group for group in groups if group["name"] == "tkv_ha"]
    return group["rules"]


def _names_in(expression: str) -> set[str]:
    """The agent's metric names in a PromQL expression (label values such as the job name
    "tkv_ha_agent" are quoted, and left out)."""
    return set(re.findall(r"\btkv_ha_\w+", re.sub(r'"[^"]*"', '""', expression)))


def _exposed() -> dict[str, list[dict[str, str]]]:
    """Each sample name the agent serves at /metrics, with the label sets it has."""
    text = generate_latest(Metrics("n1").registry).decode()
    exposed: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            exposed.setdefault(sample.name, []).append(sample.labels)
    return exposed


def test_every_metric_of_the_ha_alerts_is_exposed_by_the_agent():
    rules = _ha_rules()
    used = {rule["alert"]: _names_in(rule["expr"]) for rule in rules}
    # Every alert but the scrape's own (up) reads the agent's metrics: the names are found.
    assert [alert for alert, names in used.items() if not names] == ["TkvHaAgentDown"]
    exposed = _exposed()
    missing = {alert: sorted(names - set(exposed)) for alert, names in used.items() if names - set(exposed)}
    assert missing == {}, f"alerts.yml uses metrics tkv_ha.agent.Metrics does not expose: {missing}"
    # The alerts group and name by the agent's node label; every series starts with it.
    for name in set().union(*used.values()):
        assert exposed[name] == [{"node": "n1"}], name


def test_the_agent_job_of_the_alerts_is_scraped():
    """TkvHaAgentDown and TkvHaNoLeader name the scrape job of prometheus.yml."""
    jobs = {job["job_name"] for job in yaml.safe_load((DEPLOY / "prometheus.yml").read_text())["scrape_configs"]}
    named = {job for rule in _ha_rules() for job in re.findall(r'job="([^"]+)"', rule["expr"])}
    assert named == {"tkv_ha_agent"}
    assert named <= jobs
