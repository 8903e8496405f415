"""prefault must really write every page: a page first touched inside the hot loop is a
fault (microseconds; a 2 MB huge page is zeroed inside it) on a live message."""
from __future__ import annotations

import resource

import numpy as np

from tickpath.runtime.engine.pipeline import Pipeline, prefault


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _faults_writing_every_page(a: np.ndarray) -> int:
    flat = a.reshape(-1).view(np.uint8)
    before = _faults()
    flat[::4096] = 7
    return _faults() - before


def test_prefault_faults_every_page_in_and_keeps_the_values():
    a = np.zeros(8 << 20)              # 64 MiB, mapped lazily: no page touched yet
    a[123] = 5.0
    a[-1] = -1.0
    prefault(a)
    assert a[123] == 5.0 and a[-1] == -1.0 and a[0] == 0.0 and a[8 << 19] == 0.0
    assert _faults_writing_every_page(a) <= 2     # without the write: one per page (or 2 MiB)


def test_a_new_pipeline_has_its_order_table_and_level_arena_faulted_in():
    p = Pipeline(n_locates=64, max_orders=1 << 20, max_levels=64)
    assert _faults_writing_every_page(p.books.orders) <= 2
    assert _faults_writing_every_page(p.books.levels) <= 2
