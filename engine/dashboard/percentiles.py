"""Median and p90 of working times, identical on PostgreSQL, SQLite and the rollup.

Definition: continuous percentiles with linear interpolation between the closest ranks,
i.e. PostgreSQL's `percentile_cont`: for sorted values v[0..n-1] and fraction p,
pos = p*(n-1), result = v[floor(pos)] + (v[ceil(pos)] - v[floor(pos)]) * (pos - floor(pos)).
PostgreSQL computes it in SQL (1M rows stay fast); SQLite has no percentile function, so
its durations are fetched and `percentile()` does the same arithmetic; the rollup keeps
(value, count) pairs and `Durations` selects order statistics from them. All are rounded to
2 decimals (`r2`), so every path gives identical numbers.
"""
from __future__ import annotations

import math
import operator
import sys
from array import array
from bisect import bisect_right
from collections import defaultdict
from itertools import accumulate, repeat
from typing import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .scope import ht, is_pg, pv


def percentile(values: Iterable[float], p: float) -> float | None:
    """Continuous percentile with linear interpolation (PostgreSQL percentile_cont)."""
    v = sorted(values)
    if not v:
        return None
    pos = p * (len(v) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def r2(x: float | None) -> float | None:
    return None if x is None else round(float(x), 2)


def by_group(session: Session, keys: list, conds: list, ps: tuple[float, ...]) -> dict[tuple, tuple]:
    """Percentiles of working_minutes per group: in SQL on PostgreSQL, in Python elsewhere."""
    if is_pg(session):
        cols = [func.percentile_cont(p).within_group(ht.c.working_minutes) for p in ps]
        rows = session.execute(select(*keys, *cols).select_from(ht.join(pv, pv.c.id == ht.c.version_id))
                               .where(*conds).group_by(*keys)).all()
        return {tuple(r[:len(keys)]): tuple(r2(x) for x in r[len(keys):]) for r in rows}
    values: dict[tuple, list[float]] = defaultdict(list)
    for r in session.execute(select(*keys, ht.c.working_minutes).select_from(ht.join(pv, pv.c.id == ht.c.version_id))
                             .where(*conds, ht.c.working_minutes.is_not(None))):
        values[tuple(r[:len(keys)])].append(r[-1])
    return {k: tuple(r2(percentile(v, p)) for p in ps) for k, v in values.items()}


# ---- durations as (value, count) pairs: the rollup's form ------------------------------------

def centi(minutes: float) -> int:
    """A working time as integer centi-minutes: round(minutes, 2) exactly (c / 100 gives it back)."""
    return int(round(round(minutes, 2) * 100))


def pack(values: dict[int, int]) -> bytes:
    """(value, count) pairs, values ascending, as little-endian int64s (PostgreSQL can
    concatenate the blobs of several blocks with string_agg)."""
    pairs = array("q")
    for k in sorted(values):
        pairs.append(k)
        pairs.append(values[k])
    if sys.byteorder == "big":
        pairs.byteswap()
    return pairs.tobytes()


def unpack(blob: bytes) -> array:
    """(value, count) pairs, interleaved."""
    a = array("q")
    a.frombytes(bytes(blob))
    if sys.byteorder == "big":
        a.byteswap()
    return a


_SHIFT = 32  # small blocks sort as value << 32 | count (a count per day and step stays < 2**32)
_MASK = (1 << _SHIFT) - 1


class Durations:
    """A multiset of durations in centi-minutes, as sorted blocks with cumulative counts.

    Month and year blocks stay apart; day blocks and live values are merged into one block
    (sorted in C: value << 32 | count). Order statistics by binary search over the value with
    a bisection per block, so a median over years costs ~20 x blocks bisections, not a sort."""

    __slots__ = ("blocks", "small", "n")

    def __init__(self) -> None:
        self.blocks: list[tuple[array, list[int]]] = []
        self.small = array("q")  # interleaved (value, count), any order
        self.n = 0

    def add(self, centi_minutes: int, count: int) -> None:
        self.small.append(centi_minutes)
        self.small.append(count)
        self.n += count

    def add_blob(self, blob: bytes, big: bool) -> None:
        a = unpack(blob)
        if not a:
            return
        if big:
            cum = list(accumulate(a[1::2]))
            self.blocks.append((a[0::2], cum))
            self.n += cum[-1]
        else:
            self.small.extend(a)
            self.n += sum(a[1::2])

    def _freeze(self) -> None:
        if self.small:
            s = self.small
            packed = sorted(map(operator.or_, map(operator.lshift, s[0::2], repeat(_SHIFT)), s[1::2]))
            self.blocks.append((array("q", map(operator.rshift, packed, repeat(_SHIFT))),
                                list(accumulate(map(operator.and_, packed, repeat(_MASK))))))
            self.small = array("q")

    def kth(self, k: int) -> int:
        """The k-th smallest value (0-based)."""
        self._freeze()
        blocks = self.blocks
        if len(blocks) == 1:
            values, cum = blocks[0]
            return values[bisect_right(cum, k)]
        lo, hi = min(b[0][0] for b in blocks), max(b[0][-1] for b in blocks)
        while lo < hi:  # the smallest x with more than k values <= x
            mid = (lo + hi) // 2
            below = 0
            for values, cum in blocks:
                i = bisect_right(values, mid)
                if i:
                    below += cum[i - 1]
            if below > k:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def percentile(self, p: float) -> float | None:
        """Exactly `percentile()` on the expanded values (percentile_cont's interpolation)."""
        if not self.n:
            return None
        pos = p * (self.n - 1)
        lo, hi = math.floor(pos), math.ceil(pos)
        c_lo = self.kth(lo)
        c_hi = c_lo if hi == lo else self._next(c_lo, hi)
        v_lo, v_hi = c_lo / 100, c_hi / 100
        return v_lo + (v_hi - v_lo) * (pos - lo)

    def _next(self, v: int, k: int) -> int:
        """The k-th smallest value, knowing the (k-1)-th is v: v again, or the next larger value."""
        below, following = 0, None
        for values, cum in self.blocks:
            i = bisect_right(values, v)
            if i:
                below += cum[i - 1]
            if i < len(values) and (following is None or values[i] < following):
                following = values[i]
        return v if below > k else following
