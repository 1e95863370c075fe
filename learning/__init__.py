"""The substrate: datasets, models, augmentation and training loops."""

from learning.augment import Augment, default_padding, query_views, shift
from learning.data import DataError, Dataset, available_datasets, load_dataset
from learning.models import ModelError, available_archs, make_model, reinitialize
from learning.train import (
    CrossEntropy,
    DivergenceError,
    Objective,
    Recipe,
    accuracy,
    fit,
    make_generator,
    predict_logits,
    resolve_device,
)

__all__ = [
    "Augment",
    "CrossEntropy",
    "DataError",
    "Dataset",
    "DivergenceError",
    "ModelError",
    "Objective",
    "Recipe",
    "accuracy",
    "available_archs",
    "available_datasets",
    "default_padding",
    "fit",
    "load_dataset",
    "make_generator",
    "make_model",
    "predict_logits",
    "query_views",
    "reinitialize",
    "resolve_device",
    "shift",
]
