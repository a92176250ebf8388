"""vitrine_torch: vitrine's model in PyTorch, trained with DistributedDataParallel, writing
the same weight file as the Rust trainer (docs/training-at-scale.md)."""

from .model import Memory, VitrineModel, gap_bucket
from .weights import WeightFile, WeightFileError, param_specs, read, write

__all__ = ["Memory", "VitrineModel", "gap_bucket", "WeightFile", "WeightFileError", "param_specs", "read", "write"]
