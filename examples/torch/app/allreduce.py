"""Sum rank + 1 over every rank, from torch.distributed's environment.

With PyTorch: init_process_group("gloo") and all_reduce. Without it: the
same rendezvous by hand, rank 0 listening at MASTER_ADDR:MASTER_PORT.
"""
import json
import os
import socket
import sys
import time

env = {k: os.environ[k] for k in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "NODE_RANK", "NNODES", "NPROC_PER_NODE", "RANK")}
rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
if world != int(env["NNODES"]) * int(env["NPROC_PER_NODE"]):
    sys.exit(f"WORLD_SIZE {world} is not NNODES x NPROC_PER_NODE")
if env["NODE_RANK"] != os.environ["SKYWARD_NODE"]:
    sys.exit("NODE_RANK is not this node's index")

try:
    import torch
    import torch.distributed as dist
except ImportError:
    torch = None

if torch is not None:
    dist.init_process_group("gloo")
    t = torch.tensor([rank + 1])
    dist.all_reduce(t)
    total, how = int(t.item()), "torch"
else:
    how = "tcp"
    if rank == 0:
        srv = socket.create_server(("", int(env["MASTER_PORT"])))
        peers, total = [], 1
        while len(peers) < world - 1:
            conn, _ = srv.accept()
            total += int(conn.recv(64).decode())
            peers.append(conn)
        for conn in peers:
            conn.sendall(str(total).encode())
            conn.close()
    else:
        deadline = time.time() + 120
        while True:
            try:
                conn = socket.create_connection((env["MASTER_ADDR"], int(env["MASTER_PORT"])), timeout=5)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        conn.sendall(str(rank + 1).encode())
        total = int(conn.recv(64).decode())

want = world * (world + 1) // 2
if total != want:
    sys.exit(f"rank {rank}: sum {total}, want {want}")
print(json.dumps({"rank": rank, "world_size": world, "sum": total, "via": how, "master": env["MASTER_ADDR"] + ":" + env["MASTER_PORT"]}))
