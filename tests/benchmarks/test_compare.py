"""The roofline's inputs: the model's FLOPs per image, counted from its layers."""
from benchmarks import compare


def test_forward_flops_match_the_architecture_by_hand():
    conv = lambda hw, c_in, c_out: 2 * hw * hw * 9 * c_in * c_out  # noqa: E731  3x3 'same' convolutions
    by_hand = (conv(28, 1, 32) + conv(28, 32, 32) + conv(14, 32, 64) + conv(14, 64, 64)
               + 2 * (7 * 7 * 64) * 128 + 2 * 128 * 10)
    assert compare.forward_flops_per_image() == by_hand
