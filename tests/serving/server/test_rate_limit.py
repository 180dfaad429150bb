"""Per-client rate limits and quotas: the token buckets on a fake clock, and serving.server refusing
a burst over REST and gRPC with TF Serving's RESOURCE_EXHAUSTED (429), counted in its metrics."""

import grpc
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving.server import main, rate_limit
from tests.serving.conftest import MODEL_NAME, publish, start_server
from tests.serving.server.test_metrics import PATH, samples


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _taken(limiter, client, times):
    """How many of `times` requests at one instant the client got through."""
    passed = 0
    for _ in range(times):
        try:
            limiter.check(client)
            passed += 1
        except rate_limit.Throttled:
            pass
    return passed


def test_a_burst_passes_then_the_rate_refills_the_bucket():
    clock = Clock()
    limiter = rate_limit.RateLimiter(rate=2, burst=5, clock=clock)
    assert _taken(limiter, "a", 8) == 5
    with pytest.raises(
        rate_limit.Throttled, match=r"rate limit of 2 requests a second \(burst 5\) reached; retry in 0.50 s"
    ) as refused:
        limiter.check("a")
    assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and refused.value.http_status == 429
    assert refused.value.retry_after == 1 and refused.value.limit == "rate"
    clock.now += 1.0  # two more tokens
    assert _taken(limiter, "a", 5) == 2
    assert _taken(limiter, "b", 5) == 5  # another client has its own bucket


def test_the_quota_caps_a_client_that_stays_under_the_rate():
    clock = Clock()
    limiter = rate_limit.RateLimiter(rate=10, burst=10, quota=30, quota_seconds=3600, clock=clock)
    passed = 0
    for _ in range(60):  # 60 s at 1 request a second: under the rate, over the quota
        passed += _taken(limiter, "a", 1)
        clock.now += 1
    assert passed == 30
    with pytest.raises(rate_limit.Throttled, match="quota of 30 requests per 3600 s used up; retry in") as refused:
        limiter.check("a")
    assert refused.value.limit == "quota"


def test_clients_are_keyed_by_header_when_given_else_by_address():
    limiter = rate_limit.RateLimiter(rate=1, burst=1, key_header="X-Api-Key")
    assert limiter.client("10.0.0.1", {"x-api-key": "k1"}) == "key:k1"
    assert limiter.client("10.0.0.1", {}) == "address:10.0.0.1"
    assert rate_limit.RateLimiter(rate=1, burst=1).client("10.0.0.1", {"x-api-key": "k1"}) == "address:10.0.0.1"


def test_the_buckets_kept_are_bounded_and_the_least_recent_go():
    limiter = rate_limit.RateLimiter(rate=1, burst=1, max_clients=3, clock=Clock())
    for n in range(10):
        limiter.check(f"address:10.0.0.{n}")
    assert list(limiter._buckets) == ["address:10.0.0.7", "address:10.0.0.8", "address:10.0.0.9"]


@pytest.mark.parametrize(
    "address, client",
    [
        ("10.0.0.1", "10.0.0.1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),  # IPv4-mapped: the same client as over IPv4
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),  # IPv6: by its /64
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("%5B2001:db8:1:2::5%5D", "2001:db8:1:2::/64"),  # as gRPC quotes it
        ("fe80::1%eth0", "fe80::/64"),
        ("unix:/tmp/socket", "unix:/tmp/socket"),
    ],
)
def test_addresses_name_one_client_each(address, client):
    assert rate_limit.client_address(address) == client


