"""The recorder's safety checkpoint cadence: spaced by the checkpoint's own CPU cost, not its disk wait."""

from __future__ import annotations

import time

from evo.recorder import Recorder
from evo.setting import setting_for


class _Writer:
    """A run writer whose checkpoint waits (as for an fsync) or computes for ``seconds``."""

    def __init__(self, seconds: float, busy: bool) -> None:
        self.seconds, self.busy, self.saved = seconds, busy, 0

    def checkpoint(self, data: dict, announce: bool = True) -> None:
        end = time.thread_time() + self.seconds if self.busy else None
        if end is None:
            time.sleep(self.seconds)  # blocked on the disk: no CPU
        else:
            while time.thread_time() < end:
                pass
        self.saved += 1


class _State:
    def to_dict(self) -> dict:
        return {}


def _interval(writer: _Writer) -> float:
    recorder = Recorder(writer, setting_for("float32"), 10**9, 10**9, safety_seconds=1.0)
    recorder.checkpoint(_State(), numbered=False)
    return recorder._safety_interval


def test_the_safety_interval_grows_with_a_checkpoints_cpu_and_not_with_its_disk_wait():
    assert _interval(_Writer(0.1, busy=False)) == 1.0  # 0.1 s of fsync wait: 50 x would be 5 s
    assert _interval(_Writer(0.1, busy=True)) >= 4.5  # 0.1 s of CPU: 50 x that
