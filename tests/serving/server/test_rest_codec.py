"""TF Serving's REST JSON <-> arrays, without a server."""

import base64

import numpy as np
import pytest
import tensorflow as tf

from serving.server import rest_codec
from serving.server.errors import ServingError

IMAGES = {"images": tf.TensorSpec([None, 28, 28], tf.uint8)}
EXAMPLES = {"examples": tf.TensorSpec([None], tf.string)}
TWO = {"a": tf.TensorSpec([None], tf.float32), "b": tf.TensorSpec([None], tf.int64)}


def _parse(body: str, specs):
    return rest_codec.parse_predict(body.encode(), lambda signature: specs)


def test_row_and_columnar_formats_give_the_same_arrays():
    image = np.arange(784).reshape(28, 28) % 256
    rows = _parse(f'{{"signature_name": "s", "instances": [{image.tolist()}]}}', IMAGES)
    named = _parse(f'{{"instances": [{{"images": {image.tolist()}}}]}}', IMAGES)
    columns = _parse(f'{{"inputs": {{"images": [{image.tolist()}]}}}}', IMAGES)
    bare = _parse(f'{{"inputs": [{image.tolist()}]}}', IMAGES)
    assert rows[0] == "s" and rows[2] is True and columns[2] is False
    for parsed in (rows, named, columns, bare):
        np.testing.assert_array_equal(parsed[1]["images"], image[None])


def test_b64_values_become_bytes_and_several_inputs_stack_per_instance():
    raw = b"\x00\xffbytes"
    _, arrays, _ = _parse(f'{{"instances": [{{"b64": "{base64.b64encode(raw).decode()}"}}]}}', EXAMPLES)
    assert arrays["examples"].tolist() == [raw]
    _, arrays, _ = _parse('{"instances": [{"a": 1.5, "b": 2}, {"a": 0.5, "b": 3}]}', TWO)
    assert arrays["a"].tolist() == [1.5, 0.5] and arrays["b"].tolist() == [2, 3]


@pytest.mark.parametrize(
    "body, words",
    [
        ("{", "JSON Parse error"),
        ("[1]", "must be a JSON object"),
        ('{"instances": []}', "non-empty list"),
        ('{"instances": [1], "inputs": [1]}', "only one of 'inputs' or 'instances'"),
        ('{"signature_name": "s"}', "Missing 'inputs' or 'instances' key"),
        ('{"inputs": {"images": [[1, 2], [3]]}}', "a tensor needs one shape"),
        ('{"inputs": {"images": [[1, 2], [[3, 4]]]}}', "Expecting shape to be: [2] but got: [1, 2]"),
        ('{"instances": [{"images": [1]}, [2]]}', "Expecting"),
        ("", "The document is empty"),
        ('{"instances": [' + "9" * 5000 + "]}", "a number is too long"),
        ('{"instances": ' + "[" * 65 + "1" + "]" * 65 + "}", "is not a tensor"),  # past numpy's 64 dimensions
        ('{"inputs": {"pixels": [1]}}', "unknown inputs ['pixels']"),
        ('{"instances": [{"b64": "!!"}]}', "invalid base64"),
        ('{"signature_name": 3, "instances": [1]}', "must be a string"),
    ],
)
def test_malformed_bodies_are_invalid_argument_with_a_plain_reason(body, words):
    with pytest.raises(ServingError) as e:
        _parse(body, IMAGES)
    assert e.value.http_status == 400 and words in e.value.message


def test_responses_follow_the_request_format_and_encode_bytes():
    outputs = {"probabilities": np.array([[0.25, 0.75]], np.float32), "classes": np.array([1])}
    assert rest_codec.format_predict(outputs, row_format=True) == {
        "predictions": [{"probabilities": [0.25, 0.75], "classes": 1}]
    }
    assert rest_codec.format_predict(outputs, row_format=False) == {
        "outputs": {"probabilities": [[0.25, 0.75]], "classes": [1]}
    }
    # As TF Serving: strings as text, base64 only for outputs whose name ends in _bytes.
    assert rest_codec.format_predict({"x_bytes": np.array([b"\x01"], dtype=object)}, row_format=True) == {
        "predictions": [{"b64": "AQ=="}]
    }
    assert rest_codec.format_predict({"label": np.array([b"seven"], dtype=object)}, row_format=False) == {
        "outputs": ["seven"]
    }
