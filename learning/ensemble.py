"""Batched ensembles: train k models of one architecture in one vmapped step.

:func:`fit_ensemble` trains ``k`` models, each on its own subset of one
device-resident pool, and gives the same models as ``k`` calls of
:func:`learning.train.fit` with :class:`learning.train.CrossEntropy` (equal
within float tolerance: the reductions run in another order). It stacks the
models' parameters with ``torch.func.stack_module_state``, computes every
model's gradient in one call of ``vmap(grad(functional_call))`` (convolutions
become grouped convolutions, matrix products batched ones) and applies a
functional copy of the SGD-with-Nesterov-momentum (or Adam) update with weight
decay and the cosine schedule of ``fit``.

How each model's batches are drawn (the rule that makes both engines agree):
model ``i`` owns the generator that ``fit`` would get and draws from it
exactly what ``fit`` draws, in the same order: ``randperm(n_i)`` at the start
of each of its epochs, then, for every batch, the augmentation's crop offsets
``randint`` (rows, then columns) and flip ``rand``. Model ``i`` runs
``round(epochs * ceil(n_i / batch_size))`` steps with its own cosine schedule;
at global step ``t`` the models with ``t`` below their step count are active
(finished models are masked: neither their weights nor their optimizer state
move), and active models whose current batch has the same size (ragged last
batches differ) share one vmapped call. Data stays on the device; a step's
batches are gathered with one index, augmented with one batched gather
(:func:`learning.augment.shift`), with no per-sample Python.

Limits: cross-entropy objectives only; a model that draws random numbers in
its forward pass (dropout) is refused by ``vmap``. BatchNorm works: running
statistics are stacked and updated per model.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad_and_value, stack_module_state, vmap
from tqdm.auto import tqdm

from unlearn_audit.learning.augment import Augment, shift
from unlearn_audit.learning.train import DivergenceError, Recipe, step_count

ENGINES = ("auto", "sequential", "batched")
ENSEMBLE_SIZE = 16  # models per ensemble in an audit: a killed run loses at most one ensemble
# ``auto`` batches models up to this size on CUDA (cnn: 0.1M, resnet18: 11M parameters);
# provisional until benchmarks/gpu_check.sh has measured it (docs/performance.md).
BATCHED_MAX_PARAMS = 2_000_000

Tensors = dict[str, torch.Tensor]


def resolve_engine(
    engine: str, device: torch.device, *, batchable: bool = True, n_params: int = 0
) -> str:
    """The engine that trains a shadow bank: ``sequential`` or ``batched``.

    ``auto`` is a fixed rule, not a timing probe (a probe would make which engine
    ran, hence the last bits of every weight, depend on the machine's load):
    batched on CUDA for models of at most :data:`BATCHED_MAX_PARAMS` parameters,
    sequential otherwise: on CPU docs/performance.md measured the plain loop as
    fast as the batched one or faster, and a large model fills a GPU by itself.
    ``batchable`` is False when the objective or model cannot be batched (then
    ``auto`` gives sequential).

    Raises:
        ValueError: an unknown engine name.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got '{engine}'")
    if engine != "auto":
        return engine
    small = n_params <= BATCHED_MAX_PARAMS
    return "batched" if batchable and small and device.type == "cuda" else "sequential"


def lr_table(recipe: Recipe, total: int, lr: float | None = None) -> list[float]:
    """The learning rate of each of ``total`` steps, from the very scheduler ``fit`` uses."""
    lr = recipe.lr if lr is None else lr
    if recipe.schedule != "cosine":
        return [lr] * total
    dummy = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([dummy], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    out = []
    for _ in range(total):
        out.append(float(opt.param_groups[0]["lr"]))
        opt.step()  # no gradient: a no-op that keeps the scheduler from warning
        sched.step()
    return out


class _Stream:
    """One model's batches, drawn from its generator exactly as ``fit`` draws them."""

    def __init__(
        self, idx: torch.Tensor, recipe: Recipe, generator: torch.Generator, total: int
    ) -> None:
        self.idx, self.bs, self.gen, self.total = idx, recipe.batch_size, generator, total
        self.n = int(idx.shape[0])
        self.order: torch.Tensor | None = None
        self.start = 0

    def next_batch(self) -> torch.Tensor:
        """Pool indices of the next batch (a fresh permutation at each epoch start)."""
        if self.order is None or self.start >= self.n:
            self.order = torch.randperm(self.n, generator=self.gen, device=self.idx.device)
            self.start = 0
        sel = self.order[self.start : self.start + self.bs]
        self.start += self.bs
        return self.idx[sel]


def _augment(
    x: torch.Tensor, aug: Augment | None, sizes: list[int], gens: list[torch.Generator]
) -> torch.Tensor:
    """Augment concatenated batches; batch ``j`` draws from ``gens[j]`` as ``Augment`` does."""
    if aug is None:
        return x
    dys, dxs, flips = [], [], []
    span = 2 * aug.padding + 1
    for b, gen in zip(sizes, gens, strict=True):
        if aug.padding > 0:
            dys.append(torch.randint(0, span, (b,), generator=gen, device=x.device))
            dxs.append(torch.randint(0, span, (b,), generator=gen, device=x.device))
        if aug.flip:
            flips.append(torch.rand(b, generator=gen, device=x.device) < 0.5)
    if aug.padding > 0:
        x = shift(x, torch.cat(dys) - aug.padding, torch.cat(dxs) - aug.padding, aug.padding)
    if aug.flip:
        x = torch.where(torch.cat(flips)[:, None, None, None], x.flip(3), x)
    return x


class _Optimizer:
    """``torch.optim.SGD`` (Nesterov) / ``Adam`` with L2 weight decay, on stacked tensors."""

    def __init__(self, params: Tensors, recipe: Recipe) -> None:
        self.recipe = recipe
        self.m = {n: torch.zeros_like(p) for n, p in params.items()}
        self.v = {n: torch.zeros_like(p) for n, p in params.items()}
        self.steps = 0

    @torch.no_grad()
    def step(
        self, params: Tensors, grads: Tensors, lr: torch.Tensor, active: torch.Tensor | None
    ) -> None:
        """One update of every active model; ``lr`` and ``active`` are ``(k,)``."""
        r = self.recipe
        self.steps += 1
        for name, p in params.items():
            shape = (-1,) + (1,) * (p.ndim - 1)
            g = grads[name].to(p.dtype) + r.weight_decay * p
            if r.optimizer == "adam":
                m = torch.lerp(self.m[name], g, 1 - 0.9)
                v = self.v[name] * 0.999 + (1 - 0.999) * g * g
                denom = (v.sqrt() / math.sqrt(1 - 0.999**self.steps)) + 1e-8
                new = p - (lr.view(shape) / (1 - 0.9**self.steps)) * (m / denom)
                self._keep(self.v, name, v, active, shape)
            else:
                m = self.m[name] * r.momentum + g
                d = g + r.momentum * m if r.momentum > 0 else m
                new = p - lr.view(shape) * d
            self._keep(self.m, name, m, active, shape)
            p.copy_(new if active is None else torch.where(active.view(shape), new, p))

    @staticmethod
    def _keep(
        state: Tensors, name: str, new: torch.Tensor, active: torch.Tensor | None, shape: tuple
    ) -> None:
        state[name] = new if active is None else torch.where(active.view(shape), new, state[name])


def _loss_fn(base: nn.Module):
    def loss(params: Tensors, buffers: Tensors, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(base, (params, buffers), (x,)), y)

    return vmap(grad_and_value(loss))


def _check_inputs(models: Sequence[nn.Module], subsets: Sequence, generators: Sequence) -> None:
    if not models:
        raise ValueError("fit_ensemble needs at least one model")
    if not len(models) == len(subsets) == len(generators):
        raise ValueError(
            f"fit_ensemble: {len(models)} models, {len(subsets)} subsets and "
            f"{len(generators)} generators: give one of each per model"
        )
    kinds = {tuple((n, tuple(p.shape)) for n, p in m.named_parameters()) for m in models}
    if len(kinds) != 1:
        raise ValueError("fit_ensemble: every model must have the same architecture")


def fit_ensemble(
    models: Sequence[nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    subsets: Sequence[torch.Tensor],
    recipe: Recipe,
    generators: Sequence[torch.Generator],
    *,
    augment: Augment | None = None,
    progress: bool = False,
    desc: str = "ensemble",
) -> list[nn.Module]:
    """Train ``models[i]`` on ``(x[subsets[i]], y[subsets[i]])`` in place, all at once.

    Gives the models of ``fit(models[i], x[s], y[s], CrossEntropy(augment).loss,
    recipe, generators[i])`` for every ``i`` (see the module docstring for the
    sampling rule), but runs one vmapped forward/backward per step for all of
    them. ``x``, ``y``, the subsets (pool indices) and the generators must live on
    the models' device; bf16 autocast is used on CUDA, as in ``fit``.

    Raises:
        DivergenceError: some model's loss became NaN or infinite (the message names it).
        ValueError: mismatched inputs or models of different architectures.
    """
    _check_inputs(models, subsets, generators)
    totals = [step_count(int(s.shape[0]), recipe.batch_size, recipe.epochs) for s in subsets]
    horizon = max(totals)
    if horizon == 0:
        return [m.eval() for m in models]
    run = _Run(models, x, y, subsets, recipe, generators, totals, augment, desc)
    bar = tqdm(total=horizon, desc=desc, disable=not progress, leave=False, unit="step")
    try:
        for t in range(horizon):
            run.step(t)
            bar.update(1)
    finally:
        bar.close()
    _unstack(models, run.params, run.buffers)
    return [m.eval() for m in models]


class _Run:
    """The state of one ensemble training: stacked weights, optimizer, batch streams."""

    def __init__(
        self,
        models: Sequence[nn.Module],
        x: torch.Tensor,
        y: torch.Tensor,
        subsets: Sequence[torch.Tensor],
        recipe: Recipe,
        generators: Sequence[torch.Generator],
        totals: list[int],
        augment: Augment | None,
        desc: str,
    ) -> None:
        self.x, self.y, self.gens, self.totals = x, y, list(generators), totals
        self.augment, self.desc, self.k = augment, desc, len(models)
        self.streams = [
            _Stream(s, recipe, g, t) for s, g, t in zip(subsets, generators, totals, strict=True)
        ]
        tables = {t: lr_table(recipe, t) for t in set(totals)}
        horizon = max(totals)
        self.lrs = torch.tensor(
            [tables[t] + [0.0] * (horizon - t) for t in totals], dtype=torch.float32
        ).to(x.device)
        for m in models:
            m.train()
        self.params, self.buffers = _stack(models)
        self.opt = _Optimizer(self.params, recipe)
        self.step_fn = _loss_fn(copy.deepcopy(models[0]).to("meta").train())
        self.autocast = x.device.type == "cuda"

    def step(self, t: int) -> None:
        """Global step ``t``: one update of every model that has not finished."""
        live = [i for i in range(self.k) if t < self.totals[i]]
        batches = {i: self.streams[i].next_batch() for i in live}
        groups: dict[int, list[int]] = {}
        for i in live:
            groups.setdefault(int(batches[i].shape[0]), []).append(i)
        whole = len(groups) == 1 and len(live) == self.k
        grads = {} if whole else _zeros(self.params)
        for size, ids in groups.items():
            idx = torch.cat([batches[i] for i in ids])
            xb = _augment(self.x[idx], self.augment, [size] * len(ids), [self.gens[i] for i in ids])
            xb = xb.view(len(ids), size, *self.x.shape[1:])
            yb = self.y[idx].view(len(ids), size)
            with torch.autocast(self.x.device.type, torch.bfloat16, enabled=self.autocast):
                g, loss = _group_grads(self.step_fn, self.params, self.buffers, ids, self.k, xb, yb)
            _check_finite(loss, ids, t, self.desc)
            if whole:
                grads = g
            else:
                for name, gi in g.items():
                    grads[name][ids] = gi
        active = None if len(live) == self.k else _mask(live, self.k, self.x.device)
        self.opt.step(self.params, grads, self.lrs[:, t], active)


def _stack(models: Sequence[nn.Module]) -> tuple[Tensors, Tensors]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params, buffers = stack_module_state(list(models))
    params = {n: p.detach().clone() for n, p in params.items()}
    buffers = {n: b.detach().clone() for n, b in buffers.items()}
    return params, buffers


def _unstack(models: Sequence[nn.Module], params: Tensors, buffers: Tensors) -> None:
    with torch.no_grad():
        for i, m in enumerate(models):
            for name, p in m.named_parameters():
                p.copy_(params[name][i])
            for name, b in m.named_buffers():
                b.copy_(buffers[name][i])


def _zeros(params: Tensors) -> Tensors:
    return {n: torch.zeros_like(p) for n, p in params.items()}


def _mask(ids: list[int], k: int, device: torch.device) -> torch.Tensor:
    mask = torch.zeros(k, dtype=torch.bool, device=device)
    mask[ids] = True
    return mask


def _group_grads(step_fn, params, buffers, ids, k, xb, yb) -> tuple[Tensors, torch.Tensor]:
    """Gradients and losses of models ``ids`` (all of them without copying when possible)."""
    if len(ids) == k:
        return step_fn(params, buffers, xb, yb)
    sel = torch.as_tensor(ids, device=xb.device)
    sub_b = {n: b[sel] for n, b in buffers.items()}
    g, loss = step_fn({n: p[sel] for n, p in params.items()}, sub_b, xb, yb)
    for n, b in sub_b.items():  # BatchNorm running statistics moved in the copy
        buffers[n][sel] = b
    return g, loss


def _check_finite(loss: torch.Tensor, ids: list[int], t: int, desc: str) -> None:
    bad = ~torch.isfinite(loss)
    if bool(bad.any()):
        j = int(bad.nonzero()[0, 0])
        raise DivergenceError(
            f"{desc}: model {ids[j]} of the ensemble: loss became {loss[j].item()} at step {t + 1}"
        )
