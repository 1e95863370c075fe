"""What an audit starts from: the caller's objects, the data, the plan and the model setup.

:func:`load_setup` is the first step of every audit: it loads the data, draws the
plan and checks everything that can be checked before a file is written (the
caller's inputs fit together, the model factory fits the data, every checkpoint
loads and has finite weights). It returns a :class:`Setup`, which holds the pool
on the device, the paradigm with its recipe and objective, the model factory and
the cache-key base (what every model of the audit depends on), and the plan.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from unlearn_audit import unlearners
from unlearn_audit.audit import __version__
from unlearn_audit.audit.config_types import AuditConfig, ConfigError
from unlearn_audit.audit.paradigms import make_paradigm
from unlearn_audit.audit.plan import Plan, PlanError, make_plan
from unlearn_audit.audit.rundir import content_key
from unlearn_audit.audit.specs import Specs
from unlearn_audit.learning.checkpoints import check_finite_weights, load_checkpoint
from unlearn_audit.learning.data import Dataset, default_size, load_dataset
from unlearn_audit.learning.models import ModelError, make_model
from unlearn_audit.learning.train import resolve_device
from unlearn_audit.unlearners import Unlearner


@dataclass
class AuditInputs:
    """In-memory objects a Python caller can hand to :func:`unlearn_audit.run_audit`.

    Attributes:
        dataset: Use this dataset instead of loading ``[data]``.
        model_factory: Builds a freshly initialised model (reference, shadows, retrain);
            called with no argument under a seeded RNG. Overrides ``[model]``.
        original: Your trained original model (it is not trained by the tool).
        unlearned: Your unlearned models to judge, by name.
        methods: Unlearner instances to run and judge (e.g. your own subclass).
    """

    dataset: Dataset | None = None
    model_factory: Callable[[], nn.Module] | None = None
    original: nn.Module | None = None
    unlearned: dict[str, nn.Module] = field(default_factory=dict)
    methods: list[Unlearner] = field(default_factory=list)


def state_digest(model: nn.Module) -> str:
    """A hash of a model's weights (the cache key of a model handed in memory)."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def resolve_methods(cfg: AuditConfig, inputs: AuditInputs) -> list[Unlearner]:
    """The controls, then the configured methods, then the caller's instances."""
    methods = [unlearners.create("noop"), unlearners.create("retrain")]
    for spec in cfg.unlearn.methods:
        methods.append(unlearners.create(spec, **cfg.unlearn.params.get(spec, {})))
    methods.extend(inputs.methods)
    return methods


