"""LSDB's side of `pz bench scan`: a full scan and a cone search of one HATS catalog.

Prints one JSON line. Run by `pz bench scan --lsdb-python PYTHON`.
"""
import argparse
import json
import resource
import time

T_PROCESS = time.time()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--catalog", required=True)
    ap.add_argument("--ra", type=float, required=True)
    ap.add_argument("--dec", type=float, required=True)
    ap.add_argument("--radius", type=float, required=True, help="degrees")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    t = time.time()
    import lsdb  # noqa: E402

    import_s = time.time() - t
    full, cone = [], []
    rows = cone_rows = 0
    for _ in range(max(1, a.repeat)):
        t = time.time()
        cat = lsdb.open_catalog(a.catalog)
        rows = len(cat.compute())
        full.append(time.time() - t)
        t = time.time()
        cat = lsdb.open_catalog(a.catalog)
        cone_rows = len(cat.cone_search(a.ra, a.dec, a.radius * 3600.0).compute())
        cone.append(time.time() - t)
    print(json.dumps({
        "tool": "lsdb",
        "version": lsdb.__version__,
        "rows": rows,
        "cone_rows": cone_rows,
        "import_s": import_s,
        "full_scan_first_s": full[0],
        "full_scan_best_s": min(full),
        "cone_first_s": cone[0],
        "cone_best_s": min(cone),
        "process_wall_s": time.time() - T_PROCESS,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }))


if __name__ == "__main__":
    main()
