"""A discrete-event simulation of one engine replica's scheduler, for checking the analytic model.

The scheduler follows vLLM's (v1) and TensorRT-LLM's in-flight batching: every iteration first gives
each decoding sequence its next token and continues the prompts already admitted (first come, first
served), then admits waiting requests in arrival order while the batch cap (max_num_seqs), the token
budget (max_num_batched_tokens) and the KV cache allow, giving each a chunk of its prompt within the
budget (chunked prefill). A prompt's first token comes at the end of the iteration that computes its
last chunk; each later iteration adds one token.

KV cache, in tokens: under the `max` reservation policy a request reserves its prompt plus its whole
output at admission (TensorRT-LLM's guaranteed-no-evict) and is never preempted; under `mean` pages
are taken as tokens are computed (vLLM) and, when the cache runs out, the most recently started
sequence is preempted, its KV dropped and its prompt plus the tokens it had generated recomputed
later (vLLM's recompute preemption).

Iteration times come from a step table (cost/steptable.py) interpolated in plain Python. Stretches of
pure decode between events (an arrival that can be admitted, a completion, the KV cache filling) are
advanced in one step, so the cost is a few events per request, not one per token.

Modes: `both` (aggregated serving), `prefill` (a disaggregated prefill replica: a request leaves at its
first token, its KV shipped out) and `decode` (a disaggregated decode replica: requests arrive with
their prompt's KV already built and their first token already sent).
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from collections import deque

import numpy as np

from ..cost.steptable import StepTable

MODES = ("both", "prefill", "decode")


class Cycle:
    """Multilinear interpolation of one placement's step table in plain Python (scalars are far faster
    through lists than through numpy). The table has axes b, c, p and l (see steptable.step_table)."""

    def __init__(self, table: StepTable) -> None:
        self.b = [float(v) for v in table.b]
        self.c = [float(v) for v in table.c]
        self.p = [float(v) for v in table.p]
        self.l = [float(v) for v in table.l] if table.l is not None else [0.0]
        t = table.t[0]
        if t.ndim == 3:
            t = t[..., None]
        self.t = t.tolist()
        self.dec = t[:, :, 0, 0].tolist()

    @staticmethod
    def _cell(grid: list, x: float) -> tuple[int, int, float]:
        n = len(grid)
        if n == 1 or x <= grid[0]:
            return 0, 0, 0.0
        if x >= grid[-1]:
            return n - 1, n - 1, 0.0
        j = bisect_right(grid, x) - 1
        return j, j + 1, (x - grid[j]) / (grid[j + 1] - grid[j])

    def decode(self, b: float, c: float) -> float:
        i, i1, wb = self._cell(self.b, b)
        j, j1, wc = self._cell(self.c, c)
        d = self.dec
        lo = d[i][j] * (1 - wc) + d[i][j1] * wc
        hi = d[i1][j] * (1 - wc) + d[i1][j1] * wc
        return lo * (1 - wb) + hi * wb

    def __call__(self, b: float, c: float, p: float, span: float = 0.0) -> float:
        """Cycle time with b decoding sequences at mean context c and p prompt tokens whose attention
        spans `span` tokens on average (2 x query-key pairs / p)."""
        if p <= 0:
            return self.decode(b, c)
        i, i1, wb = self._cell(self.b, b)
        j, j1, wc = self._cell(self.c, c)
        k, k1, wp = self._cell(self.p, p)
        m, m1, wl = self._cell(self.l, span)
        t = self.t

        def at(ii: int, jj: int) -> float:
            r0, r1 = t[ii][jj][k], t[ii][jj][k1]
            return (r0[m] * (1 - wl) + r0[m1] * wl) * (1 - wp) + (r1[m] * (1 - wl) + r1[m1] * wl) * wp

        return ((at(i, j) * (1 - wc) + at(i, j1) * wc) * (1 - wb)
                + (at(i1, j) * (1 - wc) + at(i1, j1) * wc) * wb)


def run_replica(arrival, inp, out, cycle: Cycle, *, max_seqs: int, budget: int, kv_tokens: float,
                kv_group_tokens: float | None = None, policy: str = "max", block: int = 1,
                mode: str = "both") -> tuple[np.ndarray, np.ndarray, dict]:
    """Simulate one replica. Returns (first-token instant, last-token instant, counters) per request
    (NaN for a request that can never fit the KV cache). In `decode` mode the first-token instant is
    the arrival (the prefill replica sent the first token)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    arr = [float(v) for v in arrival]
    n = len(arr)
    prompt = [int(v) for v in inp]                  # tokens to compute before decoding (grows on preemption)
    rem = [max(int(o) - 1, 0) for o in out]         # decode iterations after the prompt's own token
    group = kv_group_tokens if kv_group_tokens is not None else kv_tokens
    reserve = policy == "max"                       # whole request reserved at admission, never preempted

    def page(x: int) -> int:
        return -(-x // block) * block

    first = [math.nan] * n
    finish = [math.nan] * n
    held = [0] * n                                  # KV tokens a request holds, decode growth excluded
    join_it = [0] * n
    join_ctx = [0] * n
    gen = [0] * n                                   # bumps on preemption: stale heap entries are skipped
    decoding = [False] * n
    waiting: deque = deque()
    prefill: deque = deque()                        # [rid, prompt tokens left] of admitted prompts, in order
    heap: list = []                                 # (iteration after which it is done, gen, rid)
    started: list = []                              # decoding rids in the order they joined (preemption victims)
    nxt = b = kv_used = running = it = 0
    ctx_sum = now = 0.0
    events = preemptions = dropped = 0

    def join_decode(rid: int) -> None:
        nonlocal b, ctx_sum
        join_it[rid] = it
        join_ctx[rid] = prompt[rid] + 1
        ctx_sum += prompt[rid] + 1
        b += 1
        decoding[rid] = True
        started.append(rid)
        heapq.heappush(heap, (it + rem[rid], gen[rid], rid))

    def release(rid: int, decoded: int) -> None:
        nonlocal kv_used, running
        kv_used -= held[rid] + (0 if reserve else decoded)
        held[rid] = 0
        running -= 1

    def leave_decode(rid: int) -> int:
        nonlocal b, ctx_sum
        done = it - join_it[rid]
        decoding[rid] = False
        b -= 1
        ctx_sum -= join_ctx[rid] + done
        release(rid, done)
        return done

    def complete() -> None:
        while heap and heap[0][0] <= it:
            _, g, rid = heapq.heappop(heap)
            if g == gen[rid] and decoding[rid]:
                leave_decode(rid)
                finish[rid] = now

    def preempt() -> bool:
        """Free the KV of the most recently started decoding sequence; it is recomputed later."""
        nonlocal preemptions
        while started:
            rid = started.pop()
            if not decoding[rid]:
                continue
            gen[rid] += 1
            done = leave_decode(rid)
            prompt[rid] = join_ctx[rid] + done      # prompt + every token generated so far
            rem[rid] -= done + 1                    # the recompute emits the next token itself
            waiting.appendleft(rid)
            preemptions += 1
            return True
        return False

    while True:
        events += 1
        while nxt < n and arr[nxt] <= now:
            waiting.append(nxt)
            nxt += 1
        if not reserve:
            while b and kv_used + b > kv_tokens and preempt():
                pass
        left = budget - b
        chunks = []
        p = 0
        pairs = 0.0                                 # query-key pairs of the cycle's prompt tokens
        for entry in prefill:                       # prompts already admitted continue first
            if left <= 0:
                break
            take = min(entry[1], left)
            chunks.append((entry, take))
            left -= take
            p += take
            pairs += take * (prompt[entry[0]] - entry[1] + take / 2.0)
            if not reserve:
                held[entry[0]] += take
                kv_used += take
        while waiting and running < max_seqs and (left > 0 or mode == "decode"):
            rid = waiting[0]
            whole = page(prompt[rid] + rem[rid] + 1)
            if whole > group:                       # can never fit one attention group's cache
                waiting.popleft()
                dropped += 1
                continue
            take = prompt[rid] if mode == "decode" else min(prompt[rid], left)
            need = whole if reserve else take
            if kv_used + need + (0 if reserve else b) > kv_tokens:
                break
            waiting.popleft()
            running += 1
            held[rid] = need
            kv_used += need
            if mode == "decode":
                if first[rid] != first[rid]:
                    first[rid] = arr[rid]
                join_decode(rid)
                continue
            entry = [rid, prompt[rid]]
            prefill.append(entry)
            chunks.append((entry, take))
            left -= take
            p += take
            pairs += take * take / 2.0
        if p == 0 and b == 0:
            if nxt < n:
                now = max(now, arr[nxt])
                continue
            break
        if p > 0:
            now += cycle(b, ctx_sum / b if b else 0.0, p, 2.0 * pairs / p)
            it += 1
            ctx_sum += b
            if not reserve:
                kv_used += b
            for entry, take in chunks:
                entry[1] -= take
            while prefill and prefill[0][1] <= 0:
                rid = prefill.popleft()[0]
                if first[rid] != first[rid]:
                    first[rid] = now
                if mode == "prefill" or rem[rid] == 0:
                    finish[rid] = now
                    release(rid, 0)
                    continue
                join_decode(rid)
            complete()
            continue
        # Pure decode: advance to the next event in one step.
        k = heap[0][0] - it
        if nxt < n and not waiting and running < max_seqs:
            k = min(k, max(1, math.ceil((arr[nxt] - now) / cycle.decode(b, ctx_sum / b))))
        if not reserve:
            k = min(k, max(1, int((kv_tokens - kv_used) // b)))
        k = max(k, 1)
        now += k * cycle.decode(b, (ctx_sum + b * (k - 1) / 2.0) / b)
        it += k
        ctx_sum += b * k
        if not reserve:
            kv_used += b * k
        complete()
    stats = {"events": events, "iterations": it, "preemptions": preemptions, "dropped": dropped}
    return np.array(first), np.array(finish), stats
