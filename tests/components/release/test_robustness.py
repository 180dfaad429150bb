"""The release's robustness record: a real model on real test digits under every family at its
middle strength, next to the replaced version, and the model card's table of it."""

import numpy as np

from components.release import confidence, model_card, robustness
from modules import distortions, idx
from pipeline import configs


def test_release_record_scores_model_and_replaced_version(exported_model):
    images, labels = idx.read_span_pair(idx.span_dir(configs.DATA_ROOT, 1), idx.TEST_PAIR)
    images, labels = images[:200], labels[:200]
    predict = confidence.images_predictor(exported_model, batch=100)

    def replaced(x):  # another model: the same probabilities with the classes rotated by one
        return np.roll(predict(x), 1, axis=1)

    record = robustness.release_record(images, labels, predict, predict(images), replaced, "/serving/mnist/7")
    assert record["examples"] == 200 and record["baseline"] == "7"
    assert record["clean_accuracy"] == round(float(np.mean(predict(images).argmax(1) == labels)), 5)
    assert set(record["families"]) == set(distortions.FAMILIES)
    thinner = record["families"]["thinner"]
    assert thinner["strength"] == distortions.FAMILIES["thinner"].strengths[distortions.MIDDLE]
    eroded = distortions.apply("thinner", thinner["strength"], images)
    assert thinner["accuracy"] == round(float(np.mean(predict(eroded).argmax(1) == labels)), 5)
    # The replaced version's column is that model's own score on the same distorted images.
    assert record["baseline_clean_accuracy"] == round(float(np.mean(replaced(images).argmax(1) == labels)), 5)
    assert thinner["baseline_accuracy"] == round(float(np.mean(replaced(eroded).argmax(1) == labels)), 5)
    assert all(f["baseline_accuracy"] < f["accuracy"] for f in record["families"].values())
    first_push = robustness.release_record(images, labels, predict, predict(images), None, None)
    assert first_push["baseline"] is None and first_push["families"]["blur"]["baseline_accuracy"] is None

    rows = model_card.robustness_rows(first_push)
    assert rows[0][:3] == ["clean", "-", f"{first_push['clean_accuracy']:.4f}"] and len(rows) == 10
    assert rows[1 + list(distortions.FAMILIES).index("noise")][1] == "50 grey levels std"
