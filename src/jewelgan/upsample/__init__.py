"""The cascade's learned upsampling stage: training pairs (pairs.py), training (trainer.py), its quality against
the classic resamplers (quality.py) and its files in a model folder (stage.py)."""

from jewelgan.upsample.pairs import PairError, PairSource, check_pairs, degrade
from jewelgan.upsample.trainer import UpsampleConfig, UpsampleConfigError, UpsamplerTrainer, train_upsampler

__all__ = ["PairError", "PairSource", "UpsampleConfig", "UpsampleConfigError", "UpsamplerTrainer", "check_pairs",
           "degrade", "train_upsampler"]
