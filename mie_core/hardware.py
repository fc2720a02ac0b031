"""What this machine's CPU can do, for the precision choices of training and inference."""
from __future__ import annotations

from pathlib import Path

_BF16: bool | None = None


def cpu_has_bf16() -> bool:
    """True when this CPU runs bf16 matrix maths natively (AVX-512 BF16 or AMX)."""
    global _BF16
    if _BF16 is None:
        try:
            flags = Path("/proc/cpuinfo").read_text()
            _BF16 = (" avx512_bf16" in flags) or (" amx_bf16" in flags)
        except OSError:
            _BF16 = False
    return _BF16


def yield_cpu(nice: int = 19) -> list[str]:
    """Give this process, its future children and its session the lowest CPU priority.

    A background job (the study's runs) should take only what the foreground leaves. ``nice``
    alone does not do that on Linux with autogroup scheduling
    (``/proc/sys/kernel/sched_autogroup_enabled`` = 1): the kernel first shares the CPU fairly
    between *sessions* and a nice value weighs only within its own, so a run started with
    ``nice -n 19`` from one shell still took 87 % of a core from a two-thread evaluation started
    in another (2026-12-07, 2-core AMD EPYC). This raises both the process's nice value and its
    session's autogroup nice value, where the kernel has one. The second applies to every process
    of the session, so it is changed only when this process leads its own session
    (``start_new_session=True``, ``setsid``): a job started from a shell leaves the shell's
    session, and whatever else runs in it, as they were.

    Args:
        nice: 0-19, the niceness asked for (never lowered: a process may only raise it).

    Returns:
        What was changed, one line each, for the job's log.

    Example:
        >>> import subprocess, sys
        >>> code = "from mie_core.hardware import yield_cpu; import os; yield_cpu(); print(os.nice(0))"
        >>> subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
        ...                start_new_session=True).stdout.strip()
        '19'
    """
    import os

    if not 0 <= nice <= 19:
        raise ValueError(f"nice must be 0-19, got {nice}")
    done = []
    now = os.nice(0)
    if nice > now:
        os.nice(nice - now)
        done.append(f"nice {now} -> {nice}")
    if os.getsid(0) != os.getpid():
        return done  # not our session to lower
    group = Path("/proc/self/autogroup")
    try:
        current = group.read_text().split()  # "/autogroup-57 nice 0"
        if int(current[-1]) < nice:
            group.write_text(str(nice))
            done.append(f"session's autogroup ({current[0]}) nice {current[-1]} -> {nice}")
    except (OSError, ValueError, IndexError):
        pass  # no autogroup scheduling here (or not ours to change): the nice value is all there is
    return done
