import numpy as np
import pytest

from unlearn_audit.audit.plan import PlanError, derive_seed, make_plan
from unlearn_audit.learning import load_dataset


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _check(plan, n):
    assert np.intersect1d(plan.members, plan.nonmembers).size == 0
    assert np.intersect1d(plan.public, np.union1d(plan.members, plan.nonmembers)).size == 0
    assert np.union1d(np.union1d(plan.members, plan.nonmembers), plan.public).size == n
    assert plan.n_pool == n
    assert np.isin(plan.forget, plan.members).all()
    assert np.intersect1d(plan.forget, plan.retain).size == 0
    assert np.array_equal(np.union1d(plan.forget, plan.retain), plan.members)
    assert (plan.keep.sum(0) == plan.keep.shape[0] // 2).all()


def test_random_plan(digits):
    plan = make_plan(digits, "random:0.1", seed=0, n_shadows=4)
    _check(plan, len(digits))
    assert plan.members.size == 898 and plan.forget.size == 90
    assert plan.public.size == 90 and plan.nonmembers.size == 809
    assert plan.summary()["n_retain"] == 808
    again = make_plan(digits, "random:0.1", seed=0, n_shadows=4)
    assert np.array_equal(plan.forget, again.forget) and np.array_equal(plan.keep, again.keep)
    other = make_plan(digits, "random:0.1", seed=1, n_shadows=4)
    assert not np.array_equal(plan.members, other.members)


def test_class_plan_by_index_and_name(digits):
    plan = make_plan(digits, "class:3", seed=0, n_shadows=2)
    _check(plan, len(digits))
    labels = digits.y.numpy()
    assert (labels[plan.forget] == 3).all()
    assert not (labels[plan.retain] == 3).any()


def test_file_plan_forces_ids_into_members(digits, tmp_path):
    f = tmp_path / "ids.txt"
    f.write_text("5, 17\n# a comment\n1000 3\n")
    plan = make_plan(digits, f"file:{f}", seed=0, n_shadows=2)
    _check(plan, len(digits))
    assert plan.forget.tolist() == [3, 5, 17, 1000]


@pytest.mark.parametrize(
    ("spec", "content", "match"),
    [
        ("random:0", None, "fraction must lie in"),
        ("random:0.0001", None, "selects no sample"),
        ("random:abc", None, "not a fraction"),
        ("class:12", None, "names no class"),
        ("everything", None, "not understood"),
        (
            "file:{f}",
            "1 5000",
            r"1 id\(s\) name no sample \(first: 5000\); they must be sample "
            r"indices 0..1796",
        ),
        ("file:{f}", "", "lists no sample"),
        ("file:{f}", "1 x -3", r"2 id\(s\) name no sample \(first: x, -3\)"),
        ("file:/no/such/file", None, "does not exist"),
    ],
)
def test_bad_forget_specs(digits, tmp_path, spec, content, match):
    f = tmp_path / "ids.txt"
    if content is not None:
        f.write_text(content)
    with pytest.raises(PlanError, match=match):
        make_plan(digits, spec.format(f=f), seed=0, n_shadows=2)


def test_derive_seed_is_stable_and_distinct():
    assert derive_seed(0, "a") == derive_seed(0, "a")
    assert derive_seed(0, "a") != derive_seed(0, "b") != derive_seed(1, "a")
    assert 0 <= derive_seed(5, "x", 3) < 2**31


def test_duplicate_ids_are_reported_not_dropped_silently(digits, tmp_path):
    f = tmp_path / "ids.txt"
    f.write_text("1 2 2 9 9 9")
    plan = make_plan(digits, f"file:{f}", seed=0, n_shadows=2)
    assert plan.forget.tolist() == [1, 2, 9]
    assert len(plan.warnings) == 1 and "2 id(s) listed more than once" in plan.warnings[0]


def test_ids_match_the_datasets_id_array(tmp_path):
    import torch

    from unlearn_audit.learning.data import Dataset

    ids = np.array([f"rec-{i}" for i in range(40)])
    ds = Dataset("mine", torch.rand(40, 1, 4, 4), torch.arange(40) % 2, ("a", "b"), ids=ids)
    members = tmp_path / "members.txt"
    members.write_text(" ".join(f"rec-{i}" for i in range(0, 40, 2)))
    forget = tmp_path / "forget.txt"
    forget.write_text("rec-4\nrec-10\n")
    plan = make_plan(ds, f"file:{forget}", 0, 2, members_spec=f"file:{members}")
    assert plan.members.tolist() == list(range(0, 40, 2))
    assert plan.forget.tolist() == [4, 10]
    forget.write_text("rec-3")  # a real id, but not a member
    with pytest.raises(PlanError, match="not members of the original's training set"):
        make_plan(ds, f"file:{forget}", 0, 2, members_spec=f"file:{members}")
    forget.write_text("rec-999")
    with pytest.raises(PlanError, match="values of the dataset's ids array"):
        make_plan(ds, f"file:{forget}", 0, 2, members_spec=f"file:{members}")
