"""The benchmark workload as a Python command experiment: `lines` log lines through the Athanor client, the same
levels and text as the in-process Rust row, as fast as the client allows."""

import athanor

LEVELS = ("debug", "info", "info", "warn")

lines = int(athanor.config()["lines"])
log = athanor.log
for i in range(lines):
    log(f"step {i} loss={1.0 / (i + 1.0):.6f}", level=LEVELS[i % 4])
