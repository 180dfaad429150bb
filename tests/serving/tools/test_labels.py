"""Version labels, version policies and configuration reload on serving.server, with TF Serving's
codes and messages: labels over REST and gRPC, `all` and `specific` policies, a label on a version
that is not loaded refused (at start and on reload), HandleReloadConfigRequest and the config-file
poller adding and removing models with no failed request for the model that stays."""

import argparse
import threading
import time

import grpc
import pytest
import requests
from google.protobuf import text_format
from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2

from serving.clients.grpc_client import GrpcClient
from serving.clients.rest_client import RestClient, ServingRequestError
from serving.tools.process import ServerProcess
from tests.serving.conftest import MODEL_NAME, publish


def _config(entries) -> str:
    """entries: [(name, base_path, policy text, {label: version})] -> models.config text."""
    config = model_server_config_pb2.ModelServerConfig()
    for name, base, policy, labels in entries:
        model = config.model_config_list.config.add()
        model.name, model.base_path, model.model_platform = name, base, "tensorflow"
        text_format.Parse(policy, model.model_version_policy)
        for label, version in labels.items():
            model.version_labels[label] = version
    return text_format.MessageToString(config)


@pytest.fixture(scope="module")
def push(tmp_path_factory, exported_model):
    """A push directory holding versions 1, 2 and 3 (copies of one model)."""
    base = tmp_path_factory.mktemp("labels") / MODEL_NAME
    for version in (1, 2, 3):
        publish(exported_model, str(base), version)
    return base


def _server(config_path, *extra):
    return ServerProcess(str(config_path.parent / "unused"), MODEL_NAME, f"--model_config_file={config_path}", *extra)


def test_labels_name_versions_over_rest_and_grpc(push, tmp_path, test_images_labels):
    config = tmp_path / "models.config"
    config.write_text(
        _config([(MODEL_NAME, str(push), "specific { versions: 1 versions: 2 }", {"stable": 1, "canary": 2})])
    )
    image = test_images_labels[0][:1]
    with _server(config) as srv:
        status = requests.get(f"{srv.rest_url}/v1/models/{MODEL_NAME}/labels/stable", timeout=30).json()
        assert [s["version"] for s in status["model_version_status"]] == ["1"]
        answer = requests.post(
            f"{srv.rest_url}/v1/models/{MODEL_NAME}/labels/canary:predict",
            json={"signature_name": "predict_images", "instances": image.tolist()},
            timeout=30,
        )
        assert answer.status_code == 200
        # Unlabelled requests go to the newest loaded version, as in TF Serving.
        assert sorted(int(s["version"]) for s in RestClient(srv.rest_url, MODEL_NAME).status()) == [1, 2]
        unknown = requests.get(f"{srv.rest_url}/v1/models/{MODEL_NAME}/labels/nope", timeout=30)
        assert unknown.status_code == 400 and unknown.json()["error"] == "Unrecognized servable version label: nope"

        client = GrpcClient(srv.grpc_target, MODEL_NAME)
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        for label, version in (("stable", 1), ("canary", 2)):
            request = predict_pb2.PredictRequest()
            request.model_spec.name, request.model_spec.version_label = MODEL_NAME, label
            request.model_spec.signature_name = "predict_images"
            request.inputs["images"].CopyFrom(tf.make_tensor_proto(image))
            assert client._call(client._predict.Predict, request).model_spec.version.value == version
        request.model_spec.version_label = "nope"
        with pytest.raises(ServingRequestError) as refused:
            client._call(client._predict.Predict, request)
        assert refused.value.status == grpc.StatusCode.INVALID_ARGUMENT
        assert "Unrecognized servable version label: nope" in refused.value.message
        client.close()


def test_the_all_policy_loads_every_version(push, tmp_path):
    config = tmp_path / "models.config"
    config.write_text(_config([(MODEL_NAME, str(push), "all {}", {})]))
    with _server(config) as srv:
        deadline = time.time() + 60
        while time.time() < deadline:
            states = {s["version"]: s["state"] for s in RestClient(srv.rest_url, MODEL_NAME).status()}
            if len(states) == 3 and set(states.values()) == {"AVAILABLE"}:
                break
            time.sleep(0.5)
        assert states == {1: "AVAILABLE", 2: "AVAILABLE", 3: "AVAILABLE"}


