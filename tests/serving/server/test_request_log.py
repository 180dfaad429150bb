"""Request logging: logging_config read as TF Serving reads it, an id on every answer (REST header,
gRPC trailing metadata), sampled PredictionLogs on disk that read back to exactly what was answered,
and a full queue or a refusing disk costing a counted record, never a request."""

import os
import time

import numpy as np
import pytest
import requests
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from benchmarks import pictures as suite
from modules import push_layout, signatures
from monitoring import request_logs
from serving.clients.grpc_client import GrpcClient
from serving.clients.rest_client import RestClient
from serving.server import request_log
from serving.server.metrics import NoMetrics
from tests.serving.conftest import MODEL_NAME, publish, start_server
from tests.serving.server.test_metrics import samples


def _logging_config(text: str):
    config = model_server_config_pb2.ModelConfig()
    text_format.Parse(text, config)
    return config.logging_config


def test_logging_config_is_read_as_tf_serving_writes_it():
    spec = request_log.spec_from_config(
        _logging_config(
            "logging_config { sampling_config { sampling_rate: 0.25 } "
            'log_collector_config { type: "tfrecord" filename_prefix: "logs/mnist" } }'
        ),
        "/etc/serving",
    )
    assert spec == request_log.LoggingSpec("/etc/serving/logs/mnist", 0.25)
    assert request_log.spec_from_config(_logging_config(""), "/x") is None
    off = 'logging_config { sampling_config { sampling_rate: 0 } log_collector_config { filename_prefix: "/l" } }'
    assert request_log.spec_from_config(_logging_config(off), "/x") is None


@pytest.mark.parametrize(
    "text, message",
    [
        ('logging_config { log_collector_config { type: "bigquery" filename_prefix: "/l" } }', "type 'bigquery'"),
        ("logging_config { sampling_config { sampling_rate: 1.5 } }", r"sampling_rate must lie in \[0, 1\]"),
        ("logging_config { sampling_config { sampling_rate: 0.5 } }", "needs log_collector_config"),
    ],
)
def test_a_bad_logging_config_is_refused_in_plain_words(text, message):
    with pytest.raises(ValueError, match=message):
        request_log.spec_from_config(_logging_config(text), "/x")


def test_request_ids_are_generated_and_a_client_id_is_kept_only_when_it_is_a_plain_token():
    ids = {request_log.request_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 32 for i in ids)
    assert request_log.client_request_id("trace-42.a:b") == "trace-42.a:b"
    for bad in ("", "has space", "x" * 129, "new\nline", None, b"bytes"):
        assert request_log.client_request_id(bad) is None


def _offer(logger, n: int) -> None:
    images = np.zeros((1, 28, 28), np.uint8)
    probabilities = np.full((1, 10), 0.1, np.float32)
    for i in range(n):
        logger.offer(f"id{i}", 1, signatures.IMAGES_SIGNATURE, {"images": images}, {}, {"probabilities": probabilities})


def test_a_full_queue_drops_and_counts_records_instead_of_waiting(tmp_path):
    logger = request_log.RequestLogger(
        request_log.LoggingSpec(str(tmp_path / "requests"), 1.0), NoMetrics(), MODEL_NAME, queue_size=1
    )
    _offer(logger, 2000)  # far faster than one writer thread can build and write protos
    logger.close()
    dropped = logger.dropped.get("queue_full", 0)
    assert dropped > 0
    assert logger.written + dropped == 2000
    rows, problems = request_logs.read(request_logs.log_files(str(tmp_path / "requests")), MODEL_NAME)
    assert len(rows) == logger.written and problems.bad_records == 0


def test_the_queue_is_bounded_in_bytes_as_well_as_in_records(tmp_path):
    """Records of 784 + 40 bytes each against a budget of 2,000 bytes: at most two wait at once;
    what does not fit is dropped and counted, and the budget frees as records are written."""
    logger = request_log.RequestLogger(
        request_log.LoggingSpec(str(tmp_path / "requests"), 1.0), NoMetrics(), MODEL_NAME, queue_bytes=2000
    )
    _offer(logger, 200)
    logger.close()
    dropped = logger.dropped.get("queue_full", 0)
    assert dropped > 0 and logger.written + dropped == 200 and logger.written >= 2
    assert logger._queued_bytes == 0
    big = request_log.RequestLogger(
        request_log.LoggingSpec(str(tmp_path / "big"), 1.0), NoMetrics(), MODEL_NAME, queue_bytes=100
    )
    _offer(big, 1)  # one record larger than the whole budget
    big.close()
    assert big.dropped == {"queue_full": 1} and big.written == 0