@pytest.mark.parametrize(
    "peer, address",
    [("ipv4:127.0.0.1:5555", "127.0.0.1"), ("ipv6:%5B::1%5D:5555", "%5B::1%5D"), ("unix:/tmp/s", "/tmp/s")],
)
def test_grpc_peers_lose_their_port(peer, address):
    from serving.server import grpc_api

    assert grpc_api._peer_address(peer) == address


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rate": 0, "burst": 1}, "the rate limit must be a positive number"),
        ({"rate": float("inf"), "burst": 1}, "the rate limit must be a positive number"),
        ({"rate": 1, "burst": 0}, "the burst must be at least 1 request"),
        ({"rate": 1, "burst": 1, "quota": -1}, "the quota must be 0"),
        ({"rate": 1, "burst": 1, "quota": 5, "quota_seconds": 0}, "the quota must be 0"),
    ],
)
def test_bad_limits_are_refused_in_plain_words(kwargs, message):
    with pytest.raises(ValueError, match=message):
        rate_limit.RateLimiter(**kwargs)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--rate_limit_per_second=-1"], "--rate_limit_per_second must be 0"),
        (["--rate_limit_per_second=5", "--rate_limit_burst=0"], "the burst must be at least 1"),
    ],
)
def test_bad_flags_stop_the_server_before_it_loads(capsys, flags, message):
    with pytest.raises(SystemExit):
        main.parse_args(["--model_base_path=/nowhere", *flags])
    assert message in capsys.readouterr().err


def test_the_limit_is_off_by_default():
    assert main.rate_limiter(main.parse_args(["--model_base_path=/nowhere"])) is None


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory, exported_model):
    base = str(tmp_path_factory.mktemp("push_limited") / MODEL_NAME)
    publish(exported_model, base, 1)
    config = tmp_path_factory.mktemp("monitoring") / "monitoring.config"
    config.write_text(f'prometheus_config {{ enable: true path: "{PATH}" }}')
    # 0.001 a second: no token comes back during the test, however slow the machine.
    srv = start_server(
        "dev",
        base,
        f"--monitoring_config_file={config}",
        "--rate_limit_per_second=0.001",
        "--rate_limit_burst=3",
        "--rate_limit_key_header=X-Api-Key",
    )
    yield srv
    srv.stop()


def test_a_burst_over_the_limit_gets_429_over_rest_and_resource_exhausted_over_grpc(limited_server, test_images_labels):
    images = test_images_labels[0][:1]
    body = {"signature_name": "predict_images", "instances": images.tolist()}
    url = f"{limited_server.rest_url}/v1/models/{MODEL_NAME}:predict"
    # A key of its own: the server's start-up probes (from the same address) used the address's tokens.
    key = {"X-Api-Key": "test-client"}
    answers = [requests.post(url, json=body, headers=key, timeout=30) for _ in range(8)]
    assert [a.status_code for a in answers] == [200] * 3 + [429] * 5
    refused = answers[-1]
    assert refused.json()["error"].startswith("rate limit of 0.001 requests a second (burst 3) reached; retry in")
    assert int(refused.headers["Retry-After"]) >= 1
    # The ONNX file is the model too: limited. The page is not.
    onnx = requests.get(f"{limited_server.rest_url}/web/models/{MODEL_NAME}/model.onnx", headers=key, timeout=30)
    assert onnx.status_code == 429
    assert requests.get(limited_server.rest_url + "/", headers=key, timeout=30).status_code == 200
    # gRPC metadata carries the same key: the same client, its bucket empty, so the call is refused.
    channel = grpc.insecure_channel(limited_server.grpc_target)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL_NAME
    request.model_spec.signature_name = "predict_images"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(images))
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(request, metadata=[("x-api-key", "test-client")], timeout=30)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "rate limit" in error.value.details()
    # Another key is another client: served.
    assert stub.Predict(request, metadata=[("x-api-key", "other")], timeout=30).outputs["classes"].int64_val
    channel.close()
    page = requests.get(limited_server.rest_url + PATH, timeout=30).text
    counted = samples(page)
    assert counted[("mnist_tfx_throttled_requests_total", (("entrypoint", "REST"), ("limit", "rate")))] == 6
    assert counted[("mnist_tfx_throttled_requests_total", (("entrypoint", "GRPC"), ("limit", "rate")))] == 1
    # TF Serving's own request count has the refused calls too (the 5 REST predicts and the gRPC call).
    exhausted = (":tensorflow:serving:request_count", (("model_name", MODEL_NAME), ("status", "RESOURCE_EXHAUSTED")))
    assert counted[exhausted] == 6
