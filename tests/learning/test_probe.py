"""Encoder evaluation: weighted kNN on a hand-built bank, linear probe, EncoderMI's signal."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.learning.probe import (
    LinearProbe,
    encodermi_similarity,
    features,
    instance_logit,
    knn_predict,
    knn_votes,
    query_features,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


BANK = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [-1.0, 0.0]])
LABELS = torch.tensor([0, 0, 1, 1, 2])


def test_knn_on_a_hand_built_bank():
    query = torch.tensor([[2.0, 0.1], [0.1, 3.0], [-1.0, 0.2], [1.0, 1.0]])
    pred = knn_predict(query, BANK, LABELS, 3, k=2, temperature=0.1)
    assert pred.tolist() == [0, 1, 2, 0]  # the last one is a tie between 0 and 1: smaller wins


def test_knn_weights_votes_by_similarity():
    # k=3: two weak class-1 neighbours against one strong class-0 neighbour
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.05, 1.0]])
    labels = torch.tensor([0, 1, 1])
    q = torch.tensor([[1.0, 0.3]])
    s = F.normalize(q, dim=1) @ F.normalize(bank, dim=1).T
    for t, want in ((0.05, 0), (10.0, 1)):
        w0 = float(torch.exp(s[0, 0] / t))
        w1 = float(torch.exp(s[0, 1] / t) + torch.exp(s[0, 2] / t))
        assert (0 if w0 > w1 else 1) == want
        assert knn_predict(q, bank, labels, 2, k=3, temperature=t).tolist() == [want]


def test_knn_votes_are_the_weighted_sums_of_a_plain_loop():
    query = torch.tensor([[2.0, 0.1], [0.1, 3.0], [-1.0, 0.2]])
    votes = knn_votes(query, BANK, LABELS, 3, k=3, temperature=0.5)
    qn, bn = F.normalize(query, dim=1), F.normalize(BANK, dim=1)
    for i in range(3):
        sims = [float(qn[i] @ bn[j]) for j in range(5)]
        top = sorted(range(5), key=lambda j: -sims[j])[:3]
        want = [sum(math.exp(sims[j] / 0.5) for j in top if LABELS[j] == c) for c in range(3)]
        assert votes[i].tolist() == pytest.approx(want, rel=1e-5)
    assert torch.equal(votes.argmax(1), knn_predict(query, BANK, LABELS, 3, k=3, temperature=0.5))


def test_knn_leave_one_out_excludes_the_query_itself():
    pred = knn_predict(BANK, BANK, LABELS, 3, k=1, exclude=torch.arange(5))
    # each point's nearest *other* point: 1<->0, 3<->2, and the lone class-2 point finds class 1
    assert pred.tolist() == [0, 0, 1, 1, 1]


def test_linear_probe_separates_and_is_deterministic():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 3
    h = F.one_hot(y, 3).float() * 4 + 0.3 * torch.randn(60, 3, generator=g) + 10
    a, b = LinearProbe.fit(h, y, 3), LinearProbe.fit(h, y, 3)
    assert a.accuracy(h, y) == 1.0
    assert torch.equal(a.weight, b.weight)
    assert a.accuracy(h[:0], y[:0]) != a.accuracy(h[:0], y[:0])  # NaN for an empty set


def test_encodermi_matches_a_plain_loop():
    f = torch.randn(4, 5, 3, generator=torch.Generator().manual_seed(0))
    expected = []
    for i in range(4):
        sims = [
            float(F.cosine_similarity(f[i, a], f[i, b], dim=0))
            for a, b in itertools.combinations(range(5), 2)
        ]
        expected.append(sum(sims) / len(sims))
    torch.testing.assert_close(encodermi_similarity(f), torch.tensor(expected), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="at least 2 views"):
        encodermi_similarity(f[:, :1])


class _SortedPixels(nn.Module):
    """Features of the sorted pixel values: exactly invariant to any pixel permutation (a flip)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(64, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x.flatten(1).sort(dim=1).values)


def test_encodermi_is_exactly_one_for_an_augmentation_invariant_encoder():
    from unlearn_audit.learning.views import ViewAugment

    x = torch.rand(9, 1, 8, 8)
    aug = ViewAugment(crop_scale=(1.0, 1.0), flip=True)
    views = aug(x.repeat_interleave(6, 0), torch.Generator().manual_seed(0))
    assert not torch.equal(views[0::6], views[1::6]) or not torch.equal(views[0::6], views[2::6])
    z = features(_SortedPixels(), views, lambda m, v: m(v)).reshape(9, 6, -1)
    assert len({tuple(row.tolist()) for row in z[:, 0]}) == 9  # features differ per sample
    assert torch.equal(encodermi_similarity(z), torch.ones(9))


def test_instance_logit_matches_a_plain_loop():
    import math

    g = torch.Generator().manual_seed(3)
    feats, bank = torch.randn(3, 4, 5, generator=g), torch.randn(6, 5, generator=g)
    own = torch.tensor([2, -1, 0])  # sample 0 is bank row 2, sample 2 is bank row 0
    t = 0.5
    cos = lambda a, b: float(F.cosine_similarity(a, b, dim=0))  # noqa: E731
    expected = []
    for i in range(3):
        logits = []
        for a, b in itertools.permutations(range(4), 2):
            pos = math.exp(cos(feats[i, a], feats[i, b]) / t)
            neg = sum(math.exp(cos(feats[i, a], bank[j]) / t) for j in range(6) if j != int(own[i]))
            logits.append(math.log(pos / neg))  # log p / (1 - p)
        expected.append(sum(logits) / len(logits))
    got = instance_logit(feats, bank, own, t)
    torch.testing.assert_close(got, torch.tensor(expected), rtol=1e-5, atol=1e-5)


def test_instance_logit_does_not_depend_on_the_chunk_size():
    g = torch.Generator().manual_seed(4)
    feats, bank = torch.randn(10, 3, 4, generator=g), torch.randn(7, 4, generator=g)
    own = torch.tensor([0, -1, 1, -1, 2, -1, 3, 4, 5, 6])
    whole = instance_logit(feats, bank, own, 0.2)
    torch.testing.assert_close(instance_logit(feats, bank, own, 0.2, chunk=3), whole)


def test_query_features_of_some_rows_are_those_of_the_whole_call():
    from unlearn_audit.learning.views import ViewAugment

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x = torch.rand(11, 1, 4, 4)
    aug = ViewAugment(crop_scale=(1.0, 1.0), translate=1.0, noise=0.1)
    full = query_features(model, x, aug, 3, seed=7, chunk=4)  # 3 chunks
    rows = torch.tensor([10, 1, 6, 5])
    part = query_features(model, x, aug, 3, seed=7, chunk=4, rows=rows)
    assert part.shape == (4, 3, 3)
    torch.testing.assert_close(part, full[rows])
    assert query_features(model, x, aug, 3, seed=7, rows=rows[:0]).shape[0] == 0
