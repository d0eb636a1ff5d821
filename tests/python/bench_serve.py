"""`pz bench serve`: how fast `pz serve` answers, on loopback, with the clients people install.

1. DoGet throughput of a wide float64 table and of a photo-z table (PDFs as
   fixed_size_list<float32, 301>), pz against a minimal pyarrow.flight server holding the
   same table in memory (best of --repeat reads after one warm-up, each side), pz reading
   the Parquet file (how it serves a data release: every read decodes the file).
2. Round-trip latency of `SELECT 1` through ADBC's Flight SQL driver.
3. --clients concurrent ADBC clients (separate processes) for --seconds: cone searches,
   aggregates and photoz() on a mock sky; queries per kind, errors, the server's peak memory.
4. DoGet again, pz serving a copy held in its memory (`CREATE TABLE … AS`), as the
   reference holds its tables: the cost of the protocol path alone.

Every server is a process of its own. Human-readable lines go to standard output as they
are measured; the last line is one JSON object with every figure. Exits 1 if any query
failed or returned a wrong answer (the figures are printed first).

Run by `pz bench serve --python PY` (which passes --pz), or directly:
    python tests/python/bench_serve.py --pz target/release/pz --work /tmp/pz-bench-serve
"""

import argparse
import json
import multiprocessing
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

FULL = {"rows": 20_000_000, "pdf_rows": 1_000_000, "clients": 50, "seconds": 60.0,
        "repeat": 3, "objects": 100_000, "specz": 2_000, "latency_n": 1000,
        "latency_warmup": 50}
# Small enough for a debug build to finish all three parts in a minute or two.
QUICK = {"rows": 200_000, "pdf_rows": 20_000, "clients": 4, "seconds": 5.0,
         "repeat": 2, "objects": 20_000, "specz": 1_000, "latency_n": 200,
         "latency_warmup": 20}

WIDE_COLUMNS = 8
NZ = 301
SEED = 11
FEATURES = ", ".join([f"mag_{b}" for b in "ugrizy"] + [f"magerr_{b}" for b in "ugrizy"])
# The sky is centred on the cone so every cone search reads real partitions.
CONE = (62.0, -37.0, 0.5)
PHOTOZ_CONE_DEG = 0.05
GOAL_RATIO = 0.8
GOAL_GBPS = 1.0
GOAL_MEDIAN_MS = 2.0


def log(*parts):
    print(*parts, flush=True)


def quote(p):
    return str(p).replace("'", "''")


def peak_memory_bytes(pid):
    """VmHWM of a live process, from /proc (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def mib(b):
    return None if b is None else b / 2**20


def percentile(sorted_values, q):
    """Nearest-rank percentile: an observed value, never an interpolation."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(round(q / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


# ------------------------------------------------------------------------ data


def write_wide(path, rows):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(SEED)
    schema = pa.schema([pa.field(f"c{i}", pa.float64(), nullable=False) for i in range(WIDE_COLUMNS)])
    chunk = 1_000_000
    tmp = path.with_suffix(".partial")
    with pq.ParquetWriter(tmp, schema) as w:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            cols = [pa.array(rng.standard_normal(n)) for _ in range(WIDE_COLUMNS)]
            w.write_table(pa.Table.from_arrays(cols, schema=schema), row_group_size=chunk)
    # Renamed only when complete, so an interrupted run is never mistaken for a cached file.
    tmp.rename(path)


def photoz_schema():
    import pyarrow as pa

    grid = {"pz.zmin": "0", "pz.zmax": "3", "pz.nz": str(NZ)}
    return pa.schema([
        pa.field("objectId", pa.int64(), nullable=False),
        pa.field("z_mode", pa.float64()),
        pa.field("pdf", pa.list_(pa.float32(), NZ), metadata=grid),
    ])


