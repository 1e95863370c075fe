from torch import nn


def make_net(hidden: int = 128, classes: int = 10) -> nn.Module:
    """The user's production architecture (8x8 digits in, class logits out)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, classes),
    )


def make_other(classes: int = 10) -> nn.Module:
    """A different architecture, to check that foreign checkpoints are refused."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, classes))
