"""The audit configuration's data: one frozen dataclass per TOML table, and their defaults.

A leaf: it imports no registry (paradigms, unlearners, attacks), so every module of the
toolkit may import it. Each dataclass checks its own single values where that needs
nothing else (``__post_init__``); reading a table into them is
:mod:`audit.config_file`, and the checks that ask a registry are :mod:`audit.config`.
Every key has a default, so ``AuditConfig()`` is the embedded default audit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from unlearn_audit.learning.train import Recipe


class ConfigError(ValueError):
    """An invalid configuration value; the message names the key."""


RESERVED = ("original", "reference", "noop", "retrain", "planted")


@dataclass(frozen=True)
class DataConfig:
    """Which data to audit.

    Attributes:
        dataset: A built-in name (``digits``, ``mnist``, ``fashion-mnist``, ``cifar10``,
            ``cifar100``, ``svhn``) or a path to an ``.npz`` file with ``x`` and ``y``.
        root: Folder with the raw files (torchvision datasets, Fashion-MNIST...).
        limit: Use only the first ``limit`` samples of the dataset; 0 = the dataset's
            default size (``learning.data.DEFAULT_SIZES``: the first 1,000 of digits'
            1,797 images, all of any other dataset) when the audit trains its own
            original, and all of it when you bring the original or its members.
        members: The original model's training set: empty = a seeded random half of the
            pool; ``file:PATH`` = the sample ids it was trained on (required to audit a
            model you bring with ``model.original``).
    """

    dataset: str = "digits"
    root: str = ""
    limit: int = 0
    members: str = ""


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the original, reference and shadow models.

    Attributes:
        arch: ``mlp``, ``cnn``, ``resnet18``, or ``package.module:factory`` (your function,
            called with ``kwargs``, returning an ``nn.Module``).
        kwargs: Keyword arguments of the architecture builder or factory.
        original: Path of YOUR trained original model (state dict, ``.safetensors`` or
            PyTorch); empty = the tool trains its own. Shadow and reference models follow
            ``[train]``, which is then the stated assumption about how yours was trained.
    """

    arch: str = "mlp"
    kwargs: dict[str, Any] = field(default_factory=dict)
    original: str = ""


@dataclass(frozen=True)
class ForgetConfig:
    """The forget request.

    Attributes:
        spec: ``random:FRACTION`` of the members, ``class:K`` (a class index or name: all
            members of that class), or ``file:PATH`` (pool indices, whitespace/comma
            separated; they are placed among the members).
    """

    spec: str = "random:0.6"


@dataclass(frozen=True)
class UnlearnConfig:
    """Methods to audit (besides the ``noop`` and ``retrain`` controls) and their parameters.

    Attributes:
        methods: Registry names (see ``unlearn-audit methods``).
        params: Per-method parameter tables, e.g. ``{"finetune": {"epochs": 3}}``.
        checkpoints: YOUR unlearned models to judge, ``{name: path}`` (state dicts of the
            same architecture), alongside or instead of ``methods``.
    """

    methods: tuple[str, ...] = ("finetune", "gradient_ascent")
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    checkpoints: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AttackConfig:
    """The membership-inference measurement.

    Attributes:
        shadows: Number of shadow models (even; each sample is IN exactly half of them).
        queries: Queries per sample (identity, flip where sensible, 1-px shifts); 0 = auto:
            the identity alone for a model trained without augmentation (shifted queries
            only add noise there), else 5 views.
        attacks: Attack registry names to run on every model.
        ulira: Build the U-LiRA bank (every shadow unlearns its share of the forget set with
            each method) for U-LiRA, per-example epsilon and forget quality.
        engine: How shadow models are trained: ``sequential`` (one after another),
            ``batched`` (many at once in one vmapped step, same models within float
            tolerance) or ``auto`` (batched on CUDA, sequential elsewhere; see
            docs/performance.md). Both engines share the model cache.
    """

    shadows: int = 64
    queries: int = 0
    attacks: tuple[str, ...] = ("loss", "lira_online", "lira_offline", "rmia_online")
    ulira: bool = True
    engine: str = "auto"

    def __post_init__(self) -> None:
        if self.engine not in ("auto", "sequential", "batched"):
            raise ConfigError(
                f"attack.engine must be 'auto', 'sequential' or 'batched', got '{self.engine}'"
            )


