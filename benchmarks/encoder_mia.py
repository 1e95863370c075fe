"""A classifier membership attack on encoders: the seed paper's own MIA metrics.

Chen, Wang & Mi ("Private Data Protection with Machine Unlearning in Contrastive
Learning Networks", Mathematics 12(24):4001, 2024, Sec. 5.1) judge unlearning in a
contrastive encoder with a membership-inference attack that is a trained classifier,
and report its accuracy, precision, recall and AUC. Their attack's exact features and
training data are not available to us; this is a small version whose every choice is
stated:

* **Feature** of a sample ``x`` under an encoder: the ``A (A - 1) / 2`` cosine
  similarities between the projections of ``A`` augmented views of ``x``, sorted
  ascending. These are EncoderMI's membership features (Liu et al., CCS 2021, Sec. 4:
  an encoder that overfits maps the views of a training image closer together); its
  vector-based variant (EncoderMI-V) feeds the ranked similarity vector to a
  classifier. The views are the audit's query views
  (:func:`unlearn_audit.learning.probe.query_features`, seeded with the audit's ``QUERY_SEED``):
  every encoder is asked about the very same images.
* **Classifier**: logistic regression (scikit-learn, L2 with ``C = 1``, on standardised
  features; EncoderMI-V uses a neural network), trained on the audit's *shadow*
  encoders: for shadow ``k``, every pool sample, labelled 1 if it was in shadow ``k``'s
  training set (exactly half are). The attacker never sees the audited model's members.
* **Evaluation** on an audited model: its forget samples (label 1: what the attack
  calls them if unlearning failed) against as many non-members of the plan, drawn at
  random (seeded; the journal also evaluates on equal numbers). Accuracy, precision and
  recall at the classifier's decision threshold 0.5 (chance: accuracy 0.5); AUC of the
  classifier's probability over *all* forget samples against *all* non-members.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from unlearn_audit.attacks.metrics import roc_metrics
from unlearn_audit.audit.contrastive import CHUNK, QUERY_SEED
from unlearn_audit.learning.probe import query_features
from unlearn_audit.learning.views import ViewAugment

# what the write-up quotes (one line, for a results file's header)
DESCRIPTION = (
    "classifier MIA (after Chen, Wang & Mi 2024, Sec. 5.1): logistic regression on the sorted "
    "pairwise cosine similarities of {views} augmented views' projections (EncoderMI's "
    "features, Liu et al. 2021), trained on the {shadows} shadow encoders' IN/OUT pool "
    "samples; evaluated on forget vs as many random non-members (acc, precision, recall at "
    "p = 0.5) and AUC on forget vs all non-members"
)


def similarity_vectors(
    model: nn.Module, x: torch.Tensor, augment: ViewAugment, views: int
) -> np.ndarray:
    """``(n, views (views - 1) / 2)``: each sample's sorted pairwise view similarities."""
    with torch.no_grad():
        z = torch.nn.functional.normalize(
            query_features(model, x, augment, views, QUERY_SEED, CHUNK).double(), dim=2
        )
        gram = z @ z.transpose(1, 2)
    rows, cols = torch.triu_indices(views, views, offset=1)
    return gram[:, rows, cols].sort(dim=1).values.cpu().numpy().astype(np.float32)


def fit_attack(shadow_features: list[np.ndarray], keep: np.ndarray) -> Pipeline:
    """The attack classifier, trained on shadow ``k``'s features and its keep row."""
    x = np.concatenate(shadow_features)
    y = np.concatenate([keep[k] for k in range(len(shadow_features))]).astype(int)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    return clf.fit(x, y)


def attack_metrics(
    clf: Pipeline,
    features: np.ndarray,
    forget: np.ndarray,
    nonmembers: np.ndarray,
    seed: int,
) -> dict[str, float]:
    """Accuracy, precision and recall on forget vs as many random non-members; AUC on all."""
    prob = clf.predict_proba(features)[:, 1]
    rng = np.random.default_rng(seed)
    negatives = rng.choice(nonmembers, size=min(forget.size, nonmembers.size), replace=False)
    idx = np.concatenate([forget, negatives])
    truth = np.concatenate([np.ones(forget.size, bool), np.zeros(negatives.size, bool)])
    said = prob[idx] >= 0.5
    tp = int((said & truth).sum())
    every = np.concatenate([forget, nonmembers])
    is_forget = np.concatenate([np.ones(forget.size, bool), np.zeros(nonmembers.size, bool)])
    return {
        "mia_acc": float((said == truth).mean()),
        "mia_precision": tp / int(said.sum()) if said.any() else float("nan"),
        "mia_recall": tp / forget.size,
        "mia_auc": float(roc_metrics(prob[every], is_forget)["auc"]),
    }


def classifier_mia(
    setup: Any, plan: Any, targets: dict[str, nn.Module], shadows: list[nn.Module], seed: int
) -> dict[str, dict[str, float]]:
    """Per audited model, the classifier attack's metrics (``setup``: an audit ``Setup``)."""
    views = setup.paradigm.settings.views
    augment = setup.paradigm.augment(setup.ds)
    train = [similarity_vectors(m, setup.x, augment, views) for m in shadows]
    clf = fit_attack(train, plan.keep)
    out = {}
    for name, model in targets.items():
        feats = similarity_vectors(model, setup.x, augment, views)
        out[name] = attack_metrics(clf, feats, plan.forget, plan.nonmembers, seed)
    return out
