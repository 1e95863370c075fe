"""The substrate: datasets, models, augmentation and training loops."""

from unlearn_audit.learning.augment import Augment, default_padding, query_views, shift
from unlearn_audit.learning.byol import BYOL
from unlearn_audit.learning.contrastive import MoCo, SimCLR, nt_xent, representation
from unlearn_audit.learning.data import DataError, Dataset, available_datasets, load_dataset
from unlearn_audit.learning.ensemble import fit_ensemble, resolve_engine
from unlearn_audit.learning.models import ModelError, available_archs, make_model, reinitialize
from unlearn_audit.learning.probe import (
    LinearProbe,
    encodermi_similarity,
    instance_logit,
    knn_predict,
    knn_votes,
)
from unlearn_audit.learning.train import (
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
from unlearn_audit.learning.views import ViewAugment, default_views

__all__ = [
    "Augment",
    "BYOL",
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
    "knn_votes",
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