WEIGHTINGS = ("separation", "uniform")


@dataclass(frozen=True)
class VerdictConfig:
    """How a verdict is reached (see docs/verdict.md).

    Attributes:
        attack: The headline attack (first in the reasons; the report's ROC and the
            retain-leakage check); always one of the verdict attacks.
        attacks: Every attack whose forget-vs-non-member AUC must be indistinguishable
            from the reference's (``attack`` is added if missing).
        correction: ``bonferroni`` (each attack's interval at ``1 - (1 - level) / k``)
            or ``none``.
        level: Family-wise confidence level of the bootstrap intervals.
        n_boot: Bootstrap replicates.
        utility_tolerance: Largest allowed drop of test accuracy below the reference.
        min_forget_quality: Absolute bar on U-LiRA's forget quality F in [0, 1];
            0 = F must only not be below the retrain control's.
        max_residual: Equivalence margin on the residual membership (reference 0,
            original 1): a model passes only when every verdict attack's residual
            interval lies below it (docs/verdict.md).
        fdr: False discovery rate of the per-record list of forget records still
            recognisable (Benjamini-Hochberg).
        planted_fraction: Share of the forget request the planted partial-forgetting
            control is retrained with (it must fail); 0 = no planted control.
        weighting: How forget records weigh in the residual: ``separation`` (by how
            visible each record's membership is in the shadow models; more power) or
            ``uniform`` (every record alike). docs/verdict.md.
    """

    attack: str = "lira_online"
    attacks: tuple[str, ...] = ("lira_online", "lira_offline", "rmia_online")
    correction: str = "bonferroni"
    level: float = 0.95
    n_boot: int = 1000
    utility_tolerance: float = 0.05
    min_forget_quality: float = 0.0
    max_residual: float = 0.3
    fdr: float = 0.1
    planted_fraction: float = 0.5
    weighting: str = "separation"

    @property
    def judged_by(self) -> tuple[str, ...]:
        """The verdict attacks, the headline one first."""
        return tuple(dict.fromkeys([self.attack, *self.attacks]))


@dataclass(frozen=True)
class DifficultyConfig:
    """Per-sample difficulty and feasibility (needs ``attack.ulira``; docs/difficulty.md).

    Attributes:
        enabled: Learn the difficulty index on the U-LiRA banks and rank the forget set.
        bar: Feasibility bar on the residual scale (0.5 = as if retrained, 1 = fitted
            better than by every model that never saw the sample): a forget sample is
            infeasible at the method's budget when its predicted residual exceeds it.
    """

    enabled: bool = True
    bar: float = 0.75


EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class ExecutionConfig:
    """Where the audit's model jobs run (``audit/execution.py``; docs/performance.md).

    Attributes:
        executor: ``local`` (one after another in this process) or ``ray`` (every
            shadow, U-LiRA shadow and target model is a Ray task; ``pip install
            "unlearn-audit[ray]"``). Both give the same models.
        address: Which Ray cluster (``ray`` only): ``local`` = start a private one on
            this machine, ``auto`` = the one ``ray start --head`` runs on this machine
            (or ``RAY_ADDRESS`` names), else a cluster address (``HOST:6379``,
            ``ray://HOST:10001``).
        gpus_per_job: GPUs each job reserves; fractional (0.25: four jobs share a GPU);
            0 = CPU jobs (they train on the CPU under ``device = "auto"``).
        cpus_per_job: CPUs each job reserves, also its torch thread count (rounded down,
            at least 1).
    """

    executor: str = "local"
    address: str = "local"
    gpus_per_job: float = 0.0
    cpus_per_job: float = 1.0

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ConfigError(
                f"execution.executor (--executor) must be 'local' or 'ray', got '{self.executor}'"
            )
        if not self.address.strip():
            raise ConfigError(
                "execution.address must be 'local', 'auto' or a Ray cluster address, got ''"
            )
        if not 0 <= self.gpus_per_job < float("inf"):
            raise ConfigError(f"execution.gpus_per_job must be >= 0, got {self.gpus_per_job}")
        if not 0 < self.cpus_per_job < float("inf"):
            raise ConfigError(f"execution.cpus_per_job must be > 0, got {self.cpus_per_job}")
        for key, value in (
            ("gpus_per_job", self.gpus_per_job),
            ("cpus_per_job", self.cpus_per_job),
        ):
            if value > 1 and value != int(value):
                raise ConfigError(
                    f"execution.{key} above 1 must be a whole number (Ray shares a device only "
                    f"below 1), got {value}"
                )


