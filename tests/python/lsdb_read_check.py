"""Opens a HATS catalog with LSDB and prints what it reads, as one JSON line.

Used by tests/tests/lsdb_roundtrip.rs to check that pz writes catalogs LSDB understands.
"""
import json
import sys

import hats
import lsdb
import numpy as np

path = sys.argv[1]
cat = lsdb.open_catalog(path)
df = cat.compute()
# hats' own spatial index function recomputes _healpix_29 from ra/dec.
from hats.pixel_math.spatial_index import compute_spatial_index  # noqa: E402

recomputed = compute_spatial_index(df["ra"].to_numpy(), df["dec"].to_numpy())
index = df.index.to_numpy() if df.index.name == "_healpix_29" else df["_healpix_29"].to_numpy()
columns = ([df.index.name] if df.index.name else []) + list(df.columns)
print(json.dumps({
    "rows": int(len(df)),
    "sum_object_id": int(df["objectId"].sum()),
    "sum_ra": float(df["ra"].sum()),
    "sum_mag_i": float(df["mag_i"].astype(np.float64).sum()),
    "partitions": len(cat.get_healpix_pixels()),
    "healpix_ok": bool(np.array_equal(np.asarray(recomputed, dtype=np.int64), np.asarray(index, dtype=np.int64))),
    "columns": columns,
    "hats_version": hats.__version__,
}))
