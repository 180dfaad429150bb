"""components/release/adversarial.py: ART's FGSM and PGD on the served SavedModel, cross-checked."""

import types

import numpy as np
import pytest

from components.release import adversarial, model_card


@pytest.fixture(scope="module")
def attacked(loaded_export, test_images_labels):
    images, labels = test_images_labels
    # The same version twice: its "replaced version" columns must repeat its own PGD numbers.
    return adversarial.release_record(loaded_export, images, labels, 60, loaded_export, "7")


def test_the_release_table_has_every_budget_and_attack_and_falls_as_the_budget_grows(attacked):
    assert attacked["examples"] == 60 and attacked["budgets"] == list(adversarial.BUDGETS)
    pgd = [attacked["pgd"][str(budget)] for budget in adversarial.BUDGETS]
    assert pgd == sorted(pgd, reverse=True) and pgd[-1] < attacked["clean_accuracy"], pgd
    assert attacked["fgsm"]["0.3"] < attacked["clean_accuracy"]
    # PGD is the stronger attack at every budget (its first step alone is FGSM-sized and it takes 20).
    assert all(attacked["pgd"][b] <= attacked["fgsm"][b] for b in attacked["pgd"])
    assert "adversarial-robustness-toolbox" in attacked["library"]
    # The worst case holds a digit only if both attacks failed on it.
    for budget in attacked["pgd"]:
        assert attacked["worst_case"][budget] <= min(attacked["pgd"][budget], attacked["fgsm"][budget])


def test_arts_pgd_and_the_projects_own_agree_on_the_same_digits(attacked):
    check = attacked["cross_check"]
    assert check["examples"] == 60 and check["agrees"], check
    for budget in map(str, adversarial.BUDGETS):
        assert abs(check["own_pgd"][budget] - check["art_pgd"][budget]) <= adversarial.CROSS_CHECK_MARGIN


def test_the_replaced_version_is_scored_on_the_same_digits(attacked):
    assert attacked["baseline"] == "7" and attacked["baseline_note"] is None
    assert attacked["baseline_clean_accuracy"] == attacked["clean_accuracy"]
    # The same model: FGSM has no random start, and PGD's comes from the same seed.
    assert attacked["baseline_fgsm"] == attacked["fgsm"] and attacked["baseline_pgd"] == attacked["pgd"]
    assert attacked["baseline_worst_case"] == attacked["worst_case"]


def test_a_replaced_version_without_the_function_is_named_not_scored(loaded_export, test_images_labels):
    old = types.SimpleNamespace(signatures=loaded_export.signatures)  # exported before the function existed
    images, labels = test_images_labels
    record = adversarial.release_record(loaded_export, images[:20], labels[:20], 20, old, "3")
    assert record["baseline"] is None and record["baseline_pgd"] is None
    assert (
        record["baseline_note"]
        == "version 3 is not scored: the SavedModel has no predict_transformed_uncalibrated function"
    )


def test_a_transform_other_than_pixel_over_255_is_refused(loaded_export):
    rescaled = types.SimpleNamespace(
        predict_transformed_uncalibrated=loaded_export.predict_transformed_uncalibrated,
        transform_images=lambda images: loaded_export.transform_images(images) * 2.0 - 1.0,
    )
    with pytest.raises(ValueError, match=r"Transform is not pixel / 255"):
        adversarial.transformed_predictor(rescaled)


def test_no_examples_means_no_table(loaded_export, test_images_labels):
    images, labels = test_images_labels
    assert adversarial.release_record(loaded_export, images, labels, 0) is None


def test_the_digits_are_spread_over_the_split():
    assert adversarial.spread(10_000, 5).tolist() == [0, 2499, 4999, 7499, 9999]
    assert adversarial.spread(3, 10).tolist() == [0, 1, 2]


def test_an_attack_budget_outside_the_pixel_scale_is_refused(loaded_export, test_images_labels):
    images, labels = test_images_labels
    predict = adversarial.transformed_predictor(loaded_export)
    with pytest.raises(ValueError, match=r"budget 1.5 is outside \(0, 1\]"):
        adversarial.evaluate(predict, images[:4], labels[:4], budgets=[0.1, 1.5])


def test_the_card_shows_the_table_the_cross_check_and_the_replaced_version(attacked):
    text = model_card.render({**_minimal_card(), "adversarial": attacked})
    assert "## Under attack" in text and "| attack | budget (L-inf) | accuracy | version 7 |" in text
    pgd = attacked["pgd"]["0.1"]
    assert f"| PGD | 0.1 | {pgd:.4f} | {pgd:.4f} |" in text
    assert "this project's PGD (`modules/adversarial.py`) and ART's agree within 0.05" in text
    assert np.isfinite(attacked["cross_check"]["largest_difference"])


def _minimal_card():
    from tests.components.release.test_model_card import _card

    return _card()


def test_a_budget_of_one_lets_pgd_break_every_digit(loaded_export, test_images_labels):
    images, labels = test_images_labels  # any picture is within reach: a working attack wins always
    predict = adversarial.transformed_predictor(loaded_export)
    table = adversarial.evaluate(predict, images[:20], labels[:20], budgets=[1.0], steps=5, cross_check_examples=0)
    assert table["pgd"]["1.0"] == 0.0 and table["cross_check"] is None