@dataclass(frozen=True)
class ContrastiveConfig:
    """Settings of the ``contrastive`` paradigm (ignored by ``supervised``); docs/contrastive.md.

    Attributes:
        method: ``simclr`` (NT-Xent, in-batch negatives), ``moco`` (MoCo v2: momentum
            encoder and a queue of negatives) or ``byol`` (BYOL: predictor and EMA
            target network, no negatives; methods built on negatives refuse it).
        temperature: Temperature of the InfoNCE loss.
        proj_dim: Output size of the encoder's projection head (its last linear layer).
        momentum: MoCo's key-encoder momentum; BYOL's target-network EMA decay.
        queue_size: MoCo's number of queued negatives; 0 = auto (a quarter of the pool,
            between one batch and 4096).
        signal: Membership signal the attacks calibrate: ``instance`` (logit-scaled
            confidence of instance discrimination: a sample's ``views`` augmentations
            against a fixed bank of other pool samples), ``encodermi`` (the mean
            pairwise cosine similarity of the ``views`` augmentations) or ``probe``
            (logit-scaled confidence of a linear probe on the representation).
        views: Augmented query views per sample (``instance`` and ``encodermi``).
        epochs: Training epochs of an encoder; 0 = ``train.epochs``.
        batch_size: Batch size of an encoder (SimCLR's negatives are the rest of the
            batch); 0 = ``train.batch_size``.
        lr: Peak learning rate of an encoder; 0 = ``train.lr``.
        knn_k: Neighbours of the weighted kNN utility.
    """

    method: str = "simclr"
    temperature: float = 0.2
    proj_dim: int = 64
    momentum: float = 0.99
    queue_size: int = 0
    signal: str = "instance"
    views: int = 10
    epochs: int = 0
    batch_size: int = 128
    lr: float = 0.0
    knn_k: int = 20

    def __post_init__(self) -> None:
        if self.method not in ("simclr", "moco", "byol"):
            raise ValueError(f"method must be 'simclr', 'moco' or 'byol', got '{self.method}'")
        if self.signal not in ("instance", "encodermi", "probe"):
            raise ValueError(
                f"signal must be 'instance', 'encodermi' or 'probe', got '{self.signal}'"
            )
        if self.temperature <= 0 or not 0 <= self.momentum < 1:
            raise ValueError("temperature must be > 0 and momentum in [0, 1)")
        if self.proj_dim < 1 or self.views < 2 or self.knn_k < 1:
            raise ValueError("proj_dim and knn_k must be >= 1 and views >= 2")
        if min(self.queue_size, self.epochs, self.batch_size) < 0 or self.lr < 0:
            raise ValueError("queue_size, epochs, batch_size and lr must be >= 0 (0 = auto)")


@dataclass(frozen=True)
class AuditConfig:
    """The whole audit, resolved and validated."""

    name: str = "audit"
    paradigm: str = "supervised"
    seed: int = 0
    device: str = "auto"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: Recipe = field(default_factory=lambda: Recipe(epochs=40, batch_size=32, augment=False))
    forget: ForgetConfig = field(default_factory=ForgetConfig)
    unlearn: UnlearnConfig = field(default_factory=UnlearnConfig)
    attack: AttackConfig = field(default_factory=AttackConfig)
    verdict: VerdictConfig = field(default_factory=VerdictConfig)
    contrastive: ContrastiveConfig = field(default_factory=ContrastiveConfig)
    difficulty: DifficultyConfig = field(default_factory=DifficultyConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)

    def to_dict(self) -> dict[str, Any]:
        """Every resolved key, as plain TOML/JSON-compatible values."""
        return _plain(dataclasses.asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
