"""TFLite Micro: the C source holds the model byte for byte, 16-byte aligned; the arena found is the
smallest that works; TFLite Micro's interpreter gives LiteRT's classes."""

import numpy as np

from components.release import micro, tflite


def test_the_c_source_holds_the_flatbuffer_aligned(int8_model):
    source, header = micro.c_source(int8_model)
    assert "alignas(16) const unsigned char g_model_data[]" in source
    assert f"const unsigned int g_model_data_len = {len(int8_model)};" in source
    assert micro.array_from_source(source) == int8_model
    assert "extern const unsigned char g_model_data[];" in header and '#include "model_data.h"' in source


def test_the_arena_is_the_smallest_that_runs(int8_model, loaded_export, test_images_labels):
    probe = tflite.device_inputs(loaded_export, int8_model, test_images_labels[0][:1])
    arena = micro.arena_bytes(int8_model, probe)
    assert arena % micro.ARENA_STEP == 0 and 0 < arena < 256 * 1024
    assert micro._runs(int8_model, arena, probe)
    assert not micro._runs(int8_model, arena - micro.ARENA_STEP, probe)


def test_tflite_micro_gives_litert_s_classes(int8_model, loaded_export, test_images_labels):
    fed = tflite.device_inputs(loaded_export, int8_model, test_images_labels[0][:100])
    by_micro = micro.predict_classes(int8_model, fed, arena_size=256 * 1024)
    np.testing.assert_array_equal(by_micro, tflite.predict_classes(int8_model, tflite.FULL_INTEGER, fed))
