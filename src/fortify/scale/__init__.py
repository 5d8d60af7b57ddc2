"""Scale-out: the same evaluation, sweep and certification sharded over a Ray cluster, and training
over several processes with torch DDP.

``ft.evaluate(..., executor=ft.scale.Ray())`` shards the samples over Ray actors that each load the
model once; ``ft.scale.InProcess(shards=k)`` runs the same shards here, one after another, and gives
the same Result (``fortify.evaluation.sharded``). Ray is optional: ``pip install 'fortify[ray]'``.
"""

from fortify.scale.local import InProcess, load_once
from fortify.scale.ray_cluster import Ray

__all__ = ["InProcess", "Ray", "load_once"]
