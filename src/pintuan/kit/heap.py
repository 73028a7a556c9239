"""The garbage collector in a process that runs for long (``pintuan serve``, ``pintuan worker``).

CPython's collector walks its youngest generation whenever 700 more container objects have been
made than freed, and every tenth walk the next generation too. A busy server holds thousands of
objects in the requests it is serving at any moment, so that count crossed 700 back and forth
all the time: under the join benchmark a serving process walked its young generations about
200 times a second, each walk finding the same requests' objects alive and moving them to an
older generation, whose walks cost more; 4.2 s of collections in a minute of load, about 7% of
the process's CPU. And a pass over the whole heap (the framework, the routes, the models: some
270,000 objects) took 160 ms during which no request moved; the feed froze the heap after its
first snapshot, but unfroze it and walked it whole again at every rebuild, every two minutes.

:func:`settle_heap` is called once, after everything is loaded and before the first request or
tick: the youngest generation waits for ten thousand objects more (requests in flight stay under
it; what a process keeps growing still reaches it), and what is loaded by then is frozen out of
every pass (CPython's permanent generation: never walked, still freed when nothing refers to it).
Under the same benchmark, collections then took 0.3 s in a minute.
"""

from __future__ import annotations

import gc

# More container objects made than freed before the youngest generation is walked (CPython's
# default: 700). The older generations keep their default ratios.
YOUNG_THRESHOLD = 10_000
OLDER_RATIO = 10


def settle_heap() -> None:
    """Before serving or working: the young generation's threshold raised, and everything
    loaded so far collected once (so no garbage is frozen with it) and frozen."""
    gc.set_threshold(YOUNG_THRESHOLD, OLDER_RATIO, OLDER_RATIO)
    gc.collect()
    gc.freeze()
