"""The Merkle Tree Hash of RFC 9162 (Certificate Transparency 2.0), section 2.1.

A leaf is SHA-256(0x00 || entry bytes), an inner node SHA-256(0x01 || left || right),
and the tree over n leaves splits at k, the largest power of two below n: the left
subtree is complete, the right one holds the rest. The empty tree's hash is SHA-256
of nothing. With this shape one entry's inclusion in a tree of n entries is proved by
about log2(n) hashes (the audit path), and a tree of m entries is proved to be the
start of a tree of n entries the same way (the consistency proof), without the rest
of the log. All functions here take leaf hashes, already made with `leaf_hash`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """k, the largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over the leaves. Built level by level, a lone last node moving up unchanged:
    that is the same tree as the RFC's recursive split, without the recursion."""
    if not leaf_hashes:
        return hashlib.sha256(b"").digest()
    level = list(leaf_hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _check_sizes(leaf_hashes: Sequence[bytes], tree_size: int) -> None:
    if not 0 <= tree_size <= len(leaf_hashes):
        raise ValueError(f"tree size {tree_size} is outside the {len(leaf_hashes)} leaves given")


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int, tree_size: int) -> list[bytes]:
    """PATH(index, D[tree_size]) of RFC 9162 2.1.3.1: the audit path, leaf side first."""
    _check_sizes(leaf_hashes, tree_size)
    if not 0 <= index < tree_size:
        raise ValueError(f"leaf {index} is not in a tree of size {tree_size}")

    def path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
        n = len(leaves)
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return path(m, leaves[:k]) + [root(leaves[k:])]
        return path(m - k, leaves[k:]) + [root(leaves[:k])]

    return path(index, leaf_hashes[:tree_size])


def verify_inclusion(leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], expected_root: bytes) -> bool:
    """RFC 9162 2.1.3.2: does `proof` take `leaf`, at `index`, to `expected_root`?"""
    if not 0 <= index < tree_size:
        return False
    fn, sn, r = index, tree_size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == expected_root


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int, new_size: int) -> list[bytes]:
    """PROOF(old_size, D[new_size]) of RFC 9162 2.1.4.1. Empty when there is nothing
    to prove: an empty old tree, or the same size."""
    _check_sizes(leaf_hashes, new_size)
    if not 0 <= old_size <= new_size:
        raise ValueError(f"old size {old_size} is not between 0 and the new size {new_size}")
    if old_size in (0, new_size):
        return []

    def subproof(m: int, leaves: Sequence[bytes], whole: bool) -> list[bytes]:
        n = len(leaves)
        if m == n:
            return [] if whole else [root(leaves)]
        k = _split(n)
        if m <= k:
            return subproof(m, leaves[:k], whole) + [root(leaves[k:])]
        return subproof(m - k, leaves[k:], False) + [root(leaves[:k])]

    return subproof(old_size, leaf_hashes[:new_size], True)


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 2.1.4.2: is the tree of `old_size` leaves with `old_root` the start of
    the tree of `new_size` leaves with `new_root`?"""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof  # every tree begins with the empty one
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a node of the new tree
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == old_root and sr == new_root and sn == 0


def prefix_roots(leaf_hashes: Sequence[bytes], sizes: set[int] | list[int]) -> dict[int, bytes]:
    """MTH of the first n leaves for each n in `sizes` (n <= len(leaf_hashes)), in one
    pass: the leaves so far are held as their complete subtrees, largest first (the
    binary digits of n), and the root of n folds those from the right, as the RFC's
    split at the largest power of two does."""
    wanted = set(sizes)
    out: dict[int, bytes] = {}
    if 0 in wanted:
        out[0] = root([])
    stack: list[tuple[int, bytes]] = []  # (subtree size, hash)
    for count, leaf in enumerate(leaf_hashes, start=1):
        size, node = 1, leaf
        while stack and stack[-1][0] == size:
            node = node_hash(stack.pop()[1], node)
            size *= 2
        stack.append((size, node))
        if count in wanted:
            folded = stack[-1][1]
            for _, left in reversed(stack[:-1]):
                folded = node_hash(left, folded)
            out[count] = folded
    return out
