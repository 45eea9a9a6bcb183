"""Resident memory of this process, for the benchmark scripts (Linux /proc).

The peak is VmHWM, not getrusage's ru_maxrss: a child started by subprocess (vfork + exec) inherits
its parent's high-water mark in ru_maxrss, so a child that measures itself with ru_maxrss reports
the parent's peak whenever the parent was bigger. VmHWM belongs to the process's own address space
and starts afresh at exec.
"""

from __future__ import annotations


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024


def rss_mib() -> float:
    """Resident memory now."""
    return _status_mib("VmRSS")


def peak_rss_mib() -> float:
    """Highest resident memory since this process started (its exec)."""
    return _status_mib("VmHWM")
