"""Records, file readers and dataset adapters (real datasets and the embedded benchmark)."""

from .catalog import DATASETS, benchmark_dataset_root, find_real_datasets, load_benchmark, load_dataset
from .io import DatasetError, read_image, read_mask, read_volume
from .records import Grounding2D, Grounding3D

__all__ = [
    "DATASETS",
    "DatasetError",
    "Grounding2D",
    "Grounding3D",
    "benchmark_dataset_root",
    "find_real_datasets",
    "load_benchmark",
    "load_dataset",
    "read_image",
    "read_mask",
    "read_volume",
]
