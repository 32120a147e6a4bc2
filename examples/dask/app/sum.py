"""Sum 1..1000 in chunks on every Dask worker of the pool."""
import json
import os
import socket

from distributed import Client

client = Client(os.environ["DASK_SCHEDULER_ADDRESS"])
workers = list(client.scheduler_info()["workers"])


def chunk_sum(lo, hi):
    return sum(range(lo, hi)), socket.gethostname()


# One chunk pinned to each worker, so that every node takes part.
futures = [
    client.submit(chunk_sum, 1 + i * 1000 // len(workers), 1 + (i + 1) * 1000 // len(workers), workers=[w], pure=False)
    for i, w in enumerate(workers)
]
parts = client.gather(futures)
total = sum(s for s, _ in parts)
assert total == 500500, total
print(json.dumps({"sum": total, "workers": len(workers), "hosts": sorted({h for _, h in parts})}))
client.close()
