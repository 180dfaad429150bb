"""TF Serving's REST JSON for predict: requests to arrays, arrays to responses.

Row format {"instances": [...]} answers {"predictions": [...]}; columnar {"inputs": ...}
answers {"outputs": ...}. Bytes travel as {"b64": "<base64>"}.
"""

import base64
import binascii
import json
from typing import Any, Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from serving.server.errors import ServingError, invalid


def _decode_b64(value):
    """Replaces each {"b64": s} by its bytes, and plain strings by their UTF-8 bytes."""
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise invalid(f'an object inside a tensor must be {{"b64": "<base64 string>"}}; got keys {sorted(value)}')
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError) as e:
            raise invalid(f'invalid base64 in a "b64" value: {e}') from e
    if isinstance(value, list):
        return [_decode_b64(v) for v in value]
    if isinstance(value, str):
        return value.encode("utf-8")
    return value


def _shape(value) -> tuple:
    """The shape of nested JSON lists; INVALID_ARGUMENT, in TF Serving's words, when they are ragged."""
    if not isinstance(value, list):
        return ()
    shapes = [_shape(v) for v in value]
    for shape in shapes[1:]:
        if len(shape) != len(shapes[0]):
            raise invalid(f"Expecting shape to be: {list(shapes[0])} but got: {list(shape)}: a tensor needs one shape")
        if shape != shapes[0]:
            raise invalid(
                f"Expecting tensor size: {int(np.prod(shapes[0]))} but got: {int(np.prod(shape))} "
                f"(shapes {list(shapes[0])} and {list(shape)}): a tensor needs one shape"
            )
    return (len(value), *(shapes[0] if shapes else ()))


def _to_array(name: str, value: Any, spec: tf.TensorSpec) -> np.ndarray:
    """The input as an array; numpy builds it, and only a value numpy cannot make one tensor of is
    walked again (_shape) to say why in TF Serving's words."""
    try:
        value = _decode_b64(value)
        try:
            if spec.dtype == tf.string:
                array = np.array(value, dtype=object)  # ragged lists would hide inside as objects
                whole = not (array.size and any(isinstance(v, list) for v in array.reshape(-1)))
            else:
                array, whole = np.array(value), True
        except (ValueError, TypeError):
            whole = False
        if not whole:
            _shape(value)  # raises with the reason when the lists are ragged
            raise invalid("the value is not a tensor (for example, deeper than numpy's 64 dimensions)")
    except ServingError as e:
        raise invalid(f"input '{name}': {e.message}") from None
    except RecursionError:
        raise invalid(f"input '{name}' nests lists too deeply for a tensor") from None
    return array


def _request(body: bytes) -> Tuple[dict, str]:
    """(the JSON object, its signature_name) of a request body; INVALID_ARGUMENT in plain words."""
    if not body.strip():
        raise invalid("JSON Parse error: The document is empty")
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise invalid(f"JSON Parse error: Invalid value ({e})") from e
    except RecursionError as e:
        raise invalid("JSON Parse error: the request nests arrays or objects too deeply") from e
    except ValueError as e:  # an integer longer than Python converts (4,300 digits)
        raise invalid(f"JSON Parse error: a number is too long ({str(e).split(':')[0]})") from e
    if not isinstance(request, dict):
        raise invalid(f"the request body must be a JSON object; got {type(request).__name__}")
    signature = request.get("signature_name", "")
    if not isinstance(signature, str):
        raise invalid("'signature_name' key must be a string value.")
    return request, signature


def parse_predict(body: bytes, specs_for) -> Tuple[str, Dict[str, np.ndarray], bool]:
    """-> (signature name, {input: array}, row_format). specs_for(signature) gives the inputs' specs."""
    request, signature = _request(body)
    if "instances" in request and "inputs" in request:
        raise invalid(
            "Not formatted correctly expecting only one of 'inputs' or 'instances' keys exist: 'instances' is the "
            "row format, 'inputs' the columnar one"
        )
    if "instances" not in request and "inputs" not in request:
        raise invalid("Missing 'inputs' or 'instances' key: the request needs one of them")
    specs = specs_for(signature)
    if "instances" in request:
        return signature, _parse_instances(request["instances"], specs), True
    inputs = request["inputs"]
    named = isinstance(inputs, dict) and set(inputs) != {"b64"}
    if len(specs) == 1 and not named:  # a single input may be given bare
        [(name, spec)] = specs.items()
        return signature, {name: _to_array(name, inputs, spec)}, False
    if not named:
        raise invalid(f"'inputs' must be an object naming the inputs {sorted(specs)}")
    return signature, _named_arrays(inputs, specs), False


def _parse_instances(instances: Any, specs: Dict[str, tf.TensorSpec]) -> Dict[str, np.ndarray]:
    if not isinstance(instances, list) or not instances:
        raise invalid("'instances' must be a non-empty list, one entry per example")
    named = [isinstance(i, dict) and set(i) != {"b64"} for i in instances]
    if len(specs) == 1:
        [(name, spec)] = specs.items()
        if any(named) and not all(named):
            raise invalid(
                f"instances mix objects naming '{name}' with bare values: Expecting "
                f"{'value/list but got object' if not named[0] else 'object but got list'}"
            )
        rows = [i[name] if isinstance(i, dict) and set(i) == {name} else i for i in instances]
        return {name: _to_array(name, rows, spec)}
    if not all(named):
        raise invalid(
            f"with several inputs each instance must be an object naming {sorted(specs)}: Expecting object but got list"
        )
    names = set(instances[0])
    if any(set(i) != names for i in instances):
        raise invalid("every instance must name the same inputs")
    return _named_arrays({k: [i[k] for i in instances] for k in names}, specs)


