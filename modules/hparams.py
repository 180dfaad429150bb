"""Model hyperparameters: a frozen dataclass that travels through Trainer's custom_config."""
import dataclasses
from typing import Any, Dict


@dataclasses.dataclass(frozen=True)
class HParams:
    epochs: int = 6  # the seeds' CNN passes 99% on test after about 4 epochs here; 6 leaves margin
    batch_size: int = 128  # per replica; the global batch is this times the number of replicas
    learning_rate: float = 1e-3  # Adam's default, stable for this CNN without warm-up
    dropout: float = 0.5  # before the classifier, the seeds' value; the model has no other regularizer
    shuffle_buffer: int = 10_000  # about a sixth of the training set: batches mix all digits

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
