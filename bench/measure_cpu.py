"""CPU time the whole machine has spent busy, for the benchmark's accounting."""

from __future__ import annotations

import os


def busy_seconds() -> float:
    """Busy CPU time over all cores since boot, from /proc/stat (user, nice, system, irq, softirq)."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")
