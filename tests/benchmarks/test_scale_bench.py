"""The scale benchmark's arithmetic: a fixed start-up makes the raw cost per example fall with size,
while the net cost (start-up measured on the probe and removed) stays flat for a linear stage."""

from benchmarks import scale_bench


def _row(examples: int, seconds_of, factor: int = 1, peak_mb: int = 1000) -> dict:
    return {
        "factor": factor,
        "examples": examples,
        "peak_rss_mb": peak_mb,
        "stages": {
            name: {
                "seconds": seconds_of(examples),
                "examples": examples,
                "microseconds_per_example": seconds_of(examples) / examples * 1e6,
            }
            for name in ("StatisticsGen", "Evaluator")
        },
    }


def linear(n):  # 8 s start-up, 40 us per example
    return 8.0 + 40e-6 * n


def test_a_linear_stage_with_a_start_up_has_flat_net_cost_and_falling_raw_cost():
    rows = [_row(70_000, linear), _row(280_000, linear), _row(1_120_000, linear, peak_mb=6600)]
    meets = scale_bench.add_ratios(rows, _row(1_400, linear))
    assert [row["net_microseconds_per_example"]["StatisticsGen"] for row in rows] == [40.0, 40.0, 40.0]
    assert rows[2]["cost_vs_smallest"]["StatisticsGen"] < 0.5  # the start-up shared by 16x the examples
    assert rows[1]["marginal_microseconds_per_example"]["Evaluator"] == 40.0
    assert rows[2]["marginal_cost_vs_first_step"] == {"StatisticsGen": 1.0, "Evaluator": 1.0}
    assert meets["marginal_cost_within_tolerance"] and meets["net_cost_within_tolerance"]
    assert not meets["raw_cost_within_tolerance"] and meets["peak_rss_within_target"]


def _rising_marginal(rise: float):
    """A stage whose cost per extra example is 40 us up to 280k examples and 40 * (1 + rise) after."""

    def seconds(n):
        return 8.0 + 40e-6 * min(n, 280_000) + 40e-6 * (1 + rise) * max(n - 280_000, 0)

    return seconds


def test_the_marginal_cost_target_has_its_tolerance_as_the_boundary():
    tolerance = scale_bench.COST_TOLERANCE
    for rise, expected in ((0.5 * tolerance, True), (1.5 * tolerance, False)):
        seconds = _rising_marginal(rise)
        rows = [_row(70_000, seconds), _row(280_000, seconds), _row(1_120_000, seconds)]
        meets = scale_bench.add_ratios(rows, _row(1_400, seconds))
        assert meets["marginal_cost_within_tolerance"] is expected, rise


def test_memory_beyond_the_target_misses_it():
    target = scale_bench.PEAK_RSS_TARGET_MB
    for peak, expected in ((target, True), (target + 1, False)):
        rows = [_row(70_000, linear), _row(280_000, linear), _row(1_120_000, linear, peak_mb=peak)]
        assert scale_bench.add_ratios(rows, _row(1_400, linear))["peak_rss_within_target"] is expected


def test_a_superlinear_stage_misses_the_cost_targets():
    def superlinear(n):
        return 8.0 + 40e-6 * n * (n / 70_000) ** 0.2

    rows = [_row(70_000, superlinear), _row(280_000, superlinear), _row(1_120_000, superlinear)]
    meets = scale_bench.add_ratios(rows, _row(1_400, superlinear))
    assert rows[2]["net_cost_vs_smallest"]["StatisticsGen"] > 1.2
    assert rows[2]["marginal_cost_vs_first_step"]["StatisticsGen"] > 1.2
    assert not meets["marginal_cost_within_tolerance"] and not meets["net_cost_within_tolerance"]