def test_a_label_on_a_version_that_is_not_loaded_stops_the_start_in_plain_words(push, tmp_path):
    config = tmp_path / "models.config"
    config.write_text(_config([(MODEL_NAME, str(push), "specific { versions: 1 }", {"canary": 2})]))
    with pytest.raises(RuntimeError, match="exited with 1") as stopped:
        _server(config)
    assert "Request to assign label to version 2 of model mnist, which is not currently available" in str(stopped.value)
    # TF Serving's --allow_version_labels_for_unavailable_models lets a new label wait for its version.
    with _server(config, "--allow_version_labels_for_unavailable_models") as srv:
        missing = requests.get(f"{srv.rest_url}/v1/models/{MODEL_NAME}/labels/canary", timeout=30)
        assert missing.status_code == 404


def _reload(target: str, text: str):
    request = model_management_pb2.ReloadConfigRequest()
    text_format.Parse(text, request.config)
    with grpc.insecure_channel(target) as channel:
        return model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(request, timeout=120)


def _keep_asking(url: str, images, failures: list, answered: list, stop: threading.Event) -> threading.Thread:
    """A client on labels/stable until stop is set; every non-200 answer goes to failures."""

    def ask():
        while not stop.is_set():
            answer = requests.post(
                f"{url}/v1/models/{MODEL_NAME}/labels/stable:predict",
                json={"signature_name": "predict_images", "instances": images.tolist()},
                timeout=30,
            )
            (answered if answer.status_code == 200 else failures).append(answer.status_code)

    thread = threading.Thread(target=ask)
    thread.start()
    return thread


def _stop_asking(asker: threading.Thread, answered: list, stop: threading.Event, at_least: int = 11) -> None:
    """Stops the client once it has had at least `at_least` answers (the changes under test can be
    quicker than that many requests: measured, 10 answers in one CI run), at most 30 s more."""
    deadline = time.time() + 30
    while len(answered) < at_least and asker.is_alive() and time.time() < deadline:
        time.sleep(0.05)
    stop.set()
    asker.join()


def _stable_version(url: str) -> int:
    return int(
        requests.get(f"{url}/v1/models/{MODEL_NAME}/labels/stable", timeout=30).json()["model_version_status"][0][
            "version"
        ]
    )


def test_grpc_reload_adds_a_model_and_moves_a_label_without_failing_the_model_that_stays(
    push, tmp_path, test_images_labels
):
    config = tmp_path / "models.config"
    config.write_text(_config([(MODEL_NAME, str(push), "specific { versions: 1 versions: 2 }", {"stable": 1})]))
    with _server(config) as srv:
        failures, answered, stop = [], [], threading.Event()
        asker = _keep_asking(srv.rest_url, test_images_labels[0][:1], failures, answered, stop)
        try:
            both = _config(
                [
                    (MODEL_NAME, str(push), "specific { versions: 1 versions: 2 }", {"stable": 2}),
                    ("second", str(push), "latest { num_versions: 1 }", {}),
                ]
            )
            _reload(srv.grpc_target, both)
            assert RestClient(srv.rest_url, "second").status()[0]["state"] == "AVAILABLE"
            assert _stable_version(srv.rest_url) == 2
            # A label on a version the policy does not serve is refused whole: nothing changes.
            with pytest.raises(grpc.RpcError) as refused:
                _reload(srv.grpc_target, _config([(MODEL_NAME, str(push), "specific { versions: 1 }", {"stable": 3})]))
            assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "version 3 of model mnist, which is not currently available" in refused.value.details()
            assert _stable_version(srv.rest_url) == 2 and RestClient(srv.rest_url, "second").status()
            _reload(srv.grpc_target, _config([(MODEL_NAME, str(push), "specific { versions: 2 }", {"stable": 2})]))
            assert requests.get(f"{srv.rest_url}/v1/models/second", timeout=30).status_code == 404
        finally:
            _stop_asking(asker, answered, stop)
    assert failures == [] and len(answered) > 10


