"""The model store's cache: signals follow their signal key, models are never retrained for it."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from unlearn_audit.audit.rundir import ModelStore, cached


def _model(value: float) -> nn.Module:
    m = nn.Linear(2, 1)
    with torch.no_grad():
        m.weight.fill_(value)
        m.bias.zero_()
    return m


def test_signals_are_recomputed_when_the_signal_key_changes_and_the_model_is_not(tmp_path):
    store = ModelStore(tmp_path)
    trained: list[int] = []

    def produce() -> tuple[nn.Module, dict]:
        trained.append(1)
        return _model(3.0), {"seconds": 1.5}

    calls: list[str] = []

    def signals(tag: str):
        def of(model: nn.Module) -> np.ndarray:
            calls.append(tag)
            return np.full((4, 1), float(model.weight[0, 0]) + (10 if tag == "b" else 0))

        return of

    _, meta, sig, hit = cached(store, "m", "k1", _model(0.0), produce, signals("a"), "key-a")
    assert not hit and trained == [1] and sig[0, 0] == 3.0 and meta["signal_key"] == "key-a"
    # same signal key: weights and signals from the cache, nothing recomputed
    model, _, sig, hit = cached(store, "m", "k1", _model(0.0), produce, signals("a"), "key-a")
    assert hit and calls == ["a"] and float(model.weight[0, 0]) == 3.0 and sig[0, 0] == 3.0
    # another signal setting: fresh signals from the cached weights, no training
    _, meta, sig, hit = cached(store, "m", "k1", _model(0.0), produce, signals("b"), "key-b")
    assert hit and trained == [1] and calls == ["a", "b"] and sig[0, 0] == 13.0
    assert meta["seconds"] == 1.5 and meta["signal_key"] == "key-b"
    # and they are saved under the new key
    _, _, sig, _ = cached(store, "m", "k1", _model(0.0), produce, signals("b"), "key-b")
    assert calls == ["a", "b"] and sig[0, 0] == 13.0


def test_a_cache_entry_without_a_signal_key_gets_fresh_signals(tmp_path):
    store = ModelStore(tmp_path)
    store.save("m", "k", _model(2.0), {"seconds": 0.1}, np.zeros((4, 1)))  # an older run's entry
    _, meta, sig, hit = cached(
        store, "m", "k", _model(0.0), lambda: (_model(9.0), {}), lambda m: np.ones((4, 1)), "s"
    )
    assert hit and sig.sum() == 4 and meta["signal_key"] == "s"
