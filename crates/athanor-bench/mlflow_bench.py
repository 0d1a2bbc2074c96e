"""The MLflow side of `cargo xtask bench`: the same workload as Athanor's, through MLflow's own API.

One run, N records of (key, value, step) logged with `MlflowClient.log_batch` (at most 1,000 metrics per call,
MLflow's limit) into a local SQLite tracking store. Prints one JSON line: {"records": N, "seconds": s}.
"""

import json
import sys
import tempfile
import time

from mlflow.entities import Metric
from mlflow.tracking import MlflowClient


def main() -> None:
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with tempfile.TemporaryDirectory() as folder:
        client = MlflowClient(tracking_uri=f"sqlite:///{folder}/mlflow.db")
        experiment = client.create_experiment("bench", artifact_location=f"{folder}/artifacts")
        run = client.create_run(experiment)
        now = int(time.time() * 1000)
        # Same shape as Athanor's workload: a key (level), a number, a step; text has no metric slot in MLflow.
        metrics = [Metric(key=f"line_{i % 4}", value=float(i), timestamp=now, step=i) for i in range(records)]
        started = time.perf_counter()
        for start in range(0, records, 1000):
            client.log_batch(run.info.run_id, metrics=metrics[start : start + 1000])
        seconds = time.perf_counter() - started
        client.set_terminated(run.info.run_id)
    print(json.dumps({"records": records, "seconds": seconds}))


if __name__ == "__main__":
    main()
