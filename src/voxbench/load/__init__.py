"""Open-loop load generation against a speech endpoint, and what it measures.

The schedule of intended send times is computed first (:mod:`.schedule`); an asyncio loop sends
each request at its time and every request records its own timestamps (:mod:`.client`); the
figures are computed afterwards from those raw records (:mod:`.metrics`), so latency counts from
the *intended* send time and a late load generator shows up as schedule lag, never as a slow
server.
"""
