"""Model hyperparameters: a frozen dataclass that travels through Trainer's custom_config, and the
custom_config keys that Trainer and Tuner read (the pipeline writes them with custom_config())."""

import dataclasses
from typing import Any, Dict, Optional

# The custom_config keys of Transform, Tuner and Trainer.
HPARAMS_KEY = "hparams"  # HParams.to_dict()
CODE_VERSION_KEY = "code_version"  # a fingerprint of modules/ (pipeline/code_version.py): edits re-run, not cache
MAX_TRIALS_KEY = "max_trials"  # Tuner only: how many points of the search space to try

STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
# The classifier's input: the last 7x7x128 feature map flattened (6,272 x 128 weights in the Dense
# layer, most of the model) or averaged over its 7x7 positions (128 x 128: a model about a fifth the
# size, for microcontrollers; its accuracy: benchmarks/formats.py).
HEADS = ("flatten", "global_average")
# "cnn": modules/cnn.build_model, with BatchNorm; "privacy_tutorial": TensorFlow Privacy's MNIST
# tutorial network (cnn.build_privacy_tutorial_model), without: the one private training can use.
NETWORKS = ("cnn", "privacy_tutorial")


def check_budget(budget: float, name: str = "budget") -> float:
    """An L-infinity attack budget on the [0, 1] pixel scale (modules/adversarial.py): above 0, at
    most 1 (a budget of 1 allows any picture at all); anything else is a plain ValueError."""
    if not 0.0 < float(budget) <= 1.0:
        raise ValueError(
            f"{name} {budget!r} is outside (0, 1]: it is an L-infinity distance on the [0, 1] pixel "
            "scale (0.3 lets each pixel move by 30% of black-to-white)"
        )
    return float(budget)


