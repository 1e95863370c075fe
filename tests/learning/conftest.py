"""Fixtures of the learning tests."""

import pytest
import torch


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
