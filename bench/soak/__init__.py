"""The soak: mixed shopper traffic through nginx on the whole cluster of
``scripts/cluster-up.sh`` for half an hour, with throughput and latency per route, each
process's memory, the replica's lag and the invariants checked at the end; and the scaling
curve with 1, 2 and 4 API processes. Run by ``make soak``; see ``__main__`` for the options."""