def _named_arrays(values: Dict[str, Any], specs: Dict[str, tf.TensorSpec]) -> Dict[str, np.ndarray]:
    unknown = sorted(set(values) - set(specs))
    if unknown:
        raise invalid(f"unknown inputs {unknown}; the signature's inputs are {sorted(specs)}")
    return {k: _to_array(k, v, specs[k]) for k, v in values.items()}


def _jsonable(name: str, array: np.ndarray):
    """As TF Serving writes an output: strings as text, base64 ({"b64": ...}) only for outputs whose
    name ends in `_bytes`."""
    if array.dtype == object:
        return _encode_strings(array.tolist(), name.endswith("_bytes"))
    return array.tolist()


def _encode_strings(value, as_b64: bool):
    if isinstance(value, list):
        return [_encode_strings(v, as_b64) for v in value]
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode("ascii")} if as_b64 else value.decode("utf-8", "replace")
    return value


def format_predict(outputs: Dict[str, np.ndarray], row_format: bool) -> Dict[str, Any]:
    if not row_format:
        if len(outputs) == 1:
            return {"outputs": _jsonable(*next(iter(outputs.items())))}
        return {"outputs": {k: _jsonable(k, v) for k, v in outputs.items()}}
    if not outputs:
        raise invalid("the signature answered nothing: empty tensor map")
    first = next(iter(outputs))
    expected = outputs[first].shape[0] if outputs[first].ndim else None
    for name, value in outputs.items():
        size = value.shape[0] if value.ndim else None
        if size is None or size != expected:
            raise invalid(
                f"row format needs every output to have the same batch size: Tensor name: {name} has inconsistent "
                f"batch size: {size} expecting: {expected}; use 'inputs' instead"
            )
    if len(outputs) == 1:
        return {"predictions": _jsonable(*next(iter(outputs.items())))}
    columns = {k: _jsonable(k, v) for k, v in outputs.items()}
    return {"predictions": [{k: columns[k][i] for k in columns} for i in range(expected)]}


def parse_predict_response(body: bytes, output_names, row_format: bool) -> Dict[str, np.ndarray]:
    """The inverse of format_predict, for a response read back (the request-log proxy): {output: array}.
    output_names: the signature's outputs, in the order TF Serving writes them."""
    answer = json.loads(body)
    names = list(output_names)
    values = answer["predictions" if row_format else "outputs"]
    if len(names) == 1:
        return {names[0]: np.asarray(_decode_b64(values))}
    if row_format:
        return {k: np.asarray(_decode_b64([row[k] for row in values])) for k in names}
    return {k: np.asarray(_decode_b64(values[k])) for k in names}


def _feature(name: str, value) -> "tf.train.Feature":
    """One tf.Example feature from TF Serving's JSON: numbers (all integers: int64, else float),
    strings, {"b64": ...} bytes; a value or a list of them."""
    values = value if isinstance(value, list) else [value]
    if not values:
        raise invalid(f"feature '{name}' is an empty list: its type cannot be told")
    if all(isinstance(v, bool) or not isinstance(v, (int, float, str, dict)) for v in values):
        raise invalid(f"feature '{name}' must hold numbers, strings or {{\"b64\": ...}}")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))
    if all(isinstance(v, (str, dict)) for v in values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[_decode_b64(v) for v in values]))
    raise invalid(f"feature '{name}' mixes numbers and strings")


def _example(features: dict) -> bytes:
    if not isinstance(features, dict):
        raise invalid("each example must be a JSON object of feature name -> value(s)")
    example = tf.train.Example()
    for name, value in features.items():
        example.features.feature[name].CopyFrom(_feature(name, value))
    return example.SerializeToString()


def parse_classify(body: bytes, check=None, max_bytes: Optional[int] = None) -> Tuple[str, list]:
    """TF Serving's REST classify/regress request -> (signature name, serialized tf.Examples):
    {"signature_name": ..., "context": {features shared by all}, "examples": [{features}, ...]}.
    check(signature, number of examples) runs before any example is built (the signature's method,
    the row limit); a context that every example would copy past max_bytes is refused first."""
    request, signature = _request(body)
    if not isinstance(request.get("examples"), list) or not request["examples"]:
        raise invalid("the request needs 'examples': a non-empty list of objects")
    context = request.get("context", {})
    if not isinstance(context, dict):
        raise invalid("'context' must be an object of feature name -> value(s)")
    if check is not None:
        check(signature, len(request["examples"]))
    if context and max_bytes is not None:
        copied = len(json.dumps(context)) * len(request["examples"])
        if copied > max_bytes:
            raise invalid(
                f"the context shared by {len(request['examples'])} examples would be copied into about "
                f"{copied} bytes of examples; the limit is {max_bytes}"
            )
    examples = [e if not isinstance(e, dict) else {**context, **e} for e in request["examples"]]
    return signature, [_example(e) for e in examples]


def format_classify(classes: np.ndarray, scores: np.ndarray) -> Dict[str, Any]:
    """{"results": [[[label, score], ...] per example]}, as TF Serving answers classify."""
    return {
        "results": [
            [[label.decode("utf-8", "replace"), float(score)] for label, score in zip(row_classes, row_scores)]
            for row_classes, row_scores in zip(classes, scores)
        ]
    }
