"""How a model holds up on handwriting that is not MNIST's: test digits under each family of
modules/distortions.py, scored for accuracy, calibration error and low-confidence rate.

The release scores the pushed model and the version it replaces at each family's middle
strength (release.json "robustness", the model card's Robustness section);
benchmarks/robustness.py scores every strength."""

import os
from typing import Any, Callable, Dict, Optional

import numpy as np

from components.release import confidence
from modules import distortions

Predict = Callable[[np.ndarray], np.ndarray]  # uint8 images [n, 28, 28] -> probabilities [n, 10]


def score(probabilities: np.ndarray, labels: np.ndarray) -> Dict[str, float]:
    """Accuracy, expected calibration error and low-confidence rate (as the release reports them)."""
    scored = confidence.result(probabilities, labels)
    return {
        "accuracy": round(float(np.mean(probabilities.argmax(axis=1) == labels)), 5),
        "ece": scored["ece"],
        "low_confidence_rate": scored["low_confidence_rate"],
    }


def evaluate(
    predict: Predict,
    images: np.ndarray,
    labels: np.ndarray,
    middle_only: bool = False,
    seed: int = 0,
    clean: Optional[np.ndarray] = None,
):
    """{"rows", "clean": scores, "families": {family: {strength: scores}}}: every strength, or each
    family's middle one. clean: predict(images) when the caller has it already."""
    clean = predict(images) if clean is None else clean
    result = {"rows": int(len(labels)), "clean": score(clean, labels), "families": {}}
    for name, family in distortions.FAMILIES.items():
        strengths = [family.strengths[distortions.MIDDLE]] if middle_only else family.strengths
        result["families"][name] = {
            str(strength): score(predict(distortions.apply(name, strength, images, seed)), labels)
            for strength in strengths
        }
    return result


def middle(result: dict, key: str = "accuracy") -> Dict[str, float]:
    """{family: the score at its middle strength} from evaluate's result."""
    return {
        name: result["families"][name][str(family.strengths[distortions.MIDDLE])][key]
        for name, family in distortions.FAMILIES.items()
    }


def release_record(
    images: np.ndarray,
    labels: np.ndarray,
    predict: Predict,
    probabilities: np.ndarray,
    baseline: Optional[Predict],
    baseline_dir: Optional[str],
) -> Dict[str, Any]:
    """release.json's "robustness": each family at its middle strength, for the pushed model (whose
    probabilities on the clean images the release has already computed) and, when there is one,
    the version it replaces (the newest already pushed)."""
    model = evaluate(predict, images, labels, middle_only=True, clean=probabilities)
    previous = evaluate(baseline, images, labels, middle_only=True) if baseline else None
    families = {}
    for name, family in distortions.FAMILIES.items():
        strength = family.strengths[distortions.MIDDLE]
        families[name] = {
            "strength": strength,
            "unit": family.unit,
            **model["families"][name][str(strength)],
            "baseline_accuracy": previous["families"][name][str(strength)]["accuracy"] if previous else None,
        }
    return {
        "examples": model["rows"],
        "clean_accuracy": model["clean"]["accuracy"],
        "baseline": os.path.basename(baseline_dir) if baseline_dir else None,
        "baseline_clean_accuracy": previous["clean"]["accuracy"] if previous else None,
        "families": families,
    }
