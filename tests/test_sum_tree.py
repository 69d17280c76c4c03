"""The sum tree against a brute-force reference: sums, prefix-sum searches, updates."""

import numpy as np
import pytest

from sb3_dueling.sum_tree import SumTree


@pytest.mark.parametrize("fanout", [2, 3, 32])
@pytest.mark.parametrize("capacity", [1, 2, 5, 8, 100, 1000, 1025])
def test_sums_and_searches_match_brute_force(capacity, fanout):
    rng = np.random.default_rng(capacity)
    tree = SumTree(capacity, fanout)
    priorities = np.zeros(capacity)
    for _ in range(20):
        indices = rng.integers(0, capacity, size=rng.integers(1, 2 * capacity + 1))
        values = rng.random(len(indices)) * rng.choice([0.0, 1.0, 100.0], size=len(indices))
        tree.update(indices, values)
        for index, value in zip(indices, values, strict=True):  # the last write of an index wins
            priorities[index] = value
        np.testing.assert_allclose(tree[np.arange(capacity)], priorities)
        assert tree.total == pytest.approx(priorities.sum())
        if priorities.sum() == 0:
            continue
        targets = rng.random(500) * priorities.sum()
        expected = np.searchsorted(np.cumsum(priorities), targets, side="right")
        np.testing.assert_array_equal(tree.find(targets), expected)


@pytest.mark.parametrize("fanout", [2, 4, 32])
def test_zero_priorities_are_never_found_even_at_the_total(fanout):
    tree = SumTree(6, fanout)
    tree.update(np.arange(6), [0.0, 1.0, 0.0, 2.0, 0.0, 0.0])
    found = tree.find([0.0, 0.5, 1.0, 2.9999, 3.0, 3.5, np.nextafter(3.0, 4.0)])
    np.testing.assert_array_equal(found, [1, 1, 3, 3, 3, 3, 3])


def test_repeated_updates_do_not_drift():
    tree = SumTree(1000)
    rng = np.random.default_rng(0)
    for _ in range(2000):
        tree.update(rng.integers(0, 1000, size=64), rng.random(64) * 1e3)
    assert tree.total == pytest.approx(tree[np.arange(1000)].sum(), rel=1e-12)


@pytest.mark.parametrize("capacity", [0, -1, 2.5, "8", True])
def test_bad_capacity(capacity):
    with pytest.raises(ValueError, match="capacity"):
        SumTree(capacity)


@pytest.mark.parametrize("fanout", [1, 0, 2.0])
def test_bad_fanout(fanout):
    with pytest.raises(ValueError, match="fanout"):
        SumTree(8, fanout)


def test_memory_is_about_one_float_per_leaf():
    assert SumTree(1_000_000).nbytes < 1.04 * 8 * 1_000_000


def test_out_of_range_leaf():
    with pytest.raises(IndexError, match=r"\[0, 4\)"):
        SumTree(4).update([4], [1.0])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, -1.0])
def test_a_priority_that_is_not_finite_and_non_negative_is_refused(bad):
    tree = SumTree(4)
    tree.update([0, 1], [1.0, 2.0])
    with pytest.raises(ValueError, match=rf"finite and non-negative, got \[{bad}\] for the leaves \[3\]"):
        tree.update([2, 3], [1.0, bad])
    assert tree.total == 3.0 and tree[[2, 3]].tolist() == [0.0, 0.0]  # nothing written
    np.testing.assert_array_equal(tree.find([0.5, 2.5]), [0, 1])


def test_one_leaf_updates_make_the_sums_of_batch_updates():
    rng = np.random.default_rng(0)
    for capacity in [1, 33, 1000]:
        one, batch = SumTree(capacity), SumTree(capacity)
        for _ in range(500):
            leaf, priority = int(rng.integers(capacity)), float(rng.random() * 10.0 ** rng.integers(-5, 5))
            one.update(np.array([leaf]), priority)
            batch.update(np.array([leaf, leaf]), np.array([priority, priority]))  # the batch path, same result
        for level, expected in zip(one.levels, batch.levels, strict=True):
            np.testing.assert_array_equal(level, expected)


@pytest.mark.parametrize(
    ("leaf", "priority", "error"),
    [(-1, 1.0, IndexError), (4, 1.0, IndexError), (0, np.nan, ValueError), (0, -1.0, ValueError), (0, np.inf, ValueError)],
)
def test_one_leaf_update_checks_its_input(leaf, priority, error):
    tree = SumTree(4)
    with pytest.raises(error):
        tree.update(np.array([leaf]), priority)
    assert tree.total == 0.0
