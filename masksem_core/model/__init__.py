"""The MaskSem model: encoder, decoder, masking strategies, targets, EMA teacher and heads."""

from masksem_core.model.classifier import ActionClassifier, FineTuneHead, LinearProbeHead
from masksem_core.model.config import MaskingConfig, ModelConfig, TargetConfig
from masksem_core.model.encoder import SkeletonEncoder
from masksem_core.model.pretrainer import MaskSemPretrainer, PretrainOutput

__all__ = [
    "ActionClassifier",
    "FineTuneHead",
    "LinearProbeHead",
    "MaskSemPretrainer",
    "MaskingConfig",
    "ModelConfig",
    "PretrainOutput",
    "SkeletonEncoder",
    "TargetConfig",
]
