"""Defaults shared by every command (search, estimate, sweep) and by problem files, so that the same
question gets the same answer whichever way it is asked."""

from __future__ import annotations

# Sequences one replica may hold in flight when nothing else says: the largest batch cap the search
# tries, the serving cap of `estimate` and the cap of `sweep`. (vLLM's own default max_num_seqs is
# lower; an engine profile's default will take over here.)
MAX_BATCH = 2048
# Batch caps the search tries when a problem gives no `search.max_batch`: powers of two up to MAX_BATCH.
MAX_BATCH_GRID = tuple(2 ** k for k in range(MAX_BATCH.bit_length()) if 2 ** k <= MAX_BATCH)
# KV-cache format when none is given.
KV_CACHE = "bf16"