def write_photoz(path, rows):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(SEED + 1)
    schema = photoz_schema()
    z = np.linspace(0.0, 3.0, NZ, dtype=np.float64)
    # 50k rows of PDFs are 60 MB: the file never has to fit in memory at once.
    chunk = 50_000
    tmp = path.with_suffix(".partial")
    with pq.ParquetWriter(tmp, schema) as w:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            mode = rng.uniform(0.02, 2.8, n)
            sigma = 0.03 * (1.0 + mode)
            pdf = np.exp(-0.5 * ((z[None, :] - mode[:, None]) / sigma[:, None]) ** 2)
            pdf /= pdf.sum(axis=1, keepdims=True) * (z[1] - z[0])
            pdf = pa.FixedSizeListArray.from_arrays(pa.array(pdf.astype(np.float32).ravel()), NZ)
            ids = pa.array(np.arange(start, start + n, dtype=np.int64))
            t = pa.Table.from_arrays([ids, pa.array(mode), pdf], schema=schema)
            w.write_table(t, row_group_size=chunk * 4)
    tmp.rename(path)


def ensure_file(path, writer, rows, what):
    """Generated once per size: the 20M-row table takes a while and is the same every run."""
    if path.exists():
        log(f"  {what}: reusing {path} ({path.stat().st_size / 1e6:,.0f} MB)")
        return
    t = time.perf_counter()
    writer(path, rows)
    log(f"  {what}: wrote {path} ({path.stat().st_size / 1e6:,.0f} MB) in {time.perf_counter() - t:.1f} s")


def run_pz(pz, data, work, *args):
    r = subprocess.run([pz, "--data-dir", str(data), *args], cwd=work,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"pz {' '.join(args[:2])} failed:\n{r.stderr.strip()}")
    return r.stdout


