"""Training: configs and recipes, optimiser and schedule, checkpoints, weight averaging, the loop."""
from froster.training.configs import (
    AveragingConfig,
    DataConfig,
    EvalConfig,
    EvalSetConfig,
    OptimConfig,
    PatchingConfig,
    RunConfig,
    ScheduleConfig,
    StudentConfig,
    SyntheticConfig,
    TeacherConfig,
    TrainConfig,
)
from froster.training.overrides import ConfigError

__all__ = [
    "AveragingConfig",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "EvalSetConfig",
    "OptimConfig",
    "PatchingConfig",
    "RunConfig",
    "ScheduleConfig",
    "StudentConfig",
    "SyntheticConfig",
    "TeacherConfig",
    "TrainConfig",
]
