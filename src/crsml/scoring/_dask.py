"""The same chunked scoring on a Dask cluster, partitioned by patient.

With no scheduler address a :class:`distributed.LocalCluster` (one single-threaded worker
process per core) is started and closed again; ``--scheduler tcp://HOST:8786`` uses an existing
cluster (start one with ``dask scheduler`` on one machine and ``dask worker tcp://HOST:8786`` on
each of the others; every worker needs crsml installed). The model is sent to every worker once.
Groups of patients are read on the client and sent out as tasks, at most two per worker at a
time, and results come back in input order, so the output equals the local engine's and the
client's memory stays bounded.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from crsml.errors import CrsmlError
from crsml.models import Model

#: seconds a scheduler has to answer before crsml says nothing listens there
CONNECT_TIMEOUT_S = 5.0


def check_scheduler(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse, in one line and before any work, a Dask scheduler address where nothing answers
    (a TCP connection to its host and port; ``tcp://HOST:8786``, the default port when none)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port or 8786
    except ValueError:
        host, port = None, None
    if not host:
        raise CrsmlError(f"--scheduler {address!r}: not a scheduler address (tcp://HOST:8786)")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError:
        raise CrsmlError(
            f"--scheduler {address}: no Dask scheduler answers there within {timeout:g} s "
            "(start one with `dask scheduler`, or leave --scheduler out for a local cluster)"
        ) from None


def dask_map(
    func: Callable[..., Any],
    model: Model,
    items: Iterable[Any],
    *args: Any,
    scheduler: str | None = None,
    first: Callable[..., Any] | None = None,
) -> Iterator[Any]:
    """``func(model, item, *args)`` for each item on the cluster, yielded in order. ``first``
    (default ``func``) handles the first item, which is awaited before the rest go out, so a
    check that refuses the input stops the run before any other work."""
    from distributed import Client, LocalCluster

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        )
    try:
        client = Client(cluster if cluster is not None else scheduler, timeout=f"{CONNECT_TIMEOUT_S:g}s")
    except OSError:  # the scheduler went away after check_scheduler, or was never asked
        if cluster is not None:
            cluster.close()
        raise CrsmlError(f"--scheduler {scheduler}: no Dask scheduler answers there") from None
    try:
        model = client.scatter(model, broadcast=True)
        window = 2 * max(1, len(client.scheduler_info()["workers"]))
        it = iter(items)
        head = next(it, None)
        if head is None:
            return
        yield client.submit(first or func, model, head, *args, pure=False).result()
        pending: deque = deque()
        for item in it:
            pending.append(client.submit(func, model, item, *args, pure=False))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
