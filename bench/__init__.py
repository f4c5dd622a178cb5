"""facegate benchmarks: accuracy and speed of our pipeline and of peer systems.

- :mod:`bench.dataset` finds the labelled photos (``shared/faces``) and lists them.
- :mod:`bench.metrics` turns embeddings into verification, 10-fold and 1:N
  identification numbers (pure numpy).
- :mod:`bench.throughput` measures images/s, faces/s and latency under concurrent clients.
- :mod:`bench.peers` holds the peer systems we compare against, behind one small protocol.

``python -m bench`` (``make bench``) runs everything and writes ``bench/results/``.
"""
