"""The roofline's inputs: the model's FLOPs per image, counted from its layers."""

from benchmarks import compare


def test_forward_flops_match_the_architecture_by_hand():
    def conv(hw, c_in, c_out):  # 3x3 'same' convolutions
        return 2 * hw * hw * 9 * c_in * c_out

    by_hand = (
        conv(28, 1, 32)
        + conv(28, 32, 32)
        + conv(14, 32, 64)
        + conv(14, 64, 64)
        + conv(7, 64, 128)
        + 2 * (7 * 7 * 128) * 128
        + 2 * 128 * 10
    )
    assert compare.forward_flops_per_image() == by_hand


def test_median_epoch_ratio_skips_the_first_epoch_and_resists_one_stalled_epoch():
    trainer = [60.0, 40.0, 41.0, 90.0, 40.0]  # first epoch reads the records; one 90 s stall
    script = [35.0, 36.0, 36.0, 36.0, 37.0]
    assert compare.median_epoch_ratio(trainer, script) == round(36.0 / 40.5, 3)
    assert compare.median_epoch_ratio([40.0], script) is None
