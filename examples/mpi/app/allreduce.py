"""Sum every rank's rank + 1 with MPI's allreduce and check it on each."""
import json
import socket
import sys

from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
total = comm.allreduce(rank + 1, op=MPI.SUM)
want = size * (size + 1) // 2
if total != want:
    print(f"rank {rank}: allreduce gave {total}, want {want}", file=sys.stderr)
    sys.exit(1)
hosts = comm.gather(socket.gethostname(), root=0)
if rank == 0:
    print(json.dumps({"size": size, "sum": total, "hosts": sorted(set(hosts))}))
