"""A long-running process's collector settings (kit/heap.py), checked in a process of its own:
freezing the test run's own heap would change every test after this one."""

from __future__ import annotations

import subprocess
import sys

from pintuan.kit.heap import OLDER_RATIO, YOUNG_THRESHOLD

_PROGRAM = """
import gc, weakref
from pintuan.kit.heap import settle_heap

class Node:
    pass

lost = Node()
lost.itself = lost  # garbage only the collector finds: a cycle
lost_ref = weakref.ref(lost)
del lost
kept = [Node() for _ in range(1000)]
settle_heap()
tracked = {id(o) for o in gc.get_objects()}  # the generations the collector walks
print(gc.get_threshold())
print(lost_ref() is None)
print(sum(id(node) in tracked for node in kept), gc.get_freeze_count() >= len(kept))
"""


def test_settling_raises_the_young_threshold_collects_the_garbage_and_freezes_the_rest() -> None:
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed program
        [sys.executable, "-c", _PROGRAM], capture_output=True, text=True, check=True, timeout=60
    )
    threshold, collected, frozen = done.stdout.splitlines()
    assert threshold == str((YOUNG_THRESHOLD, OLDER_RATIO, OLDER_RATIO))
    assert collected == "True"  # the cycle was collected, not frozen with the rest
    assert frozen == "0 True"  # no kept node is walked by any generation's pass any more
