"""Speed and behaviour measurements, each a script run on its own (see README.md, Benchmarks)."""
