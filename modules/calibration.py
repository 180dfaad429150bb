"""Confidence that means something: temperature scaling and the expected calibration error.

A network's softmax is usually over-confident: among digits it calls 99% sure, fewer than 99% are
right. Temperature scaling (Guo et al., 2017) divides the logits by one number T fitted on held-out
data (the eval split), which changes no prediction, only how sure each one claims to be. The model
ends in a softmax, so log-probabilities stand in for logits: softmax(log p / T) = softmax(z / T).
numpy and scipy only; the exported model applies the same formula in TensorFlow (modules/export.py).
"""

import numpy as np
from scipy import optimize

ECE_BINS = 15
TEMPERATURE_RANGE = (0.05, 20.0)
TINY = 1e-30  # log(0) guard: a float32 softmax can underflow to exactly 0 (export.py uses it too)


def with_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    scaled = np.log(np.maximum(probabilities.astype(np.float64), TINY)) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)


def _nll(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.mean(np.log(np.maximum(probabilities[np.arange(len(labels)), labels], TINY))))


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The T in TEMPERATURE_RANGE that minimises the negative log-likelihood of labels."""
    if len(labels) == 0:
        raise ValueError("no rows to fit a temperature on")
    low, high = np.log(TEMPERATURE_RANGE)
    result = optimize.minimize_scalar(
        lambda log_t: _nll(with_temperature(probabilities, float(np.exp(log_t))), labels),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(result.x))


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """The rows-weighted mean |accuracy - confidence| over equal-width bins of the top probability."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        rows = which == b
        if rows.any():
            error += rows.mean() * abs(correct[rows].mean() - confidence[rows].mean())
    return float(error)


def low_confidence_rate(probabilities: np.ndarray, bound: float) -> float:
    """The share of rows whose top probability is below bound (0 for no rows)."""
    probabilities = np.asarray(probabilities)
    return float(np.mean(probabilities.max(axis=1) < bound)) if len(probabilities) else 0.0
