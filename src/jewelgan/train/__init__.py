"""Training: one Trainer for every model, with exact resume, EMA, losses and a divergence guard.

    from jewelgan.train import train, TrainConfig
    run_dir = train(TrainConfig(data="studio.jga", model="dcgan", kimg=50))
    run_dir = train(resume=run_dir, overrides={"kimg": 100})   # continue the same run further
"""

from jewelgan.config import ConfigError, TrainConfig
from jewelgan.train.loop import DivergenceError, Trainer, train

__all__ = ["ConfigError", "DivergenceError", "TrainConfig", "Trainer", "train"]