def test_a_file_another_replica_made_under_the_same_name_is_never_reopened(tmp_path, monkeypatch):
    """Two replicas on one volume can share a process id and start in the same second: the name a
    logger picks is claimed by creating the file, so it takes the next one instead of truncating."""
    import datetime
    import itertools
    import os

    monkeypatch.setattr(request_log, "_SEQUENCE", itertools.count(1))  # as a fresh process counts
    prefix = str(tmp_path / "requests")
    now = datetime.datetime.now(datetime.timezone.utc)
    theirs = []
    for second in range(3):  # this second and the next two: wherever the logger's clock falls
        started = (now + datetime.timedelta(seconds=second)).strftime("%Y%m%dT%H%M%S")
        path = f"{prefix}-{started}-{request_log._HOST}-{os.getpid()}-00001{request_log.FILE_SUFFIX}"
        with open(path, "wb") as f:
            f.write(b"another replica's records")
        theirs.append(path)
    logger = request_log.RequestLogger(request_log.LoggingSpec(prefix, 1.0), NoMetrics(), MODEL_NAME)
    _offer(logger, 1)
    logger.close()
    assert logger.written == 1
    assert all(open(p, "rb").read() == b"another replica's records" for p in theirs)
    mine = [p for p in request_logs.log_files(prefix) if p not in theirs]
    assert len(mine) == 1 and len(request_logs.read(mine, MODEL_NAME)[0]) == 1


def test_records_offered_after_the_log_closes_are_counted_not_lost(tmp_path):
    """A reload or a shutdown closes a logger while requests may still answer: each record is
    written or counted as dropped ("closed"), none vanishes behind the writer's end mark."""
    logger = request_log.RequestLogger(
        request_log.LoggingSpec(str(tmp_path / "requests"), 1.0), NoMetrics(), MODEL_NAME
    )
    _offer(logger, 100)
    logger.close()
    _offer(logger, 50)
    assert logger.dropped.get("closed") == 50 and logger.written + sum(logger.dropped.values()) == 150
    rows, _ = request_logs.read(request_logs.log_files(str(tmp_path / "requests")), MODEL_NAME)
    assert len(rows) == logger.written


