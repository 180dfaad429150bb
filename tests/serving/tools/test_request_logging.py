"""serving.tools.request_logging: request logging on and off in a models.config, nothing else changed."""

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from modules import push_layout
from serving.tools import request_logging


def _models(path):
    with open(path) as f:
        config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    return {m.name: m for m in config.model_config_list.config}


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "serving_model" / push_layout.MODELS_CONFIG_FILE
    path.parent.mkdir()
    text = push_layout.render_models_config([("mnist", "/srv/mnist"), ("other", "/srv/other")], versions_served=2)
    path.write_text(text)
    return path


def test_logging_goes_on_for_every_model_and_off_again_and_the_rest_stays(config, capsys):
    before = _models(config)
    assert request_logging.main([str(config), "--sampling-rate", "0.25"]) == 0
    models = _models(config)
    for name in ("mnist", "other"):
        log = models[name].logging_config
        assert log.log_collector_config.type == "tfrecord"
        assert log.log_collector_config.filename_prefix == f"../outputs/request_logs/{name}/requests"
        assert log.sampling_config.sampling_rate == 0.25
        assert models[name].model_version_policy.latest.num_versions == 2
        assert models[name].base_path == before[name].base_path
    # The folder the message names is the one monitoring.check reads by default beside serving_model/.
    assert (
        f"request logging on: {config.parent.parent / 'outputs' / 'request_logs'}, rate 0.25" in capsys.readouterr().out
    )
    # A push keeps it.
    pushed = push_layout.render_models_config([("mnist", "/srv/mnist")], previous=config.read_text())
    assert (
        text_format.Parse(pushed, model_server_config_pb2.ModelServerConfig())
        .model_config_list.config[0]
        .HasField("logging_config")
    )
    assert request_logging.main([str(config), "--off", "--model", "other"]) == 0
    models = _models(config)
    assert models["mnist"].HasField("logging_config") and not models["other"].HasField("logging_config")


def test_a_model_the_file_does_not_name_or_a_bad_rate_changes_nothing(config, capsys):
    text = config.read_text()
    assert request_logging.main([str(config), "--model", "mnits"]) == 2
    assert "no model 'mnits' in the config (it names: mnist, other)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        request_logging.main([str(config), "--sampling-rate", "0"])
    with pytest.raises(SystemExit):
        request_logging.main([str(config.parent / "missing.config")])
    assert config.read_text() == text