def test_the_config_file_poller_applies_edits_and_keeps_the_last_good_configuration(push, tmp_path, test_images_labels):
    config = tmp_path / "models.config"
    one = _config([(MODEL_NAME, str(push), "specific { versions: 1 versions: 2 }", {"stable": 1})])
    config.write_text(one)
    with _server(config, "--model_config_file_poll_wait_seconds=0.3") as srv:
        failures, answered, stop = [], [], threading.Event()
        asker = _keep_asking(srv.rest_url, test_images_labels[0][:1], failures, answered, stop)
        try:
            config.write_text(
                _config(
                    [
                        (MODEL_NAME, str(push), "specific { versions: 1 versions: 2 }", {"stable": 2}),
                        ("second", str(push), "latest { num_versions: 1 }", {}),
                    ]
                )
            )
            deadline = time.time() + 30
            while time.time() < deadline and _stable_version(srv.rest_url) != 2:
                time.sleep(0.3)
            assert _stable_version(srv.rest_url) == 2
            assert RestClient(srv.rest_url, "second").status()[0]["state"] == "AVAILABLE"
            config.write_text("model_config_list { config { name: ")  # a torn edit: the server keeps going
            deadline = time.time() + 30  # until the server has read it and said so
            while time.time() < deadline and "not applied" not in srv.output():
                time.sleep(0.3)
            assert "not applied" in srv.output()
            assert _stable_version(srv.rest_url) == 2
            config.write_text(one)
            deadline = time.time() + 30
            while (
                time.time() < deadline
                and requests.get(f"{srv.rest_url}/v1/models/second", timeout=30).status_code != 404
            ):
                time.sleep(0.3)
            assert requests.get(f"{srv.rest_url}/v1/models/second", timeout=30).status_code == 404
            assert _stable_version(srv.rest_url) == 1
        finally:
            _stop_asking(asker, answered, stop)
    assert failures == [] and len(answered) > 10


def test_canary_flow_push_label_promote_with_no_failed_labelled_request(tmp_path, exported_model, test_images_labels):
    from modules import push_layout
    from serving.tools import labels

    base = tmp_path / MODEL_NAME
    publish(exported_model, str(base), 1)
    config = tmp_path / "models.config"
    config.write_text(push_layout.render_models_config([(MODEL_NAME, str(base))]))
    images = test_images_labels[0][:1]

    def cli(action, version=None):
        return labels.run(
            argparse.Namespace(
                config=str(config),
                server=srv.rest_url,
                model_name=MODEL_NAME,
                timeout=60,
                action=action,
                version=version,
            )
        )

    def version_of(label):
        status = requests.get(f"{srv.rest_url}/v1/models/{MODEL_NAME}/labels/{label}", timeout=30).json()
        return int(status["model_version_status"][0]["version"])

    with _server(config, "--model_config_file_poll_wait_seconds=0.3") as srv:
        assert cli("stable") == "stable = version 1; every other version unloaded"
        failures, stop = [], threading.Event()

        def keep_asking():
            while not stop.is_set():
                answer = requests.post(
                    f"{srv.rest_url}/v1/models/{MODEL_NAME}/labels/stable:predict",
                    json={"signature_name": "predict_images", "instances": images.tolist()},
                    timeout=30,
                )
                if answer.status_code != 200:
                    failures.append(answer.text)

        asker = threading.Thread(target=keep_asking)
        asker.start()
        try:
            # A push in canary mode, as the release writes it: version 2 loads beside 1, unlabelled.
            publish(exported_model, str(base), 2)
            config.write_text(
                push_layout.render_models_config(
                    [(MODEL_NAME, str(base))], previous=config.read_text(), pushed_version=2
                )
            )
            labels.Server(srv.rest_url, MODEL_NAME, 60).available(2)
            assert version_of("stable") == 1
            assert cli("canary", 2) == "canary = version 2; stable stays on version 1"
            assert (version_of("stable"), version_of("canary")) == (1, 2)
            assert cli("promote").startswith("stable = version 2 (was 1)")
            assert version_of("stable") == 2

            def states():
                return {s["version"]: s["state"] for s in RestClient(srv.rest_url, MODEL_NAME).status()}

            deadline = time.time() + 30
            while time.time() < deadline and states().get(1) == "AVAILABLE":
                time.sleep(0.3)
            assert states()[2] == "AVAILABLE" and states().get(1, "END") == "END"
            unknown = requests.get(f"{srv.rest_url}/v1/models/{MODEL_NAME}/labels/canary", timeout=30)
            assert unknown.status_code == 400
        finally:
            stop.set()
            asker.join()
    assert failures == []


