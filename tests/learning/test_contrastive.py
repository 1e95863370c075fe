"""SimCLR and MoCo objectives: NT-Xent against a plain loop, MoCo's queue, momentum and state."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.learning import Recipe, fit, make_generator, make_model
from unlearn_audit.learning.contrastive import (
    MoCo,
    MoCoState,
    SimCLR,
    nt_xent,
    projection_head,
    representation,
)
from unlearn_audit.learning.views import ViewAugment

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


CPU = torch.device("cpu")
NOISE = ViewAugment(crop_scale=(1.0, 1.0), noise=0.1)


def _plain_nt_xent(z1, z2, t):
    n = z1.shape[0]
    u = [v / math.sqrt(float(v @ v)) for v in torch.cat([z1, z2]).double()]
    total = 0.0
    for i in range(2 * n):
        pos = (i + n) % (2 * n)
        num = math.exp(float(u[i] @ u[pos]) / t)
        den = sum(math.exp(float(u[i] @ u[k]) / t) for k in range(2 * n) if k != i)
        total += -math.log(num / den)
    return total / (2 * n)


def test_nt_xent_matches_a_plain_loop_on_a_hand_made_batch():
    z1 = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [1.0, 1.0, 1.0], [0.5, -1.0, 2.0]])
    z2 = torch.tensor([[0.9, 0.1, 0.0], [0.0, 1.0, 0.3], [-1.0, 1.0, 1.0], [0.4, -1.2, 2.5]])
    for t in (0.1, 0.5, 1.0):
        assert nt_xent(z1, z2, t).item() == pytest.approx(_plain_nt_xent(z1, z2, t), rel=1e-5)


def test_nt_xent_golden_value_for_orthogonal_pairs():
    # two samples, both views identical and orthogonal to the other sample:
    # each anchor sees its positive at s=1 and two negatives at s=0.
    z = torch.eye(2)
    t = 0.5
    expected = -math.log(math.exp(2) / (math.exp(2) + 2))
    assert nt_xent(z, z, t).item() == pytest.approx(expected, rel=1e-6)


def test_representation_is_the_input_of_the_last_linear_layer():
    model = make_model("mlp", (1, 8, 8), 16, seed=0, width=32)
    x = torch.rand(5, 1, 8, 8)
    assert projection_head(model) is model[-1]
    torch.testing.assert_close(representation(model, x), model[:-1](x))
    assert len(model[-1]._forward_pre_hooks) == 0  # the hook was removed


def _simclr_setup(model_seed: int = 0):
    model = make_model("mlp", (1, 8, 8), 8, seed=model_seed, width=32)
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    return model, SimCLR(NOISE, temperature=0.5), x


def measure_simclr_drop(model_seed: int, generator_seed: int) -> dict[str, float]:
    """SimCLR's loss before and after 100 steps at lr 0.01 (fit's generator ``generator_seed``).

    Each loss is the mean over 20 view draws: one draw's loss is too noisy to compare.
    """
    model, obj, x = _simclr_setup(model_seed)

    def mean_loss() -> float:
        with torch.no_grad():
            return (
                sum(
                    obj.loss(model.eval(), x, x, make_generator(100 + k, CPU)).item()
                    for k in range(20)
                )
                / 20
            )

    before = mean_loss()
    recipe = Recipe(epochs=100, batch_size=16, lr=0.01)
    fit(model, x, torch.zeros(16), obj.loss, recipe, make_generator(generator_seed, CPU))
    after = mean_loss()
    return {"before": before, "after": after, "drop": before - after}


def test_simclr_loss_is_seeded_and_trains():
    model, obj, x = _simclr_setup()
    a = obj.loss(model, x, torch.zeros(16), make_generator(3, CPU))
    b = obj.loss(model, x, torch.zeros(16), make_generator(3, CPU))
    assert a.item() == b.item()
    v1, v2 = obj.views(x, make_generator(3, CPU))
    assert a.item() == pytest.approx(nt_xent(model(v1), model(v2), 0.5).item(), rel=1e-6)
    # lr 0.01 for 100 steps (lr 0.1 for 30 steps diverged on 4 of 8 model seeds). At this
    # model seed (0) the drop is 1.557 +- 0.001 over generator seeds, the same at 1 and 2
    # threads and with unvectorised kernels, so the 0.5 bar is far from it; over model
    # seeds 0-7 it is 1.34 +- 0.62 (seed 6 trains the wrong way), which is why the
    # model seed is fixed (docs/reliability.md)
    loss = measure_simclr_drop(0, 0)
    assert loss["after"] < loss["before"] - 0.5


def test_moco_queue_is_a_ring_buffer():
    st = MoCoState(nn.Linear(2, 2), torch.zeros(5, 2))
    st.enqueue(torch.tensor([[1.0, 0], [2, 0], [3, 0]]))
    st.enqueue(torch.tensor([[4.0, 0], [5, 0], [6, 0]]))
    assert st.queue[:, 0].tolist() == [6, 2, 3, 4, 5] and st.ptr == 1
    st.enqueue(torch.arange(14.0).reshape(7, 2))  # more keys than slots: the newest 5 stay
    assert sorted(st.queue[:, 0].tolist()) == [4, 6, 8, 10, 12]


def test_moco_momentum_update_formula_and_buffers():
    q = nn.BatchNorm1d(3)
    st = MoCoState(q, torch.zeros(4, 3))
    with torch.no_grad():
        q.weight.fill_(3.0)
        q.running_mean.fill_(7.0)
    st.momentum_update(q, 0.9)
    torch.testing.assert_close(st.key_encoder.weight, torch.full((3,), 0.9 * 1.0 + 0.1 * 3.0))
    torch.testing.assert_close(st.key_encoder.running_mean, torch.full((3,), 7.0))
    assert not st.key_encoder.weight.requires_grad


def _moco_setup():
    model = make_model("mlp", (1, 8, 8), 8, seed=0, width=32)
    x = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    return model, x, MoCo(NOISE, temperature=0.2, momentum=0.9, queue_size=12)


def test_moco_loss_matches_its_definition():
    model, x, obj = _moco_setup()
    model.train()
    loss = obj.loss(model, x, x, make_generator(0, CPU))
    # replay: the views, then the random queue the state drew from the same generator
    g = make_generator(0, CPU)
    x1, x2 = obj.views(x, g)
    queue = F.normalize(torch.randn(12, 8, generator=g), dim=1)
    q = F.normalize(model(torch.cat([x1, x2])), dim=1)
    k = F.normalize(model(torch.cat([x2, x1])), dim=1)  # key encoder == model at the first step
    total = 0.0
    for i in range(16):
        logits = torch.cat([(q[i] @ k[i])[None], queue @ q[i]]) / 0.2
        total += -F.log_softmax(logits, 0)[0]
    assert loss.item() == pytest.approx(total.item() / 16, rel=1e-5)
    st = obj.state(model, g, 8)
    torch.testing.assert_close(st.queue[:12], k.detach()[4:])  # 16 keys into 12 slots


def test_moco_state_is_per_model_and_eval_calls_do_not_advance_it():
    model, x, obj = _moco_setup()
    model.train()
    obj.loss(model, x, x, make_generator(0, CPU))
    st = obj.state(model, make_generator(0, CPU), 8)
    other = copy.deepcopy(model)  # e.g. the copy an unlearner works on
    obj.loss(other.train(), x, x, make_generator(1, CPU))
    assert obj.state(other, make_generator(0, CPU), 8) is not st
    queue, ptr = st.queue.clone(), st.ptr
    with torch.no_grad():
        obj.loss(model, x, x, make_generator(2, CPU))
    obj.loss(model.eval(), x, x, make_generator(2, CPU))
    assert st.ptr == ptr and torch.equal(st.queue, queue)
    obj.reset(model)
    model.train()
    obj.loss(model, x, x, make_generator(0, CPU))
    assert obj.state(model, make_generator(0, CPU), 8) is not st
    assert "_states" not in repr(obj)  # the cache key of a run ignores the state


def test_moco_fit_is_reproducible_and_does_not_leak_between_models():
    x = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    obj = MoCo(NOISE, temperature=0.2, momentum=0.9, queue_size=16)
    recipe = Recipe(epochs=3, batch_size=8, lr=0.05)

    def train():
        m = make_model("mlp", (1, 8, 8), 8, seed=0, width=32)
        return fit(m, x, torch.zeros(32), obj.loss, recipe, make_generator(0, CPU))

    a, b = train(), train()  # the second model must not inherit the first one's queue
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    fresh = MoCo(NOISE, temperature=0.2, momentum=0.9, queue_size=16)
    c = make_model("mlp", (1, 8, 8), 8, seed=0, width=32)
    fit(c, x, torch.zeros(32), fresh.loss, recipe, make_generator(0, CPU))
    for pa, pc in zip(a.parameters(), c.parameters(), strict=True):
        assert torch.equal(pa, pc)
