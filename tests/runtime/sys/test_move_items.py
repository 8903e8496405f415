"""move_items: a memmove of array elements inside jitted code, overlapping either way."""
from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from tickpath.runtime.book.layout import LEVEL_DTYPE
from tickpath.runtime.sys.intrinsics import move_items


@njit(cache=True)
def _move(arr, dst, src, count):
    move_items(arr, dst, src, count)


@pytest.mark.parametrize("dst,src,count", [(3, 2, 5), (2, 3, 5), (0, 5, 5), (4, 4, 3),
                                           (1, 6, 0)])
def test_move_matches_numpy_on_overlapping_ranges(dst, src, count):
    a = np.arange(10, dtype=np.int64)
    want = a.copy()
    want[dst:dst + count] = a[src:src + count].copy()
    _move(a, dst, src, count)
    assert a.tolist() == want.tolist()


def test_move_moves_whole_records():
    lv = np.zeros(6, dtype=LEVEL_DTYPE)
    lv["price"], lv["orders"], lv["shares"] = np.arange(6) + 100, np.arange(6) + 1, -np.arange(6)
    want = lv.copy()
    want[2:6] = lv[1:5].copy()
    _move(lv, 2, 1, 4)
    assert lv.tobytes() == want.tobytes()


def test_a_strided_view_is_refused_at_compile_time():
    from numba.core.errors import TypingError
    a = np.arange(20, dtype=np.int64)
    with pytest.raises(TypingError):
        _move(a[::2], 1, 0, 3)
