"""Defaults shared by every command (search, estimate, sweep) and by problem files, so that the same
question gets the same answer whichever way it is asked."""

from __future__ import annotations

# Sequences one replica may hold in flight: the largest batch cap the search tries (`deploy` sets the
# chosen one on the engine) and the cap of `sweep`. `estimate` of one placement uses what the engine
# runs without a flag instead: the engine profile's own default (vLLM's max_num_seqs on that GPU).
MAX_BATCH = 2048
# Batch caps the search tries when a problem gives no `search.max_batch`: powers of two up to MAX_BATCH.
MAX_BATCH_GRID = tuple(2 ** k for k in range(MAX_BATCH.bit_length()) if 2 ** k <= MAX_BATCH)
# KV-cache format when none is given.
KV_CACHE = "bf16"
