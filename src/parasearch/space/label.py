"""The one way a placement is written, in tables, JSON, plots and messages: `DP2 TP2 PP3 EP4 +attnDP`.

Data parallelism comes first (it counts copies of the replica the rest describes); TP1 is written
only when nothing else is (a single GPU), so pure data parallelism reads `DP8`.
"""

from __future__ import annotations


def placement_label(tp: int, pp: int = 1, ep: int = 1, dp: int = 1, attn_dp: bool = False) -> str:
    parts = [f"DP{dp}"] if dp > 1 else []
    if tp > 1:
        parts.append(f"TP{tp}")
    if pp > 1:
        parts.append(f"PP{pp}")
    if ep > 1:
        parts.append(f"EP{ep}")
    if attn_dp:
        parts.append("+attnDP")
    return " ".join(parts) or "TP1"