class Setup:
    """The pool on the device, the paradigm, the model factory and the cache-key base.

    Args:
        cfg: The audit's configuration.
        inputs: The caller's objects (only ``model_factory`` is read here).
        ds: The audited pool.
        base: The cache-key base; computed here unless given (a Ray worker is given
            the driver's, so both name every model alike).
    """

    def __init__(
        self, cfg: AuditConfig, inputs: AuditInputs, ds: Dataset, base: dict | None = None
    ) -> None:
        self.cfg, self.inputs = cfg, inputs
        self.device = resolve_device(cfg.device)
        self.paradigm = make_paradigm(cfg)
        self.recipe = self.paradigm.recipe(cfg.train)  # what every model here trains with
        self.ds, self.x, self.y = ds, ds.x.to(self.device), ds.y.to(self.device)
        self.labels = ds.y.numpy()
        self.objective = self.paradigm.objective(ds, self.recipe)
        self.base = base if base is not None else self._base()
        self.specs = Specs(self.base, cfg.seed)

    def _base(self) -> dict[str, Any]:
        factory = self.inputs.model_factory
        arch = (
            f"{factory.__module__}.{factory.__qualname__}"
            if factory is not None
            else self.cfg.model.arch
        )
        return {
            "data": self.ds.fingerprint(),
            "arch": arch,
            "kwargs": self.cfg.model.kwargs,
            "recipe": self.recipe.to_dict(),
            "outputs": self.paradigm.num_outputs(self.ds),
            "objective": repr(self.objective),
            "paradigm": self.paradigm.name,
            "version": __version__,
        }

    def new_model(self, seed: int) -> nn.Module:
        """A freshly initialised model (the caller's factory under ``seed``, or ``[model]``)."""
        factory = self.inputs.model_factory
        if factory is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = factory()
        else:
            model = make_model(
                self.cfg.model.arch,
                self.ds.shape,
                self.paradigm.num_outputs(self.ds),
                seed,
                **self.cfg.model.kwargs,
            )
        return model.to(self.device)

    @property
    def n_views(self) -> int:
        """Query views per sample (``attack.queries``; 0 = identity only without augmentation)."""
        return self.cfg.attack.queries or (5 if self.cfg.train.augment else 1)

    def signals_of(self, model: nn.Module) -> np.ndarray:
        """The paradigm's membership signal on every pool sample, ``(n, views)``."""
        return self.paradigm.signals(model, self.ds, self.x, self.n_views)

    @property
    def signal_key(self) -> str:
        """What the cached signals of a model depend on besides its weights."""
        return content_key(
            {
                "paradigm": self.paradigm.signal_settings(),
                "views": self.n_views,
                "version": __version__,
            }
        )

    def subset(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(x, y)`` of pool samples ``idx`` on the device (None when empty)."""
        if idx.size == 0:
            return None
        t = torch.as_tensor(idx, device=self.device)
        return self.x[t], self.y[t]

    def preflight(self) -> None:
        """Check the model factory and every checkpoint before anything is written."""
        self._check_forward(self.new_model(0))  # an architecture that does not fit the data
        paths = [self.cfg.model.original] if self.cfg.model.original else []
        for path in [*paths, *self.cfg.unlearn.checkpoints.values()]:
            load_checkpoint(self.new_model(0), Path(path))  # also refuses NaN/inf weights
        given = {"original": self.inputs.original} if self.inputs.original is not None else {}
        for name, model in {**given, **self.inputs.unlearned}.items():
            check_finite_weights(model.state_dict(), f"the in-memory model '{name}'")

    def _check_forward(self, model: nn.Module) -> None:
        """Run ``model`` once on two pool samples: it must map them to its output size."""
        factory = self.inputs.model_factory
        arch = self.cfg.model.arch
        if factory is not None:
            arch = getattr(factory, "__qualname__", repr(factory))
        want = (2, self.paradigm.num_outputs(self.ds))
        with torch.no_grad():
            try:
                out = model.eval()(self.x[:2])
            except Exception as exc:
                raise ModelError(
                    f"model '{arch}' cannot take this data's images of shape {self.ds.shape} "
                    f"({type(exc).__name__}: {exc}); choose another --model (mlp takes any size)"
                ) from None
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != want:
            got = tuple(out.shape)[1:] if isinstance(out, torch.Tensor) else type(out).__name__
            raise ModelError(
                f"model '{arch}' outputs {got} per sample; it must output ({want[1]},) "
                f"({self.paradigm.name} on {self.ds.name})"
            )


def load_setup(cfg: AuditConfig, inputs: AuditInputs) -> tuple[Setup, Plan]:
    """Load the data, draw the plan and run every check (fails before any file is written)."""
    _check_inputs(cfg, inputs)
    ds = inputs.dataset or load_dataset(
        cfg.data.dataset, cfg.data.root or None, _limit(cfg, inputs)
    )
    plan = make_plan(ds, cfg.forget.spec, cfg.seed, cfg.attack.shadows, cfg.data.members)
    _check_classes(ds, plan)
    setup = Setup(cfg, inputs, ds)
    setup.preflight()
    return setup, plan


def _limit(cfg: AuditConfig, inputs: AuditInputs) -> int | None:
    """``data.limit``; 0 = the dataset's default size when the audit trains its own
    original, else all of it (a model you bring was trained on ids of the whole set)."""
    brought = bool(cfg.data.members or cfg.model.original) or inputs.original is not None
    return cfg.data.limit or (None if brought else default_size(cfg.data.dataset))


def _check_inputs(cfg: AuditConfig, inputs: AuditInputs) -> None:
    """What the caller brings must fit together (checked before the data is loaded)."""
    brought = bool(cfg.model.original) or inputs.original is not None
    if (cfg.unlearn.checkpoints or inputs.unlearned) and not brought:
        raise ConfigError(
            "an unlearned checkpoint is judged against the original it was unlearned "
            "from: give --original (model.original) and --members (data.members)"
        )
    if brought and not cfg.data.members:
        raise ConfigError(
            "an original model you bring needs its training set: give --members "
            "file:PATH (data.members) with the ids it was trained on"
        )


def _check_classes(ds: Dataset, plan: Plan) -> None:
    """The audit trains classifiers on the members: the pool and they need 2 classes."""
    labels = ds.y.numpy()
    for what, idx in (("the audited pool", np.arange(len(ds))), ("the members", plan.members)):
        present = np.unique(labels[idx])
        if present.size < 2:
            only = ds.classes[int(present[0])] if present.size else "none"
            raise PlanError(
                f"{ds.name}: every sample of {what} has class '{only}'; a classifier audit "
                "needs samples of at least 2 classes there (check y, data.limit and "
                "data.members)"
            )