def test_a_refusing_disk_drops_and_counts_records(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log folder should be")
    logger = request_log.RequestLogger(request_log.LoggingSpec(str(blocker / "requests"), 1.0), NoMetrics(), MODEL_NAME)
    _offer(logger, 5)
    logger.close()
    assert logger.dropped == {"write_error": 5} and logger.written == 0


def test_files_rotate_by_size_and_by_age_and_every_record_reads_back(tmp_path):
    """A file is closed once it holds max_file_bytes (the next record starts a new one) or has been
    open max_file_seconds; no record is lost or split across files."""
    by_size = request_log.RequestLogger(
        request_log.LoggingSpec(str(tmp_path / "size" / "requests"), 1.0), NoMetrics(), MODEL_NAME, max_file_bytes=1
    )
    for i in range(3):  # one record at a time: each fills a file past one byte, the next opens another
        _offer(by_size, 1)
        deadline = time.time() + 30
        while (by_size.written < i + 1 or by_size._writer is not None) and time.time() < deadline:
            time.sleep(0.05)  # written, and its file closed
    by_size.close()
    files = request_logs.log_files(str(tmp_path / "size" / "requests"))
    assert len(files) == 3 and by_size.written == 3
    assert [len(request_logs.read([f], MODEL_NAME)[0]) for f in files] == [1, 1, 1]

    by_age = request_log.RequestLogger(
        request_log.LoggingSpec(str(tmp_path / "age" / "requests"), 1.0), NoMetrics(), MODEL_NAME, max_file_seconds=0.5
    )
    _offer(by_age, 2)
    deadline = time.time() + 30  # the writer closes the file once it is half a second old
    while by_age._writer is None and time.time() < deadline:
        time.sleep(0.05)
    while by_age._writer is not None and time.time() < deadline:
        time.sleep(0.05)
    assert by_age._writer is None, "the file was not closed at its age limit"
    _offer(by_age, 1)
    by_age.close()
    files = request_logs.log_files(str(tmp_path / "age" / "requests"))
    assert [len(request_logs.read([f], MODEL_NAME)[0]) for f in files] == [2, 1]


def _reaches(read, expected, timeout: float = 60.0):
    """read()'s value once it equals expected (the writer thread has caught up), or its last value
    after timeout seconds."""
    value, deadline = read(), time.time() + timeout
    while value != expected and time.time() < deadline:
        time.sleep(0.2)
        value = read()
    return value


@pytest.fixture(scope="module")
def logging_server(tmp_path_factory, exported_model):
    """serving.server with request logging on for every request."""
    root = tmp_path_factory.mktemp("logged")
    base = str(root / MODEL_NAME)
    publish(exported_model, base, 1)
    config = root / "models.config"
    config.write_text(push_layout.render_models_config([(MODEL_NAME, base)], request_log=(str(root / "logs"), 1.0)))
    srv = start_server("dev", base, f"--model_config_file={config}")
    srv.log_prefix = str(root / "logs" / MODEL_NAME / "requests")
    yield srv
    srv.stop()


def test_every_answer_carries_a_request_id_and_logged_requests_read_back_exactly(logging_server, test_images_labels):
    images = test_images_labels[0]
    rest, grpc_client = (
        RestClient(logging_server.rest_url, MODEL_NAME),
        GrpcClient(logging_server.grpc_target, MODEL_NAME),
    )
    answers = [
        rest.predict_images(images[:3]),
        grpc_client.predict_images(images[3:5]),
        rest.predict_images(images[5:6]),
    ]
    ids = [a.request_id for a in answers]
    assert all(ids) and len(set(ids)) == 3
    # A client's own id (a tracing header) ...
    traced = requests.post(
        f"{logging_server.rest_url}/v1/models/{MODEL_NAME}:predict",
        headers={"X-Request-Id": "trace-7"},
        json={"signature_name": signatures.IMAGES_SIGNATURE, "instances": images[6:7].tolist()},
        timeout=30,
    )
    # ... is answered back for tracing beside the server's own id, which alone is logged.
    assert traced.headers["X-Client-Request-Id"] == "trace-7" and len(traced.headers["X-Request-Id"]) == 32
    # A picture is logged as the 28x28 image the model made of it; a blank page is no row.
    page, blank = suite.render(images[7], suite.Page(paper=200), np.random.default_rng(0)), suite.blank_pages(1)[0]
    seen = rest.predict_pictures([page, blank])
    assert seen.digit_found.tolist() == [True, False]
    # Errors carry an id too; they are not logged (nothing was answered).
    refused = requests.get(f"{logging_server.rest_url}/v1/models/nope", timeout=30)
    assert refused.status_code == 404 and len(refused.headers["X-Request-Id"]) == 32
    logging_server.stop()  # the server closes its log file on the way out

    rows, problems = request_logs.read(request_logs.log_files(logging_server.log_prefix), MODEL_NAME)
    assert problems.bad_records == 0 and problems.truncated_files == 0
    traced_id = traced.headers["X-Request-Id"]
    assert rows.request_ids.tolist() == [ids[0]] * 3 + [ids[1]] * 2 + [ids[2], traced_id, seen.request_id]
    assert rows.rows.tolist() == [0, 1, 2, 0, 1, 0, 0, 0]
    np.testing.assert_array_equal(rows.images, np.concatenate([images[:7], seen.images[:1]]))
    answered = np.concatenate([a.probabilities for a in answers])
    np.testing.assert_allclose(rows.probabilities[:6], answered, atol=1e-6)
    assert set(rows.versions.tolist()) == {1}


def test_the_request_log_metrics_count_exactly_what_was_dropped(tmp_path, exported_model, test_images_labels):
    images = test_images_labels[0]
    base = str(tmp_path / MODEL_NAME)
    publish(exported_model, base, 1)
    blocker = tmp_path / "blocked"
    blocker.write_text("not a folder")
    config = tmp_path / "models.config"
    # Every request logged, into a folder that cannot be created: each record is dropped and counted.
    config.write_text(push_layout.render_models_config([(MODEL_NAME, base)], request_log=(str(blocker), 1.0)))
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true path: "/metrics" }')
    with start_server("dev", base, f"--model_config_file={config}", f"--monitoring_config_file={monitoring}") as srv:
        rest = RestClient(srv.rest_url, MODEL_NAME)
        for i in range(50):
            assert rest.predict_images(images[i : i + 1]).classes.shape == (1,)  # every request answered
        key = ("mnist_tfx_request_log_dropped_records_total", (("model_name", MODEL_NAME), ("reason", "write_error")))
        dropped = _reaches(
            lambda: samples(requests.get(f"{srv.rest_url}/metrics", timeout=30).text).get(key, 0), expected=50
        )
    assert dropped == 50
    assert not os.path.exists(str(blocker) + "/mnist")


def test_one_record_in_two_is_logged_at_a_sampling_rate_of_one_half(tmp_path):
    logger = request_log.RequestLogger(
        request_log.LoggingSpec(str(tmp_path / "requests"), 0.5), NoMetrics(), MODEL_NAME
    )
    _offer(logger, 1000)
    logger.close()
    assert 400 <= logger.written <= 600  # Binomial(1000, 0.5): outside with probability < 1e-9
    rows, _ = request_logs.read(request_logs.log_files(str(tmp_path / "requests")), MODEL_NAME)
    assert len(rows) == logger.written
