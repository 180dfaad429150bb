"""The full-integer TFLite model for TensorFlow Lite for Microcontrollers: as C source, with the
tensor arena it needs, run by TFLite Micro's own interpreter (`tflite-micro` on PyPI, the reference
kernels a microcontroller build compiles).

The C array is 16-byte aligned, as TFLM requires of a model it reads in place from flash. A
firmware includes model_data.h, passes `g_model_data` to `tflite::GetModel` and gives the
interpreter an arena of at least `arena_bytes`: the smallest arena in which this interpreter
allocates the model's tensors and runs it, found by bisection (a build for another target may
need a little more for alignment; the record states what was measured here).
"""

from typing import Tuple

import numpy as np

from modules import push_layout

ARRAY_NAME = "g_model_data"
BYTES_PER_LINE = 12
ARENA_SEARCH_LIMIT = 8 << 20  # a model that needs more than 8 MB of arena fits no microcontroller
ARENA_STEP = 1024  # the arena is reported rounded up to whole KB


def c_source(flatbuffer: bytes) -> Tuple[str, str]:
    """(model_data.cc, model_data.h) holding the flatbuffer as an aligned const array."""
    header_guard = "MNIST_TFX_MODEL_DATA_H_"
    header = (
        f"// The mnist-tfx full-integer model ({push_layout.TFLITE_INT8_FILE}) for TensorFlow Lite Micro.\n"
        f"#ifndef {header_guard}\n#define {header_guard}\n\n"
        f"extern const unsigned char {ARRAY_NAME}[];\n"
        f"extern const unsigned int {ARRAY_NAME}_len;\n\n"
        f"#endif  // {header_guard}\n"
    )
    lines = [
        "  " + ", ".join(f"0x{b:02x}" for b in flatbuffer[i : i + BYTES_PER_LINE]) + ","
        for i in range(0, len(flatbuffer), BYTES_PER_LINE)
    ]
    source = (
        f'#include "{push_layout.MICRO_HEADER_FILE}"\n\n'
        "// 16-byte aligned: TFLite Micro reads the model in place and needs its buffers aligned.\n"
        f"alignas(16) const unsigned char {ARRAY_NAME}[] = {{\n" + "\n".join(lines) + "\n};\n"
        f"const unsigned int {ARRAY_NAME}_len = {len(flatbuffer)};\n"
    )
    return source, header


def array_from_source(source: str) -> bytes:
    """The bytes a C compiler would place in the array (for checking the source round-trips)."""
    body = source[source.index("{") + 1 : source.index("};")]
    return bytes(int(token, 16) for token in body.replace("\n", " ").split(",") if token.strip())


def _interpreter(flatbuffer: bytes, arena_size: int):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(flatbuffer, arena_size=arena_size)


def _runs(flatbuffer: bytes, arena_size: int, probe: np.ndarray) -> bool:
    try:
        interpreter = _interpreter(flatbuffer, arena_size)
        interpreter.set_input(probe, 0)
        interpreter.invoke()
        return True
    except RuntimeError:
        return False


def arena_bytes(flatbuffer: bytes, probe: np.ndarray) -> int:
    """The smallest arena (whole KB) in which TFLite Micro allocates the model and runs probe (one
    input row, the model's input dtype). Raises ValueError when even ARENA_SEARCH_LIMIT is too small."""
    try:  # at the limit, a failure is the model's (an op TFLite Micro lacks), not the arena's: say which
        interpreter = _interpreter(flatbuffer, ARENA_SEARCH_LIMIT)
        interpreter.set_input(probe, 0)
        interpreter.invoke()
    except RuntimeError as error:
        raise ValueError(f"TFLite Micro cannot run the model (arena {ARENA_SEARCH_LIMIT} bytes): {error}") from error
    low, high = 0, ARENA_SEARCH_LIMIT // ARENA_STEP  # in KB: low fails (or is 0), high runs
    while high - low > 1:
        middle = (low + high) // 2
        if _runs(flatbuffer, middle * ARENA_STEP, probe):
            high = middle
        else:
            low = middle
    return high * ARENA_STEP


def predict_classes(flatbuffer: bytes, inputs: np.ndarray, arena_size: int) -> np.ndarray:
    """Classes for each input row, one row per invoke as on a microcontroller."""
    interpreter = _interpreter(flatbuffer, arena_size)
    # The model's two outputs: the int8 probabilities and the int32 class.
    output = next(i for i in range(2) if interpreter.get_output_details(i)["dtype"] == np.int32)
    classes = []
    for row in inputs:
        interpreter.set_input(row[np.newaxis], 0)
        interpreter.invoke()
        classes.append(int(interpreter.get_output(output).reshape(-1)[0]))
    return np.array(classes)
