"""A sum tree over priorities, with vectorised updates and prefix-sum searches (NumPy, no Python loop per item)."""

import numpy as np


class SumTree:
    """
    A complete binary tree whose leaves hold non-negative priorities and whose inner nodes hold the
    sums of their children, stored in one array: node 1 is the root, node ``i`` has children ``2i``
    and ``2i + 1``, and the leaves are the last ``leaf_count`` nodes (a power of two, so that every
    leaf is at the same depth and a batch moves through the tree one level at a time).

    Updating ``k`` leaves costs ``O(k log n)`` and finding ``k`` prefix sums costs ``O(k log n)``, each
    done level by level on whole batches.

    :param capacity: number of leaves that can be written (at least 1)
    """

    def __init__(self, capacity: int) -> None:
        if not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        self.capacity = int(capacity)
        self.leaf_count = 1 << (self.capacity - 1).bit_length()
        # Sums are recomputed from the children on every update (never adjusted by differences),
        # so rounding errors do not accumulate over millions of updates.
        self.nodes = np.zeros(2 * self.leaf_count, dtype=np.float64)

    @property
    def total(self) -> float:
        """The sum of all priorities."""
        return float(self.nodes[1])

    def __getitem__(self, indices: np.ndarray) -> np.ndarray:
        return self.nodes[self.leaf_count + np.asarray(indices)]

    def update(self, indices: np.ndarray, priorities: np.ndarray | float) -> None:
        """
        Set the priorities of the leaves ``indices`` (the last value wins for a repeated index).

        :param indices: leaf indices in ``[0, capacity)``
        :param priorities: one non-negative priority per index, or one for all
        """
        indices = np.asarray(indices, dtype=np.int64).ravel()
        priorities = np.broadcast_to(np.asarray(priorities, dtype=np.float64), indices.shape)
        if indices.size == 0:
            return
        if indices.min() < 0 or indices.max() >= self.capacity:
            raise IndexError(f"leaf indices must be in [0, {self.capacity}), got {indices.min()}..{indices.max()}")
        # np.unique keeps the first occurrence: search the reversed arrays so that the last write wins
        unique, position = np.unique(indices[::-1], return_index=True)
        nodes = unique + self.leaf_count
        self.nodes[nodes] = priorities[::-1][position]
        nodes = np.unique(nodes // 2)
        while nodes[0] >= 1:
            self.nodes[nodes] = self.nodes[2 * nodes] + self.nodes[2 * nodes + 1]
            nodes = np.unique(nodes // 2)

    def find(self, prefix_sums: np.ndarray) -> np.ndarray:
        """
        For each value ``s``, the leaf ``i`` whose interval ``[sum(p[:i]), sum(p[:i + 1]))`` holds ``s``.

        A subtree whose sum is zero is never entered, so a leaf of priority zero is never returned
        (while the total is positive), even when rounding puts ``s`` at or past the total.

        :param prefix_sums: values in ``[0, total)``
        :return: leaf indices, one per value
        """
        values = np.array(prefix_sums, dtype=np.float64).ravel()
        nodes = np.ones(values.shape, dtype=np.int64)
        for _ in range(self.leaf_count.bit_length() - 1):  # one step per level
            left = 2 * nodes
            left_sums = self.nodes[left]
            go_right = (values >= left_sums) & (self.nodes[left + 1] > 0)
            values = np.where(go_right, values - left_sums, values)
            nodes = left + go_right
        return nodes - self.leaf_count
