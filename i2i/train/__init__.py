"""The shared adversarial training core: the Method protocol, the Trainer loop and checkpoints."""

from i2i.train.loop import Trainer, TrainingError, TrainResult
from i2i.train.method import Method
from i2i.train.signals import TrainingInterrupted

__all__ = ["Method", "Trainer", "TrainResult", "TrainingError", "TrainingInterrupted"]
