"""The substrate: datasets, models, augmentation and training loops."""

from learning.augment import Augment, default_padding, query_views, shift
from learning.contrastive import MoCo, SimCLR, nt_xent, representation
from learning.data import DataError, Dataset, available_datasets, load_dataset
from learning.ensemble import fit_ensemble, resolve_engine
from learning.models import ModelError, available_archs, make_model, reinitialize
from learning.probe import LinearProbe, encodermi_similarity, instance_logit, knn_predict
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
from learning.views import ViewAugment, default_views

__all__ = [
    "Augment",
    "CrossEntropy",
    "DataError",
    "Dataset",
    "DivergenceError",
    "LinearProbe",
    "MoCo",
    "ModelError",
    "Objective",
    "Recipe",
    "SimCLR",
    "ViewAugment",
    "accuracy",
    "available_archs",
    "available_datasets",
    "default_padding",
    "default_views",
    "encodermi_similarity",
    "fit",
    "fit_ensemble",
    "instance_logit",
    "knn_predict",
    "load_dataset",
    "make_generator",
    "make_model",
    "nt_xent",
    "predict_logits",
    "query_views",
    "reinitialize",
    "representation",
    "resolve_device",
    "resolve_engine",
    "shift",
]
