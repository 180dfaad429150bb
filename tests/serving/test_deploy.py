"""The deployment assets for the real TF Serving agree with each other and with the push layout."""

import os

import yaml

from modules import push_layout
from pipeline import configs
from pipeline.configs import PROJECT_ROOT
from serving.repository import ModelConfig, configs_from_file

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


def test_configmap_carries_the_same_files():
    [configmap] = _yaml("k8s", "configmap.yaml")
    assert configmap["data"] == {
        "models.config": _read("models.config"),
        "batching_parameters.txt": _read("batching_parameters.txt"),
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
    assert container["image"] == service["image"]
    assert container["readinessProbe"]["httpGet"]["path"] == f"/v1/models/{configs.MODEL_NAME}"
