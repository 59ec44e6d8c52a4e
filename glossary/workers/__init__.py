"""Snippet runs on Channels workers (SNIPPET_RUN_BACKEND = "glossary.workers.client.WorkerRuns").

Daphne processes hand each run to `manage.py runworker snippet-runs` processes over the
Redis channel layer, so any number of each can share one Redis:

    reader's socket ── SnippetRunConsumer ── WorkerRuns ──────► "snippet-runs"
                                                   ▲                   │ (one worker takes it)
                                     run.events    │                   ▼
                                     run.stopped   └──────────── RunWorkerConsumer
                                                                 drives runner.run_queued()

- run.request {run, code, runtime, language, client, reply_to, sent}: sent to
  "snippet-runs"; reply_to is a channel of the run's own, so the relay needs nothing from
  the consumer's dispatch loop; client is whose run it is, for the client's fair share of
  the worker's slots.
- run.events {run, worker, seq, events}: the runner's events in batches (see Outbox), at
  least one a second as a heartbeat. `worker` is the worker's own channel; `seq` lets the
  reader notice a missing batch.
- run.cancel {run, reply_to}: sent to that worker; it kills the run's processes and
  answers run.stopped on the run's reply channel.

A worker takes a request off "snippet-runs" only while one of its run slots is free, so
runs wait in Redis, oldest first, until any worker has room, never behind a busy worker's
runs while another is idle; the reader gets queued events with its place meanwhile.
Workers say in Redis that they are listening: a reader is told within PICKUP_SECONDS
that no worker is there, but waits up to QUEUE_SECONDS for busy ones. A reader who stops
waiting withdraws the run, so no worker takes it later.

A worker takes a run by claiming it in Redis, and renews the claim while the run goes on.
When the reader has heard nothing for a while, the claim tells a worker that is gone (or
never came) from a Daphne process that is only slow to read its messages under load.
The reader never gets silence. When no worker takes the run, or Redis is full or gone
before it starts, an error event says nothing ran; when a started run's worker stops
answering (or Redis goes), an exit event with reason "lost" and a message ends it.

Split by process: client.py runs in Daphne, worker.py in `manage.py runworker snippet-runs`
(its channel route is in glossary/routing.py), protocol.py is what both must agree on.
"""
