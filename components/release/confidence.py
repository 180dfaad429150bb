"""How sure the pushed model is on the test split, as an operator routing uncertain digits to a
person needs to know: its expected calibration error, the share of low-confidence predictions
(top probability below the served metric's bound), and the temperature it was calibrated with
(modules/calibration.py, fitted on eval by the Trainer)."""

from typing import Any, Callable, Dict

import numpy as np
import tensorflow as tf

from modules import calibration, signatures


def images_predictor(saved_model, batch: int = 1000) -> Callable[[np.ndarray], np.ndarray]:
    """A function: uint8 images [n, 28, 28] -> probabilities [n, 10], through the SavedModel's
    predict_images signature. saved_model: its directory, or the model tf.saved_model.load returned."""
    loaded = tf.saved_model.load(saved_model) if isinstance(saved_model, str) else saved_model
    signature = loaded.signatures[signatures.IMAGES_SIGNATURE]

    def predict(images: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                signature(**{signatures.IMAGES_INPUT: tf.constant(images[i : i + batch])})[
                    signatures.PROBABILITIES_OUTPUT
                ].numpy()
                for i in range(0, len(images), batch)
            ]
        )

    return predict


def result(probabilities: np.ndarray, labels: np.ndarray) -> Dict[str, Any]:
    """release.json's "confidence" (record.build adds the Trainer's calibration record)."""
    return {
        "examples": int(len(labels)),
        "ece": round(calibration.expected_calibration_error(probabilities, labels), 5),
        "low_confidence_bound": signatures.DEFAULT_LOW_CONFIDENCE_BOUND,
        "low_confidence_rate": round(
            calibration.low_confidence_rate(probabilities, signatures.DEFAULT_LOW_CONFIDENCE_BOUND), 5
        ),
    }
