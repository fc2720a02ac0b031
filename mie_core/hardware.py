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
