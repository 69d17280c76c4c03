"""A sum tree over priorities, with vectorised updates and prefix-sum searches (NumPy, no Python loop per item)."""

import math

import numpy as np


class SumTree:
    """
    A tree whose leaves hold non-negative priorities and whose inner nodes hold the sums of their
    ``fanout`` children, one array per level. A batch of updates or searches moves through the tree
    one level at a time, each level one NumPy operation on the whole batch.

    A wide tree (32 children per node: 4 levels for a million leaves, against 20 for a binary tree)
    makes the few NumPy calls per level, not the arithmetic, the cost; that keeps sampling and
    updating fast next to a gradient step.

    :param capacity: number of leaves that can be written (at least 1)
    :param fanout: children per inner node (at least 2)
    """

    def __init__(self, capacity: int, fanout: int = 32) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        if isinstance(fanout, bool) or not isinstance(fanout, (int, np.integer)) or fanout < 2:
            raise ValueError(f"fanout must be an integer >= 2, got {fanout!r}")
        self.capacity = int(capacity)
        self.fanout = int(fanout)
        # levels[0] holds the leaves, levels[-1] the root; every level but the root is padded to
        # whole groups of `fanout` siblings, so that a level reshapes to [parents, fanout]
        self.levels: list[np.ndarray] = []
        size = self.capacity
        while True:
            groups = -(-size // self.fanout)
            self.levels.append(np.zeros(groups * self.fanout, dtype=np.float64))
            if groups == 1:
                break
            size = groups
        self.levels.append(np.zeros(1, dtype=np.float64))
        # children @ exclusive_prefix: the sum of the siblings to the left of each child (a small
        # matrix product is several times faster than NumPy's cumsum along short rows)
        self.exclusive_prefix = np.triu(np.ones((self.fanout, self.fanout)), k=1)

    @property
    def total(self) -> float:
        """The sum of all priorities."""
        return float(self.levels[-1][0])

    @property
    def nbytes(self) -> int:
        return sum(level.nbytes for level in self.levels)

    def __getitem__(self, indices: np.ndarray) -> np.ndarray:
        return self.levels[0][np.asarray(indices)]

    def update(self, indices: np.ndarray, priorities: np.ndarray | float) -> None:
        """
        Set the priorities of the leaves ``indices`` (the last value wins for a repeated index).

        :param indices: leaf indices in ``[0, capacity)``
        :param priorities: one non-negative priority per index, or one for all
        """
        indices = np.asarray(indices, dtype=np.int64).ravel()
        priorities = np.broadcast_to(np.asarray(priorities, dtype=np.float64), indices.shape)
        if indices.size == 1:
            # One leaf (a transition added from one env, at every env step): scalar steps cost a tenth of the batch's
            self._update_one(int(indices[0]), float(priorities[0]))
            return
        if indices.size == 0:
            return
        if indices.min() < 0 or indices.max() >= self.capacity:
            raise IndexError(f"leaf indices must be in [0, {self.capacity}), got {indices.min()}..{indices.max()}")
        # One comparison each: NaN fails both, so a NaN never reaches the sums (it would make every search wrong)
        bad = ~((priorities >= 0) & (priorities < np.inf))
        if bad.any():
            raise ValueError(
                f"priorities must be finite and non-negative, got {priorities[bad][:5].tolist()} "
                f"for the leaves {indices[bad][:5].tolist()}"
            )
        # np.unique keeps the first occurrence: search the reversed arrays so that the last write wins
        unique, position = np.unique(indices[::-1], return_index=True)
        self.levels[0][unique] = priorities[::-1][position]
        # Every sum is recomputed from its children (never adjusted by a difference), so rounding
        # errors do not accumulate over millions of updates. A repeated parent gets the same sum twice.
        nodes = unique
        for child, parent in zip(self.levels[:-1], self.levels[1:], strict=True):
            nodes = nodes // self.fanout
            parent[nodes] = child.reshape(-1, self.fanout)[nodes].sum(axis=1)

    def _update_one(self, leaf: int, priority: float) -> None:
        """:meth:`update` of a single leaf, with the same checks and the same sums."""
        if not 0 <= leaf < self.capacity:
            raise IndexError(f"leaf indices must be in [0, {self.capacity}), got {leaf}..{leaf}")
        if not 0 <= priority < math.inf:
            raise ValueError(f"priorities must be finite and non-negative, got {[priority]} for the leaves {[leaf]}")
        self.levels[0][leaf] = priority
        node = leaf
        for child, parent in zip(self.levels[:-1], self.levels[1:], strict=True):
            node //= self.fanout
            start = node * self.fanout
            parent[node] = child[start : start + self.fanout].sum()

    def find(self, prefix_sums: np.ndarray) -> np.ndarray:
        """
        For each value ``s``, the leaf ``i`` whose interval ``[sum(p[:i]), sum(p[:i + 1]))`` holds ``s``.

        A leaf of priority zero is never returned (while the total is positive), even when rounding
        puts ``s`` at or past the total: the search then takes the last non-empty child.

        :param prefix_sums: values in ``[0, total)``
        :return: leaf indices, one per value
        """
        values = np.array(prefix_sums, dtype=np.float64).ravel()
        nodes = np.zeros(values.shape, dtype=np.int64)
        rows = np.arange(values.size)
        for level in reversed(self.levels[:-1]):
            children = level.reshape(-1, self.fanout)[nodes]  # [batch, fanout]
            before = children @ self.exclusive_prefix
            chosen = np.count_nonzero(before <= values[:, None], axis=1) - 1
            empty = children[rows, chosen] <= 0
            if empty.any():  # rounding went past the last non-empty child (or into trailing zeros)
                non_empty = children[empty] > 0
                chosen[empty] = self.fanout - 1 - np.argmax(non_empty[:, ::-1], axis=1)
            values = values - before[rows, chosen]
            nodes = nodes * self.fanout + chosen
        return nodes
