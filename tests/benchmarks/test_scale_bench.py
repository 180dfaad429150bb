"""The scale benchmark's arithmetic: a fixed start-up makes the raw cost per example fall with size,
while the net cost (start-up measured on the probe and removed) stays flat for a linear stage."""
from benchmarks import scale_bench


def _row(examples: int, seconds_of, factor: int = 1, peak_mb: int = 1000) -> dict:
    return {"factor": factor, "examples": examples, "peak_rss_mb": peak_mb,
            "stages": {name: {"seconds": seconds_of(examples), "examples": examples,
                              "microseconds_per_example": seconds_of(examples) / examples * 1e6}
                       for name in ("StatisticsGen", "Evaluator")}}


def test_a_linear_stage_with_a_start_up_has_flat_net_cost_and_falling_raw_cost():
    linear = lambda n: 8.0 + 40e-6 * n  # noqa: E731  8 s start-up, 40 us per example
    probe = _row(1_400, linear)
    rows = [_row(70_000, linear), _row(280_000, linear), _row(1_120_000, linear, peak_mb=6600)]
    meets = scale_bench.add_ratios(rows, probe)
    assert [row["net_microseconds_per_example"]["StatisticsGen"] for row in rows] == [40.0, 40.0, 40.0]
    assert rows[2]["cost_vs_smallest"]["StatisticsGen"] < 0.5  # the start-up shared by 16x the examples
    assert rows[1]["marginal_microseconds_per_example"]["Evaluator"] == 40.0
    assert rows[2]["marginal_cost_vs_first_step"] == {"StatisticsGen": 1.0, "Evaluator": 1.0}
    assert meets == {"cost_tolerance": 0.2, "peak_rss_target_mb": 8192, "marginal_cost_within_tolerance": True,
                     "net_cost_within_tolerance": True, "raw_cost_within_tolerance": False,
                     "peak_rss_within_target": True}


def test_a_superlinear_stage_and_too_much_memory_miss_the_targets():
    superlinear = lambda n: 8.0 + 40e-6 * n * (n / 70_000) ** 0.2  # noqa: E731
    rows = [_row(70_000, superlinear), _row(280_000, superlinear), _row(1_120_000, superlinear, peak_mb=9000)]
    meets = scale_bench.add_ratios(rows, _row(1_400, superlinear))
    assert rows[2]["net_cost_vs_smallest"]["StatisticsGen"] > 1.2
    assert rows[2]["marginal_cost_vs_first_step"]["StatisticsGen"] > 1.2
    assert not any(meets[k] for k in ("marginal_cost_within_tolerance", "net_cost_within_tolerance",
                                      "peak_rss_within_target"))
