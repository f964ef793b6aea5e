"""The same chunked scoring on a Dask cluster, partitioned by patient.

With no scheduler address a :class:`distributed.LocalCluster` (one single-threaded worker
process per core) is started and closed again; ``--scheduler tcp://HOST:8786`` uses an existing
cluster (start one with ``dask scheduler`` on one machine and ``dask worker tcp://HOST:8786`` on
each of the others; every worker needs crsml installed). The model is sent to every worker once;
chunks go out as tasks and come back in order, so the output equals the local engine's.
"""

from __future__ import annotations

import os

import pandas as pd

from crsml.cohort import Cohort
from crsml.models.bundle import ModelBundle
from crsml.scoring.score import score_chunk


def score_chunks_dask(bundle: ModelBundle, parts: list[Cohort], landmark_h: float, explain: int,
                      scheduler: str | None = None, progress: bool = False) -> list[pd.DataFrame]:
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=os.cpu_count() or 1, threads_per_worker=1, processes=True,
                               dashboard_address=None, host="127.0.0.1")
    client = Client(cluster if cluster is not None else scheduler)
    try:
        model = client.scatter(bundle, broadcast=True)
        futures = [client.submit(score_chunk, model, part, landmark_h, explain, pure=False) for part in parts]
        if progress and len(futures) > 1:
            from rich.progress import Progress

            with Progress(transient=True) as bar:
                task = bar.add_task(f"scoring on Dask ({len(futures)} chunks)", total=len(futures))
                for _ in as_completed(futures):
                    bar.advance(task)
        return client.gather(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
