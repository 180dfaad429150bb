"""The deployment assets for the real TF Serving agree with each other and with the push layout."""

import json
import os
import re
import shutil
import subprocess

import numpy as np
import yaml
from prometheus_client.parser import text_string_to_metric_families

from modules import push_layout
from monitoring import check
from pipeline import configs
from pipeline.configs import PROJECT_ROOT
from serving.server import metrics
from serving.server.repository import ModelConfig, configs_from_file
from serving.tools import log_proxy
from tests.timeouts import COMMAND_TIMEOUT

DEPLOY = os.path.join(PROJECT_ROOT, "serving", "deploy")


def _read(*parts) -> str:
    with open(os.path.join(DEPLOY, *parts)) as f:
        return f.read()


def _yaml(*parts):
    return list(yaml.safe_load_all(_read(*parts)))


def test_models_config_serves_the_pushed_model_name_from_the_mount():
    path = os.path.join(DEPLOY, "models.config")
    assert _read("models.config") == push_layout.render_models_config(
        [(configs.MODEL_NAME, f"/models/{configs.MODEL_NAME}")]
    )
    assert configs_from_file(path) == [ModelConfig(configs.MODEL_NAME, f"/models/{configs.MODEL_NAME}", 1)]


def test_the_request_log_proxy_logs_the_served_model_and_compose_runs_it_in_front_of_tf_serving():
    """The proxy's models.config names the same model and base path as the real server's, plus a
    logging_config; the real server's own models.config has none (its build has no collector)."""
    [logged] = configs_from_file(os.path.join(DEPLOY, "request_logging.config"))
    [served] = configs_from_file(os.path.join(DEPLOY, "models.config"))
    assert (logged.name, logged.base_path) == (served.name, served.base_path) and served.logging is None
    assert (
        logged.logging.filename_prefix == f"/logs/{configs.MODEL_NAME}/requests" and logged.logging.sampling_rate == 0.1
    )
    [compose] = _yaml("docker-compose.yml")
    proxy = compose["services"]["request-log-proxy"]
    assert "--upstream=http://tf-serving:8501" in proxy["command"]
    assert "--model_config_file=/config/request_logging.config" in proxy["command"]
    assert "./request_logging.config:/config/request_logging.config:ro" in proxy["volumes"]


def test_configmap_carries_the_same_files():
    [configmap] = _yaml("k8s", "configmap.yaml")
    assert configmap["data"] == {
        "models.config": _read("models.config"),
        "batching_parameters.txt": _read("batching_parameters.txt"),
        "monitoring.config": _read("monitoring.config"),
    }


def test_compose_and_kubernetes_expose_8500_grpc_and_8501_rest_with_read_only_models():
    [compose] = _yaml("docker-compose.yml")
    service = compose["services"]["tf-serving"]
    assert service["ports"] == ["8500:8500", "8501:8501"]
    assert "../../serving_model:/models:ro" in service["volumes"]
    [deployment] = _yaml("k8s", "deployment.yaml")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"grpc": 8500, "rest": 8501}
    assert {"name": "models", "mountPath": "/models", "readOnly": True} in container["volumeMounts"]
    [service_k8s] = _yaml("k8s", "service.yaml")
    assert {p["port"] for p in service_k8s["spec"]["ports"]} == {8500, 8501}
    for args in (service["command"], container["args"]):
        assert "--model_config_file=/config/models.config" in args
        assert "--batching_parameters_file=/config/batching_parameters.txt" in args
        assert "--monitoring_config_file=/config/monitoring.config" in args
    assert container["image"] == service["image"]
    assert container["readinessProbe"]["httpGet"]["path"] == f"/v1/models/{configs.MODEL_NAME}"


PROMETHEUS = os.path.join(DEPLOY, "prometheus")


def _promtool(*args) -> str:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not on PATH (bootstrap.sh --browser installs Debian's prometheus)"
    proc = subprocess.run([promtool, *args], capture_output=True, text=True, cwd=PROMETHEUS, timeout=COMMAND_TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def test_prometheus_config_and_alert_rules_pass_promtool():
    assert "7 rules found" in _promtool("check", "rules", "alerts.yml")
    _promtool("check", "config", "prometheus.yml")
    jobs = {j["job_name"]: j for j in yaml.safe_load(_read("prometheus", "prometheus.yml"))["scrape_configs"]}
    assert sorted(jobs) == ["monitor", "request-log-proxy", "tf-serving"]
    assert jobs["tf-serving"]["metrics_path"] == metrics.read_monitoring_config(
        os.path.join(DEPLOY, "monitoring.config")
    )
    assert jobs["request-log-proxy"]["metrics_path"] == log_proxy.METRICS_PATH


def test_alert_rules_fire_on_their_unit_test_series():
    """alerts_test.yml: 10% errors fire the error-rate alert (1% does not), p99 above 100 ms fires
    the latency alert, 2% low-confidence predictions stay quiet."""
    assert "SUCCESS" in _promtool("test", "rules", "alerts_test.yml")


def test_every_metric_the_alerts_and_dashboard_use_is_exposed_by_the_server_or_the_monitor(tmp_path):
    exposed = metrics.ServingMetrics()
    exposed.request_log_dropped("m", "queue_full")
    exposed.request_log_written("m")
    exposed.request("m", "Predict", "REST", "OK", 0.001)
    exposed.runtime("m", "Predict", 0.001)
    exposed.load("/p", True, 0.1)
    exposed.predictions("m", 1, np.array([[0.3, 0.3, 0.4]]))  # top probability under the 0.5 bound
    names = {s.name for f in text_string_to_metric_families(exposed.exposition().decode()) for s in f.samples}
    monitor_file = str(tmp_path / check.PROM_FILE)  # what python -m monitoring.check writes
    judged = {"name": "pixel_skew", "value": 0.001, "bound": 0.01, "flagged": False, "detail": ""}
    check.write_prometheus(
        {"flagged": [], "rows": 1, "versions": {"1": {"checks": [judged]}}, "drift": None}, monitor_file
    )
    names |= {s.name for f in text_string_to_metric_families(open(monitor_file).read()) for s in f.samples}
    dashboard = json.loads(_read("grafana", "mnist-serving.json"))
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    expressions += [
        rule["expr"] for group in yaml.safe_load(_read("prometheus", "alerts.yml"))["groups"] for rule in group["rules"]
    ]
    used = {m for expr in expressions for m in re.findall(r"(:tensorflow:[a-z_:]+|mnist_tfx_[a-z_]+)", expr)}
    assert used and used <= names, sorted(used - names)
