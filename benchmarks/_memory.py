"""Peak-memory helpers shared by the benchmarks (Linux /proc; no-ops elsewhere).

Each benchmark measures one configuration per subprocess: it resets the peak RSS after building
its models and reads it after the timed steps, so the number is the steps' own peak.
"""

from __future__ import annotations


def reset_peak_rss() -> bool:
    """Linux: writing 5 to /proc/self/clear_refs resets VmHWM (peak RSS). False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def vm_mib(key: str, path: str = "/proc/self/status") -> float:
    """A ``key:`` line of /proc/self/status (or /proc/meminfo) in MiB, e.g. ``VmHWM:``; NaN when absent."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def peak_mib(device: "torch.device", reset: bool, before: float) -> tuple[float, str]:
    """The timed steps' peak memory and what it measures: CUDA max allocated, else the peak RSS since
    :func:`reset_peak_rss` (``reset``), else the whole process's peak RSS (model construction included)."""
    import resource

    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "CUDA max allocated"
    if reset:
        return vm_mib("VmHWM:"), f"peak RSS during the steps; {before:.0f} MiB resident before them"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "peak RSS of the process (incl. model construction)"