def setup(a, work):
    import shutil

    log("setup")
    data = work / "data"
    # A fresh data directory: CREATE EXTERNAL TABLE and CREATE MODEL must not meet last
    # run's entries.
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(work / "sky", ignore_errors=True)
    wide = work / f"wide-{a.rows}x{WIDE_COLUMNS}-seed{SEED}.parquet"
    pdfs = work / f"photoz-{a.pdf_rows}x{NZ}-seed{SEED}.parquet"
    ensure_file(wide, write_wide, a.rows, "wide table")
    ensure_file(pdfs, write_photoz, a.pdf_rows, "photo-z table")
    t = time.perf_counter()
    ra, dec, _ = CONE
    run_pz(a.pz, data, work, "simulate", "--objects", str(a.objects), "--specz", str(a.specz),
           "--seed", "1", "--ra-center", str(ra), "--dec-center", str(dec), "--out", "sky")
    log(f"  mock sky: {a.objects:,} objects, {a.specz:,} reference redshifts around "
        f"({ra}, {dec}) in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    run_pz(a.pz, data, work, "sql", "-c", f"""
        CREATE EXTERNAL TABLE wide STORED AS PARQUET LOCATION '{quote(wide.resolve())}';
        CREATE EXTERNAL TABLE photoz_bench STORED AS PARQUET LOCATION '{quote(pdfs.resolve())}';
        CREATE EXTERNAL TABLE objects STORED AS HATS LOCATION '{quote((work / "sky" / "objects").resolve())}';
        CREATE EXTERNAL TABLE specz STORED AS PARQUET LOCATION '{quote((work / "sky" / "specz.parquet").resolve())}';
        CREATE MODEL knn USING knn AS
          SELECT {FEATURES}, x.z AS redshift FROM crossmatch('specz', 'objects', 1.0, 1, true) x
          WHERE x.z_flag >= 3;
    """)
    log(f"  registered wide, photoz_bench, objects, specz; trained k-NN model 'knn' "
        f"in {time.perf_counter() - t:.1f} s")
    # An admin, to copy the tables into the server's memory (CREATE TABLE … AS).
    run_pz(a.pz, data, work, "user", "add", "bench-admin", "--admin")
    token = run_pz(a.pz, data, work, "token", "create", "bench-admin").split()[0]
    return data, {"wide": wide, "photoz_bench": pdfs}, token


# --------------------------------------------------------------------- servers


class PzServer:
    def __init__(self, pz, data, work, clients):
        self.log_path = work / "serve.log"
        self._log = open(self.log_path, "w")
        # Every client is `anonymous`: the per-user limit must not turn the load test into
        # a test of the limit (a client holds at most one query, plus its stream).
        self.proc = subprocess.Popen(
            [pz, "--data-dir", str(data), "serve", "--listen", "127.0.0.1:0",
             "--allow-anonymous", "--max-queries-per-user", str(2 * clients + 8)],
            cwd=work, stdout=subprocess.PIPE, stderr=self._log, text=True)
        first = self.proc.stdout.readline()
        if not first.startswith("pz serve: listening on grpc"):
            self.stop()
            raise SystemExit(f"pz serve did not start: {first!r}\n{self.log_tail()}")
        self.uri = first.strip().split(" on ", 1)[1]
        threading.Thread(target=lambda: self.proc.stdout.read(), daemon=True).start()

    def log_tail(self, n=20):
        try:
            return "".join(open(self.log_path).readlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


class RefServer:
    """This script again, as `--reference-server`: a process of its own, like pz's."""

    def __init__(self, files):
        args = [sys.executable, os.path.abspath(__file__), "--reference-server"]
        for name, path in files.items():
            args += ["--ref-table", f"{name}={path}"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline()
        if not first.startswith("ref: listening on grpc"):
            self.stop()
            raise SystemExit(f"the pyarrow reference server did not start: {first!r}")
        self.uri = first.strip().split(" on ", 1)[1]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def reference_server(specs):
    import pyarrow.flight as flight
    import pyarrow.parquet as pq

    tables = {}
    for spec in specs:
        name, path = spec.split("=", 1)
        tables[f"SELECT * FROM {name}".encode()] = pq.read_table(path)

    class Ref(flight.FlightServerBase):
        def do_get(self, context, ticket):
            table = tables.get(ticket.ticket)
            if table is None:
                raise flight.FlightServerError(f"no table for ticket {ticket.ticket!r}")
            return flight.RecordBatchStream(table)

    server = Ref("grpc://127.0.0.1:0")
    print(f"ref: listening on grpc://127.0.0.1:{server.port}", flush=True)
    server.serve()


# ---------------------------------------------------------------- 1. DoGet


def read_stream(uri, sql):
    """One DoGet, batch by batch: nothing but the current batch is held."""
    import pyarrow.flight as flight

    client = flight.FlightClient(uri)
    try:
        t = time.perf_counter()
        reader = client.do_get(flight.Ticket(sql.encode()))
        rows = nbytes = batches = 0
        first = None
        for chunk in reader:
            if first is None:
                first = time.perf_counter() - t
            rows += chunk.data.num_rows
            nbytes += chunk.data.nbytes
            batches += 1
        return {"s": time.perf_counter() - t, "rows": rows, "bytes": nbytes,
                "batches": batches, "first_batch_s": first}
    finally:
        client.close()


def copy_into_memory(uri, token, tables):
    """As admin: `<table>_memory`, a copy of each table held in pz's memory."""
    import adbc_driver_flightsql.dbapi as flight_sql

    kwargs = {"adbc.flight.sql.authorization_header": f"Bearer {token}"}
    with flight_sql.connect(uri, db_kwargs=kwargs, autocommit=True) as conn, \
            conn.cursor() as cur:
        for table in tables:
            t = time.perf_counter()
            cur.execute(f"CREATE TABLE {table}_memory AS SELECT * FROM {table}")
            log(f"   copied {table} into pz's memory as {table}_memory in "
                f"{time.perf_counter() - t:.1f} s")


# What each side reads: pz from Parquet or from its memory, the reference from its memory.
FROM_PARQUET = (("pz", "{t}"), ("pyarrow", "{t}"))
FROM_MEMORY = (("pz_memory", "{t}_memory"), ("pyarrow", "{t}"))


def doget(a, pz_uri, ref_uri, expected_rows, sides_read, heading):
    log(f"\n{heading} (best of {a.repeat} after one warm-up; goals: "
        f"pz/pyarrow ≥ {GOAL_RATIO}, pz > {GOAL_GBPS} GB/s)")
    out, failures = {}, []
    for table, rows in expected_rows.items():
        sides = [(side, ref_uri if side == "pyarrow" else pz_uri,
                  f"SELECT * FROM {name.format(t=table)}") for side, name in sides_read]
        runs = {side: [] for side, _, _ in sides}
        for _, uri, sql in sides:
            read_stream(uri, sql)
        # Interleaved, so a slow moment of the machine falls on every side alike.
        for _ in range(a.repeat):
            for side, uri, sql in sides:
                runs[side].append(read_stream(uri, sql))
        res = {}
        for side, uri, sql in sides:
            rs = runs[side]
            best = min(rs, key=lambda r: r["s"])
            best = dict(best, gbps=best["bytes"] / best["s"] / 1e9, all_s=[r["s"] for r in rs])
            if any(r["rows"] != rows for r in rs):
                failures.append(f"{side} {sql}: {[r['rows'] for r in rs]} rows, expected {rows}")
            res[side] = best
        pz_side = sides[0][0]
        for side in (pz_side,):
            ratio = res[side]["gbps"] / res["pyarrow"]["gbps"]
            res[side].update(ratio=ratio, goal_ratio_met=ratio >= GOAL_RATIO,
                             goal_gbps_met=res[side]["gbps"] > GOAL_GBPS)
        out[table] = res
        for side, _, _ in sides:
            r = res[side]
            log(f"   {table:<13}{side:<10}{r['s']:8.3f} s {r['rows']:>12,} rows "
                f"{r['bytes'] / 1e6:>10,.1f} MB {r['gbps']:7.3f} GB/s "
                f"({r['batches']:,} batches, first after {r['first_batch_s'] or 0:.4f} s)")
        for side in (pz_side,):
            r = res[side]
            log(f"   {table:<13}ratio pz/pyarrow {r['ratio']:.3f} "
                f"(goal ≥ {GOAL_RATIO}: {'met' if r['goal_ratio_met'] else 'NOT met'}); "
                f"{r['gbps']:.3f} GB/s (goal > {GOAL_GBPS}: "
                f"{'met' if r['goal_gbps_met'] else 'NOT met'})")
    return out, failures


# ------------------------------------------------------------- 2. latency


def latency(a, uri):
    import adbc_driver_flightsql.dbapi as flight_sql

    log(f"\n2. SELECT 1 through ADBC: {a.latency_n} round trips after {a.latency_warmup} "
        f"warm-up (goal: median < {GOAL_MEDIAN_MS} ms)")
    times, wrong = [], 0
    # pz has no transactions: without autocommit=True the DBAPI warns on every connect.
    with flight_sql.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        for i in range(a.latency_warmup + a.latency_n):
            t = time.perf_counter()
            cur.execute("SELECT 1")
            table = cur.fetch_arrow_table()
            dt = time.perf_counter() - t
            if table.num_rows != 1 or table.column(0)[0].as_py() != 1:
                wrong += 1
            if i >= a.latency_warmup:
                times.append(dt * 1e3)
    times.sort()
    res = {"n": len(times), "median_ms": percentile(times, 50), "p99_ms": percentile(times, 99),
           "min_ms": times[0], "max_ms": times[-1], "wrong_answers": wrong}
    res["goal_median_met"] = res["median_ms"] < GOAL_MEDIAN_MS
    log(f"   median {res['median_ms']:.3f} ms, p99 {res['p99_ms']:.3f} ms "
        f"(min {res['min_ms']:.3f}, max {res['max_ms']:.3f}); goal "
        f"{'met' if res['goal_median_met'] else 'NOT met'}")
    failures = [f"SELECT 1 answered wrongly {wrong} times"] if wrong else []
    return res, failures


# --------------------------------------------------------- 3. concurrency


def mix_queries():
    ra, dec, r = CONE
    return {
        "cone": f"SELECT count(*) FROM objects WHERE cone(ra, dec, {ra}, {dec}, {r})",
        "aggregate": "SELECT count(*), avg(mag_i) FROM objects",
        # A small cone keeps one photoz() call to a few thousand objects, so it mixes with
        # the others instead of dominating the run.
        "photoz": f"SELECT count(*), avg(photoz('knn', {FEATURES}).z_mode) FROM objects "
                  f"WHERE cone(ra, dec, {ra}, {dec}, {PHOTOZ_CONE_DEG})",
    }


def answer(table):
    return tuple(table.column(i)[0].as_py() for i in range(table.num_columns))


def same_answer(got, want):
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if isinstance(w, float) and isinstance(g, float):
            # Partial aggregates may meet in another order under load.
            if abs(g - w) > 1e-9 * max(1.0, abs(w)):
                return False
        elif g != w:
            return False
    return True


def client_worker(index, uri, queries, expected, seconds, ready, go, results):
    """One client process: one connection, the kinds in turn, until the time is up."""
    import adbc_driver_flightsql.dbapi as flight_sql

    kinds = list(queries)
    counts = {k: 0 for k in kinds}
    lat = {k: [] for k in kinds}
    errors = []
    n_errors = 0
    try:
        conn = flight_sql.connect(uri, autocommit=True)
        cur = conn.cursor()
    except Exception as e:  # noqa: BLE001 -- reported, the run goes on without this client
        ready.put(index)
        results.put({"index": index, "counts": counts, "lat": lat, "n_errors": 1,
                     "errors": [f"client {index} connect: {e}"]})
        return
    ready.put(index)
    go.wait()
    end = time.monotonic() + seconds
    i = index
    while time.monotonic() < end:
        kind = kinds[i % len(kinds)]
        i += 1
        t = time.perf_counter()
        try:
            cur.execute(queries[kind])
            got = answer(cur.fetch_arrow_table())
            dt = time.perf_counter() - t
            if not same_answer(got, expected[kind]):
                raise AssertionError(f"answer {got}, expected {expected[kind]}")
            counts[kind] += 1
            lat[kind].append(dt * 1e3)
        except Exception as e:  # noqa: BLE001 -- every failure is counted and reported
            n_errors += 1
            if len(errors) < 5:
                errors.append(f"client {index} {kind}: {type(e).__name__}: {str(e)[:300]}")
            try:
                cur.close()
            except Exception:  # noqa: BLE001
                pass
            cur = conn.cursor()
    try:
        cur.close()
        conn.close()
    except Exception:  # noqa: BLE001
        pass
    results.put({"index": index, "counts": counts, "lat": lat, "n_errors": n_errors,
                 "errors": errors})


def collect(procs, results, deadline):
    """Every client's result; a client that died without one is an error, not a hang."""
    import queue

    got = []
    while len(got) < len(procs):
        try:
            got.append(results.get(timeout=1.0))
            continue
        except queue.Empty:
            pass
        seen = {r["index"] for r in got}
        missing = [i for i in range(len(procs)) if i not in seen]
        if all(procs[i].exitcode is not None for i in missing) or time.monotonic() > deadline:
            # A client that exited just now may have left its result in the pipe.
            try:
                got.append(results.get(timeout=2.0))
                continue
            except queue.Empty:
                pass
            for i in missing:
                got.append({"index": i, "counts": {}, "lat": {}, "n_errors": 1,
                            "errors": [f"client {i} gave no result (exit {procs[i].exitcode})"]})
    return got


def wait_ready(procs, ready, deadline):
    """Every client connected; one that died on the way ends the run now, not at the deadline."""
    import queue

    seen = set()
    while len(seen) < len(procs):
        try:
            seen.add(ready.get(timeout=1.0))
            continue
        except queue.Empty:
            pass
        dead = [i for i, p in enumerate(procs) if i not in seen and p.exitcode is not None]
        if dead or time.monotonic() > deadline:
            for p in procs:
                p.terminate()
            why = f"exited {procs[dead[0]].exitcode}" if dead else "not ready in time"
            raise SystemExit(f"client {dead[0] if dead else '?'} {why} before the load began")


def concurrency(a, uri):
    import adbc_driver_flightsql.dbapi as flight_sql

    queries = mix_queries()
    log(f"\n3. {a.clients} concurrent ADBC clients (processes) for {a.seconds:g} s: "
        f"{', '.join(queries)} in turn")
    expected = {}
    with flight_sql.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        for kind, sql in queries.items():
            cur.execute(sql)
            expected[kind] = answer(cur.fetch_arrow_table())
            log(f"   {kind:<10}{sql}\n   {'':<10}→ {expected[kind]}")
    if expected["cone"][0] == 0 or expected["photoz"][0] == 0:
        raise SystemExit("the cone holds no object: the mock sky is not where the cone is")
    # spawn: a fresh interpreter per client, no state forked from this one (gRPC, the GIL).
    mp = multiprocessing.get_context("spawn")
    ready, results, go = mp.Queue(), mp.Queue(), mp.Event()
    # daemon: a client left waiting (another failed to start) must not outlive the run.
    procs = [mp.Process(target=client_worker, daemon=True,
                        args=(i, uri, queries, expected, a.seconds, ready, go, results))
             for i in range(a.clients)]
    for p in procs:
        p.start()
    wait_ready(procs, ready, deadline=time.monotonic() + 300)
    t = time.perf_counter()
    go.set()
    got = collect(procs, results, deadline=time.monotonic() + a.seconds + 600)
    wall = time.perf_counter() - t
    for p in procs:
        p.join(timeout=60)
    counts = {k: sum(r["counts"].get(k, 0) for r in got) for k in queries}
    n_errors = sum(r["n_errors"] for r in got)
    first_errors = [e for r in sorted(got, key=lambda r: r["index"]) for e in r["errors"]][:5]
    per_kind = {}
    for k in queries:
        lat = sorted(x for r in got for x in r["lat"].get(k, []))
        per_kind[k] = {"queries": counts[k], "per_s": counts[k] / wall,
                       "median_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99)}
    total = sum(counts.values())
    res = {"clients": a.clients, "seconds": a.seconds, "wall_s": wall, "queries": total,
           "per_s": total / wall, "kinds": per_kind, "errors": n_errors,
           "first_errors": first_errors, "queries_sql": queries}
    for k, v in per_kind.items():
        log(f"   {k:<10}{v['queries']:>9,} queries {v['per_s']:9.1f}/s  median "
            f"{v['median_ms'] or 0:8.2f} ms  p99 {v['p99_ms'] or 0:8.2f} ms")
    log(f"   {'all':<10}{total:>9,} queries {total / wall:9.1f}/s in {wall:.1f} s; "
        f"errors {n_errors}")
    for e in first_errors:
        log(f"   error: {e}")
    failures = [f"{n_errors} queries failed under load"] if n_errors else []
    return res, failures


# ------------------------------------------------------------------------ main


def resolve(a):
    sizes = QUICK if a.quick else FULL
    for k, v in sizes.items():
        if getattr(a, k, None) is None:
            setattr(a, k, v)
    return a


def main():
    sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pz", help="the pz binary")
    ap.add_argument("--work", default="pz-bench-serve",
                    help="working folder: generated Parquet (kept and reused), data dir, sky")
    ap.add_argument("--rows", type=int, help=f"rows of the wide table (default {FULL['rows']:,})")
    ap.add_argument("--pdf-rows", type=int,
                    help=f"rows of the photo-z table (default {FULL['pdf_rows']:,})")
    ap.add_argument("--clients", type=int, help=f"concurrent clients (default {FULL['clients']})")
    ap.add_argument("--seconds", type=float,
                    help=f"length of the concurrent run (default {FULL['seconds']:g})")
    ap.add_argument("--repeat", type=int, help=f"timed DoGet reads per side (default {FULL['repeat']})")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    ap.add_argument("--reference-server", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--ref-table", action="append", default=[], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.reference_server:
        return reference_server(a.ref_table)
    if not a.pz:
        ap.error("--pz is required")
    a = resolve(a)
    for k in ("rows", "pdf_rows", "clients", "repeat"):
        if getattr(a, k) < 1:
            ap.error(f"--{k.replace('_', '-')} must be at least 1")
    if a.seconds <= 0:
        ap.error("--seconds must be positive")
    a.pz = os.path.abspath(a.pz)
    work = pathlib.Path(a.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    import adbc_driver_flightsql
    import pyarrow

    log(f"pz bench serve: {a.rows:,} rows × {WIDE_COLUMNS} float64, {a.pdf_rows:,} photo-z rows "
        f"(pdf {NZ} × float32), {a.clients} clients × {a.seconds:g} s"
        f"{' (--quick)' if a.quick else ''}; pyarrow {pyarrow.__version__}, "
        f"adbc_driver_flightsql {adbc_driver_flightsql.__version__}; work {work}")
    data, files, admin_token = setup(a, work)
    failures = []
    server = ref = None
    report = {"tool": "pz bench serve", "quick": a.quick, "pz": a.pz,
              "pyarrow": pyarrow.__version__,
              "adbc_driver_flightsql": adbc_driver_flightsql.__version__,
              "rows": a.rows, "pdf_rows": a.pdf_rows, "objects": a.objects, "specz": a.specz,
              "goals": {"doget_ratio": GOAL_RATIO, "doget_gbps": GOAL_GBPS,
                        "select1_median_ms": GOAL_MEDIAN_MS}}
    try:
        server = PzServer(a.pz, data, work, a.clients)
        ref = RefServer(files)
        log(f"\npz serve on {server.uri} (pid {server.proc.pid}); pyarrow.flight on {ref.uri} "
            f"(pid {ref.proc.pid})")
        tables = {"wide": a.rows, "photoz_bench": a.pdf_rows}
        report["doget"], f = doget(a, server.uri, ref.uri, tables, FROM_PARQUET,
                                   "1. DoGet throughput, pz reading the Parquet files")
        failures += f
        report["server_peak_mib_after_doget"] = mib(peak_memory_bytes(server.proc.pid))
        report["reference_peak_mib"] = mib(peak_memory_bytes(ref.proc.pid))
        report["latency"], f = latency(a, server.uri)
        failures += f
        report["server_peak_mib_after_latency"] = mib(peak_memory_bytes(server.proc.pid))
        report["concurrency"], f = concurrency(a, server.uri)
        failures += f
        peak = peak_memory_bytes(server.proc.pid)
        report["server_peak_mib"] = mib(peak)
        # Last, so the copies do not count in the peaks above: the protocol path alone.
        log("\n4. pz serving copies held in its memory (CREATE TABLE … AS), as the "
            "reference holds its tables")
        copy_into_memory(server.uri, admin_token, tables)
        report["doget_from_memory"], f = doget(a, server.uri, ref.uri, tables, FROM_MEMORY,
                                               "   DoGet throughput, both from memory")
        failures += f
        log(f"\npz serve peak memory (VmHWM) through parts 1-3: {mib(peak):,.0f} MiB "
            f"({report['server_peak_mib_after_doget']:,.0f} MiB after DoGet); the pyarrow "
            f"server's, holding both tables: {report['reference_peak_mib']:,.0f} MiB")
    finally:
        if ref is not None:
            ref.stop()
        if server is not None:
            rc = server.stop()
            if rc != 0 and not failures:
                failures.append(f"pz serve exited {rc}:\n{server.log_tail()}")
    report["failures"] = failures
    report["ok"] = not failures
    for f in failures:
        log(f"FAILED: {f}")
    print(json.dumps(report), flush=True)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