def test_reload_can_be_turned_off_and_cannot_send_the_request_log_outside_the_config_folder(push, tmp_path):
    config = tmp_path / "models.config"
    config.write_text(_config([(MODEL_NAME, str(push), "latest { num_versions: 1 }", {})]))
    logged = 'logging_config { sampling_config { sampling_rate: 1 } log_collector_config { filename_prefix: "%s" } }'
    with _server(config) as srv:
        # The last: a prefix naming the folder itself, whose files would land beside it.
        for prefix in ("/tmp/elsewhere/requests", "../outside/requests", str(tmp_path)):
            text = _config([(MODEL_NAME, str(push), "latest { num_versions: 1 }", {})])
            text = text.replace('model_platform: "tensorflow"', 'model_platform: "tensorflow" ' + logged % prefix)
            with pytest.raises(grpc.RpcError) as refused:
                _reload(srv.grpc_target, text)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "request log" in refused.value.details() and "lies outside" in refused.value.details()
        assert RestClient(srv.rest_url, MODEL_NAME).status()[0]["state"] == "AVAILABLE"
    with _server(config, "--enable_reload_config_request=false") as srv:
        with pytest.raises(grpc.RpcError) as off:
            _reload(srv.grpc_target, config.read_text())
        assert off.value.code() == grpc.StatusCode.UNIMPLEMENTED and "turned off" in off.value.details()


@pytest.mark.parametrize(
    "action, version, labels_after, served_after",
    [
        ("canary", 4, {"stable": 1, "canary": 4}, [1, 3, 4]),  # the canary it replaces is unloaded
        ("promote", None, {"stable": 2}, [2, 3]),
        ("rollback", None, {"stable": 1}, [1, 3]),
        ("stable", 3, {"stable": 3}, [3]),
    ],
)
def test_a_label_step_keeps_a_version_a_push_added_meanwhile(tmp_path, action, version, labels_after, served_after):
    """Stable 1, canary 2, and version 3 loaded unlabelled by a push that landed while an operator
    was between steps: each step changes only the versions it names (`stable` resets on purpose)."""
    from serving.tools import labels

    (tmp_path / MODEL_NAME / "3").mkdir(parents=True)
    config = tmp_path / "models.config"
    config.write_text(
        _config(
            [
                (
                    MODEL_NAME,
                    str(tmp_path / MODEL_NAME),
                    "specific { versions: 1 versions: 2 versions: 3 }",
                    {"stable": 1, "canary": 2},
                )
            ]
        )
    )
    namespace = argparse.Namespace(
        config=str(config), server=None, model_name=MODEL_NAME, timeout=1, action=action, version=version
    )
    labels.run(namespace)
    model = text_format.Parse(config.read_text(), model_server_config_pb2.ModelServerConfig()).model_config_list.config[
        0
    ]
    assert dict(model.version_labels) == labels_after
    assert list(model.model_version_policy.specific.versions) == served_after


@pytest.mark.parametrize(
    "before, labels_after, words",
    [
        # canary's second step, after a push replaced the unlabelled version 2 with version 3
        ({"stable": 1}, {"stable": 1, "canary": 2}, "no longer served"),
        # another command moved the labels since this one read them
        ({"stable": 5}, {"stable": 5, "canary": 3}, "the labels changed meanwhile"),
    ],
)
def test_a_step_that_no_longer_fits_the_configuration_writes_nothing(tmp_path, before, labels_after, words):
    from serving.tools import labels

    config = tmp_path / "models.config"
    config.write_text(_config([(MODEL_NAME, str(tmp_path), "specific { versions: 1 versions: 3 }", {"stable": 1})]))
    written = config.read_text()
    with pytest.raises(SystemExit, match=words):
        labels._apply(str(config), MODEL_NAME, before, labels_after)
    assert config.read_text() == written
