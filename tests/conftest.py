import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))

FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def require_fashion():
    """Real Fashion-MNIST from Debian's dataset-fashion-mnist; CI must have it."""
    if not (FASHION / "train-images-idx3-ubyte.gz").exists():
        if os.environ.get("CI") or os.environ.get("UNLEARN_AUDIT_REQUIRE_DATA"):
            pytest.fail("Fashion-MNIST missing: apt-get install -y dataset-fashion-mnist")
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    return FASHION


@pytest.fixture
def one_thread():
    """Tiny tensors: one torch thread avoids thread hand-off costs on shared cores.

    A module opts in with ``pytestmark = pytest.mark.usefixtures("one_thread")``; the
    previous thread count is restored after each test.
    """
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
