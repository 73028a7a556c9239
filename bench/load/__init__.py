"""Benchmark harness: throughput and latency of reads, joins and payment confirmations, set
against ``/healthz``, a bare reference implementation of the join and duplicate deliveries of
the same notifications.

Run it with ``make bench`` (options: ``.venv/bin/python -m bench.load --help`` from the repository's
root). Each scenario is driven with 64 keep-alive connections for 10 s, after a 2 s warm-up whose
numbers are thrown away. The load comes from ``wrk`` (2 threads) when it is on PATH, otherwise from
a small asyncio + httpx generator (``generators.py``); the output says which. The report goes to
stdout: first the issue's table (a row per scenario: path, Pintuan's req/s and p99, the bare
reference's in the same run beside the row divided by it, and the ratio, to the reference or else
to Pintuan's own ``/healthz``), as Markdown, then every run's figures. The same figures go as JSON
to ``var/bench/latest.json`` (``--json`` for another path): ``table`` holds the issue's table
(``path``, ``pintuan`` and ``reference`` with ``rps``, ``p99_ms``, ``errors`` and ``non_2xx``,
``ratio`` and ``ratio_of``), ``scenarios`` every run, ``targets`` each goal met or missed and
``ok`` whether the run had no failed request. ``--suite reads``, ``--suite joins``
or ``--suite payments`` runs one part (default ``all``: about five and a half minutes without
PostgreSQL on a busy 2-core machine, more with it).

What runs, all on loopback, each server a process of its own started here
--------------------------------------------------------------------------
* **Pintuan on SQLite** (``pintuan serve --no-worker``, one process), three times: one on a
  fresh database holding the demo catalogue for ``/healthz`` and the reads (``GET /v1/deals``,
  ``GET /v1/deals/{id}``, the deal page and the page of a team a demo shopper starts, each sent
  by a visitor: no cookie, no token, as a shared link is first opened; each must reach half of
  ``/healthz`` with no failed request), one on a database
  seeded for the joins and one seeded for the payments, so that no suite changes what another
  measures.
* **The bare reference** (``bench/reference_app.py``, suite ``joins``): a minimal FastAPI app on
  the stdlib ``sqlite3`` driver doing only the four statements of DESIGN.md's join; no
  idempotency, outbox, token lookup or logging. Served with uvicorn, uvloop and httptools (uvloop
  is the faster loop for a bare app; Pintuan serves on the standard library's by default).
* **Pintuan on PostgreSQL** (suites ``joins`` and ``payments``, only when
  ``PINTUAN_BENCH_POSTGRES_URL`` is set, e.g.
  ``postgresql+psycopg://pintuan:pintuan@127.0.0.1:5432/pintuan_bench``; that database is
  emptied and migrated first, then seeded for both): ``--postgres-servers`` processes
  (default 2) for the payments, since each process runs its event loop on one core, each with
  Pintuan's default pool of database connections (``--postgres-pool-size`` sets
  ``PINTUAN_DB_POOL_SIZE``). wrk gives each server its own thread and an equal share of the
  connections, as a balancer would share them out. The joins run on 2 and on 4 processes
  (``POSTGRES_JOIN_SERVERS``: four are started, each scenario loads the first two or all four).
* **The bare psycopg reference** (``bench/reference_pg.py``, suite ``joins`` with PostgreSQL):
  FastAPI with an asynchronous psycopg 3 pool of the same size, doing the token lookup and the
  four statements of the join, one round trip each, in a schema of its own (``bare_reference``)
  of the same database; on 2 and 4 processes beside Pintuan's, its ``vs ref`` the issue's
  target of 1.0x. Its ``pg cpu us/req`` counts the same database's backends.

The servers run without the in-process worker (``--worker`` runs it), so the outbox the joins
fill is not dispatched during the run: the figures are the request path alone. (With it, the
worker's polling may also confirm seeded payments whose checkout is older than its first poll.)

The joins
---------
Seeding (``bench/seed_joins.py``, through Pintuan's services) gives each Pintuan database 20,000
shoppers with API tokens, 1,000 team leaders, 100 live "spread" deals and one live "hot" deal,
all with stock and per-user limits that never refuse a join. Before any clock, every join
scenario has the leaders start 1,000 fresh teams of size 100 through ``POST /v1/deals/{id}/teams``
(so no scenario runs into another's seats). Request n is then ``POST /v1/teams/{team}/seats`` by
shopper ``s = n mod 20,000`` to team ``(s + n div 20,000) mod 1,000``: every request is a
different (team, shopper) pair, consecutive requests go to different teams, and a team fills
(99 places) only after about 99,000 requests, far beyond a run.

* **(a) spread**: the 1,000 teams belong to 100 deals round-robin, so the joins in flight touch
  different team rows and (mostly) different deal rows.
* **(b) one hot deal**: the 1,000 teams all belong to one deal, so every join updates the same
  deal row (stock). On SQLite, which has one writer anyway, (a) and (b) should cost the same; on
  PostgreSQL (b) shows what waiting for that one row lock costs.

Each join carries an ``Idempotency-Key`` (unique per request), as the API asks clients to send
with every POST; ``join (a), no Idempotency-Key`` measures the same join without it (on SQLite,
and on PostgreSQL with two processes). The
reference is sent byte for byte the same requests (it ignores the key) against its own tables of
the same shape, and ``vs ref`` / ``p99 vs ref`` divide Pintuan's figures by the reference's in
the same run.

The payments
------------
What a payment provider's confirmation costs, through the path every provider's notification
takes: ``POST /v1/webhooks/sandbox`` verifies the sandbox's signature, stores the event once in
the inbox, marks the payment authorised, writes its ledger journal and marks the seat paid, the
last seat of a team also succeeding the team and scheduling its captures.

Seeding (``bench/seed_payments.py``: seats through the engine's join, one payment through the
payment services and the sandbox, the others copied from it in bulk) gives the database held
seats in teams of ``PAYMENT_TEAM_SIZE`` (3) over ``PAYMENT_DEALS`` (100) live deals, each seat
with an open sandbox payment whose checkout the shopper has completed at the sandbox, and lists
each payment's ``payment.authorized`` notification, team by team. There are as many as wrk's
pools can take (``PAYMENT_RATE_CEILING`` per second of warm-up and of run, 3,000, above what a
server can reach here) plus ``PREDELIVERED`` (900): 36,900 with the default durations. Seats
are held for hours, not the product's ten minutes, so that none has expired by the time its
notification comes.

The notifications are signed right before the run that sends them (wrk's pool is rendered just
before each of its runs; the httpx generator signs each request as it sends it), so the sandbox's
5-minute tolerance of the signature's timestamp is never at stake: ``--duration`` and
``--warmup`` are refused above ``LONGEST_SIGNED_RUN_SECONDS`` (240) with this suite. The body
of each notification is fixed at seeding; only the signature header is made anew, as a provider
does when it retries.

* **duplicate delivery**: before the clocks, the first 900 notifications are delivered once
  through the API (each must be taken as new); the scenario then sends them again, round-robin.
  A duplicate is refused by the inbox's unique key after the same signature check and parsing,
  so it is the webhook path with nothing applied: the confirmations' baseline on the same
  server, measured right before them. ``/healthz`` says what the framework alone allows; the
  duplicate says what taking a notification in costs, and so what applying it adds.
* **payment authorized**: every request is the first delivery of a different payment's
  notification, in seeding order (the threads take alternate entries, so teams fill and succeed
  as the run goes).

After the last run the payments servers are stopped (finishing the requests in flight) and
``bench/seed_payments.py verify`` checks the database: every notification in the inbox was
seeded and is there once; every delivered payment is authorised with exactly one authorisation
journal and one ``payment.authorized`` event, its seat paid; every other payment is untouched
with its seat still held; a team succeeded exactly when all its seats' notifications came, with
all its seats confirmed and its captures scheduled; ``pintuan.audit.ledger.check_ledger`` finds
no breach. The harness also checks that the notifications taken as new during the runs are at
least the confirmations wrk counted (none repeated) and at most that plus what can have been in
flight when wrk stopped (64 per run). The output prints the confirmations/s, p50/p99, the ratios
to ``/healthz`` and to the duplicate delivery, and the check; any problem makes the exit status 1.

How to read the numbers
-----------------------
* ``req/s`` counts completed responses per second. ``p50``/``p99`` are per-request latencies in
  milliseconds as the load generator saw them, queueing included. The load is a closed loop (each
  connection sends its next request once the previous one is answered), so latency is roughly
  connections / throughput: the columns tell one story, not two.
* Absolute figures are not comparable between runs or machines. On a shared 2-core machine they
  swing by ±40 % from one run to the next, and the load generator competes with the server for
  the same cores.
* ``vs healthz`` is the scenario's throughput divided by that of Pintuan's ``GET /healthz`` in
  the same run, i.e. the share of the framework-only ceiling the endpoint keeps once its own work
  is added. ``/healthz`` is measured first and again last, and the ratios divide by the mean of
  the two. If the two differ by more than 15 % the machine's load changed during the run, the
  output says so, and the ratios deserve a second run. ``vs ref`` is the same idea for the joins,
  against the reference measured right after Pintuan.
* ``non-2xx`` (responses with any other status, broken down by status) and ``errors`` (failed
  connects, reads or writes and timeouts, i.e. no response at all) must both be 0: a benchmark of
  failing requests measures the failure path. Any of them makes the exit status 1. A 409 in a
  join means a repeated (team, shopper) pair or a full team; the output says whether wrk ran
  through its pool of pre-generated requests, the one way the harness can repeat a request.
* ``cpu us/req`` is the CPU time (user + system) the server processes used during the run per
  completed request, read from ``/proc``; ``cpu vs ref`` divides it by the reference's. Unlike
  req/s it hardly changes when other work competes for the cores, so it is the steadier measure
  of what a join costs on a busy machine. ``pg cpu us/req`` is the same for the local PostgreSQL
  server's backends connected to the benchmark's database (not its shared background processes
  such as the WAL writer, nor other databases' backends).
* The output ends with the machine's load average before the measured runs: anything else
  running on the machine takes cores from the servers and from wrk alike, and shows there.
* With the httpx fallback the client, not the server, is usually the bottleneck: every ratio is
  pulled toward 1 and the absolute figures say more about httpx than about the API. Install
  ``wrk`` (Debian package ``wrk``) for numbers worth comparing.

Where things are: ``scenarios.py`` (what each scenario sends, its seeds and fixtures),
``generators.py`` (wrk and the httpx fallback), ``servers.py`` (building the databases, starting
the servers through ``pintuan.kit.serving``, their CPU time), ``report.py`` (the table, the
targets, the payments' check, the JSON) and ``cli.py`` (the arguments and the run itself).

Adding a scenario: append a :class:`Scenario` to ``scenarios.SCENARIOS``; its row appears in the
table and the JSON by itself. A scenario divided by a reference names the reference's run with
``compare_with`` (its name) and ``compare_target`` (its target, ``reference`` by default), and
that run is then shown beside it rather than on a row of its own; ``goal`` checks it against one
of the issue's targets (``vs-reference``, ``postgres-rps``, ``vs-healthz``, ``feed``: half of
/healthz and a p99 within 50 ms). Its ``prepare`` function runs once the servers are up and
before any clock starts; it gets a :class:`Fixture`
(an HTTP client, ``pintuan`` subcommands such as ``tokens create EMAIL``, the join seed) and
returns a
:class:`Load`: one fixed :class:`Request`, or a factory ``n -> Request`` for per-request bodies and
bearer tokens, and optionally a hand-written wrk Lua script.
"""
