"""The release's explanations: the most confident mistakes chosen, each class's digits, and the
picture drawn from a trained model's explain signature (plain functions, no TFX)."""

import numpy as np
from PIL import Image

from components.release import explanations
from modules import attributions


def test_the_most_confident_mistakes_come_first_and_right_answers_never():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.05, 0.95], [0.7, 0.3]])
    labels = np.array([0, 0, 0, 0, 1])
    assert explanations.confident_mistakes(probabilities, labels, count=3) == [3, 1, 4]


def test_each_class_gets_its_first_digits():
    labels = np.array([3, 1, 3, 0, 3, 2, 4, 5, 6, 7, 8, 9, 1])
    rows = explanations.per_class_rows(labels, count=2)
    assert rows[3] == [0, 2] and rows[1] == [1, 12] and rows[9] == [11]


def test_the_release_record_and_picture_come_from_the_models_own_signature(
    exported_model, test_images_labels, tmp_path
):
    from components.release import confidence

    images, labels = (a[:400] for a in test_images_labels)
    probabilities = confidence.images_predictor(exported_model)(images)
    explain = attributions.saved_model_explainer(exported_model)
    png = tmp_path / "explanations.png"
    record = explanations.release_record(explain, images, labels, probabilities, str(png))
    wrong = np.flatnonzero(probabilities.argmax(axis=1) != labels)
    assert len(record["mistakes"]) == min(len(wrong), explanations.WRONG_SHOWN) > 0
    first = record["mistakes"][0]
    assert first["label"] == labels[first["index"]] and first["top_classes"][0][0] != first["label"]
    assert Image.open(png).size[0] > 600
    # The explainer answers one map per image, for the class asked.
    maps = explain(images[:2], np.array([1, 7]))
    assert maps.shape == (2, 28, 28) and np.all(np.isfinite(maps))