@dataclasses.dataclass(frozen=True)
class HParams:
    epochs: int = 12  # the cosine schedule ends here; 16 scored no better (benchmarks/accuracy_bench.py)
    batch_size: int = 128  # per replica; the global batch is this times the number of replicas
    peak_learning_rate: float = 3e-3  # Adam with BatchNorm tolerates it; higher diverged in warm-up
    warmup_fraction: float = 0.1  # of all steps, linear from 0: large early steps upset BN statistics
    bn_momentum: float = 0.99  # BatchNorm moving averages; short runs (quick mode) need ~0.9
    dropout: float = 0.4  # before the classifier; BN and augmentation regularize the rest
    weight_decay: float = 0.05  # decoupled (AdamW), times the learning rate; 0: none (accuracy_bench.py)
    translate: float = 0.1  # random shift, as a fraction of 28 px, training only
    rotate_degrees: float = 15.0  # random rotation either way, training only: digits are written at a slant
    zoom: float = 0.1  # random scale in [1 - zoom, 1 + zoom], training only
    distort: float = 0.5  # share of training images given a pen or scan distortion (modules/augment.py)
    seed: int = 0  # weight initialisation, dropout, shuffling and augmentation
    ensemble: int = 1  # models trained one after another (seeds seed, seed+1, ...); served: their mean
    early_stopping_patience: int = 6  # epochs without a lower eval loss; 3 stopped the cosine schedule too early
    # auto: mixed_float16 on GPU; mixed_bfloat16 on TPU and on CPUs that compute bfloat16 natively
    # (AVX512-BF16, AMX), float32 on other CPUs, where bfloat16 is emulated (benchmarks/precision_bench.py)
    precision: str = "auto"
    strategy: str = "auto"  # auto: TPU if `tpu` is set, multi-worker if TF_CONFIG has >1 worker, GPUs...
    tpu: str = ""  # TPU name or grpc:// address for TPUClusterResolver; empty: no TPU
    head: str = "flatten"  # see HEADS
    shuffle_buffer: int = 10_000  # about a sixth of the training set: batches mix all digits
    # PGD adversarial training (modules/adversarial.py): this share of every training batch is
    # replaced by its PGD examples. 0: off, the default: it costs Trainer time and clean accuracy
    # for robustness only a deliberate attacker tests (benchmarks/adversarial.py, docs/SECURITY.md).
    adversarial_share: float = 0.0  # half: Goodfellow et al.'s mix; the clean half keeps clean accuracy
    adversarial_budget: float = 0.3  # L-infinity on the [0, 1] scale: the largest budget the release attacks with
    adversarial_steps: int = 5  # each step costs about one forward and backward pass of the attacked share
    network: str = "cnn"  # see NETWORKS
    # Differentially private training, DP-SGD (modules/privacy.py), of network "privacy_tutorial"
    # (BatchNorm mixes the examples of a batch; DP-SGD needs each example's gradient apart).
    private: bool = False
    dp_noise_multiplier: float = 1.1  # noise std / clip; TensorFlow Privacy's tutorial default
    dp_l2_clip: float = 1.0  # each example's gradient norm is cut to this; the tutorial's

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy {self.strategy!r} is not one of {STRATEGIES}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r} is not one of {PRECISIONS}")
        if self.head not in HEADS:
            raise ValueError(f"head {self.head!r} is not one of {HEADS}")
        if not 0.0 <= self.adversarial_share <= 1.0:
            raise ValueError(f"adversarial_share {self.adversarial_share!r} is a share of each batch: 0 to 1")
        if self.adversarial_share:
            check_budget(self.adversarial_budget, "adversarial_budget")
            if self.adversarial_steps < 1:
                raise ValueError(f"adversarial_steps must be at least 1, got {self.adversarial_steps}")
        if self.network not in NETWORKS:
            raise ValueError(f"network {self.network!r} is not one of {NETWORKS}")
        if self.private and self.network != "privacy_tutorial":
            raise ValueError(
                "private training needs network='privacy_tutorial': the CNN's BatchNorm mixes each "
                "example into the others' gradients, which per-example clipping cannot bound"
            )
        if self.private and self.dp_noise_multiplier <= 0:
            raise ValueError(
                f"dp_noise_multiplier {self.dp_noise_multiplier!r} adds no noise: epsilon would be infinite. "
                "DP-SGD needs a positive multiplier (modules/privacy.py; benchmarks/privacy.py measures its accuracy)"
            )
        if self.private and self.dp_l2_clip <= 0:
            raise ValueError(
                f"dp_l2_clip {self.dp_l2_clip!r} must be above 0: the largest gradient norm an example keeps"
            )
        if self.private and (self.adversarial_share or self.ensemble > 1):
            raise ValueError("private training trains one model without adversarial examples: set neither")
        if self.private and self.strategy == "multi_worker":
            raise ValueError("private training runs under model.fit: not with the multi_worker strategy")
        if self.ensemble < 1:
            raise ValueError(f"ensemble must be at least 1 model, got {self.ensemble}")

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "HParams":
        """Rebuilds from custom_config; an unknown key is an error, not a silent no-op."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown hyperparameters {unknown}; known: {sorted(known)}")
        return cls(**values)


def custom_config(hparams: Dict[str, Any], code_version: str, max_trials: Optional[int] = None) -> Dict[str, Any]:
    """The custom_config the pipeline gives Trainer (and, with max_trials, Tuner)."""
    config = {HPARAMS_KEY: dict(hparams), CODE_VERSION_KEY: code_version}
    if max_trials is not None:
        config[MAX_TRIALS_KEY] = max_trials
    return config


def from_custom_config(config: Optional[Dict[str, Any]], tuned: Optional[Dict[str, Any]] = None) -> HParams:
    """custom_config's HParams, overridden by the Tuner's best values (`tuned`) when the Tuner ran."""
    hparams = HParams.from_dict((config or {}).get(HPARAMS_KEY, {}))
    return dataclasses.replace(hparams, **((tuned or {}).get("values", {})))
