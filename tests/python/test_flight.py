"""`pz serve` driven by the clients people install from PyPI: ADBC's Flight SQL driver
(through its DBAPI) and pyarrow.flight, with no pz-specific code.

Run by cli/tests/serve_clients.rs (PZ_BIN is the pz binary under test); the server is a
separate process on loopback over a mock sky made by `pz simulate`.
"""

import pathlib
import random

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import pyarrow as pa
import pyarrow.flight as flight
import pytest

import pz_serve
from pz_serve import pz, wait_for_line
OBJECTS = 20_000
BIG_ROWS = 5_000_000
FEATURES = ", ".join(
    [f"mag_{b}" for b in "ugrizy"] + [f"magerr_{b}" for b in "ugrizy"]
)


def pz_value(work, data, sql):
    """One value from `pz sql`, as text: what the server must also answer."""
    out = pz(work, data, "sql", "--format", "csv", "-c", sql)
    return out.strip().splitlines()[-1]


class Server(pz_serve.Server):
    def __init__(self, work, data):
        super().__init__(work, data, "--allow-anonymous")

    def adbc(self):
        return flight_sql.connect(self.uri)

    def flight(self):
        return flight.FlightClient(self.uri)

    def alive(self):
        with self.adbc() as conn, conn.cursor() as cur:
            cur.execute("SELECT 1 AS one")
            return cur.fetch_arrow_table().column("one").to_pylist() == [1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("serve")
    data = work / "data"
    pz(work, data, "simulate", "--objects", str(OBJECTS), "--specz", "2000", "--seed", "3", "--out", "sky")
    pz(
        work,
        data,
        "sql",
        "-c",
        f"""
        CREATE EXTERNAL TABLE objects STORED AS HATS LOCATION '{work}/sky/objects';
        CREATE EXTERNAL TABLE specz STORED AS PARQUET LOCATION '{work}/sky/specz.parquet';
        CREATE MODEL knn USING knn AS
          SELECT {FEATURES}, z AS redshift FROM crossmatch('specz', 'objects', 1.0, 1, true);
        CREATE VIEW bright AS SELECT "objectId", ra, dec, mag_i FROM objects WHERE mag_i < 23;
        COPY (SELECT value AS id, CAST(value AS DOUBLE) * 0.5 AS a, CAST(value % 97 AS DOUBLE) AS b,
                     sin(CAST(value AS DOUBLE)) AS c, CAST(value AS DOUBLE) AS d
              FROM generate_series(1, {BIG_ROWS}))
          TO '{work}/big.parquet';
        CREATE EXTERNAL TABLE big STORED AS PARQUET LOCATION '{work}/big.parquet';
        """,
    )
    s = Server(work, data)
    yield s
    s.stop()


# ---------------------------------------------------------------- ADBC (DBAPI)


def test_query_through_adbc_equals_pz_sql(server):
    sql = "SELECT count(*) AS n, round(sum(mag_i), 3) AS s FROM objects"
    with server.adbc() as conn, conn.cursor() as cur:
        cur.execute(sql)
        t = cur.fetch_arrow_table()
    assert t.num_rows == 1
    expect = pz_value(server.work, server.data, sql).split(",")
    assert t.column("n").to_pylist() == [int(expect[0])]
    assert t.column("n").to_pylist() == [OBJECTS]
    assert abs(t.column("s").to_pylist()[0] - float(expect[1])) < 1e-6


def test_parameters_bind_to_placeholders(server):
    with server.adbc() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM objects WHERE mag_i < $1", parameters=(23.0,))
        with_param = cur.fetch_arrow_table().column("n").to_pylist()[0]
        # The same statement again with another value reuses the prepared handle.
        cur.execute("SELECT count(*) AS n FROM objects WHERE mag_i < $1", parameters=(22.0,))
        fainter_cut = cur.fetch_arrow_table().column("n").to_pylist()[0]
        cur.execute("SELECT count(*) AS n FROM bright")
        view = cur.fetch_arrow_table().column("n").to_pylist()[0]
    assert with_param == view
    assert 0 < fainter_cut < with_param


def test_get_objects_lists_every_table_and_column_without_a_catalog(server):
    with server.adbc() as conn:
        objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
    tables = {}
    for cat in objects:
        for schema in cat["catalog_db_schemas"] or []:
            for t in schema["db_schema_tables"] or []:
                cols = [c["column_name"] for c in t["table_columns"] or []]
                tables[(cat["catalog_name"], schema["db_schema_name"], t["table_name"])] = (
                    t["table_type"],
                    cols,
                )
    assert tables[("datafusion", "public", "objects")][0] == "TABLE"
    assert {"objectId", "ra", "dec", "mag_i", "magerr_y"} <= set(
        tables[("datafusion", "public", "objects")][1]
    )
    assert tables[("datafusion", "public", "bright")] == ("VIEW", ["objectId", "ra", "dec", "mag_i"])
    assert tables[("datafusion", "public", "big")][1] == ["id", "a", "b", "c", "d"]
    assert ("datafusion", "public", "specz") in tables


def test_table_schema_equals_what_a_query_returns(server):
    with server.adbc() as conn, conn.cursor() as cur:
        schema = conn.adbc_get_table_schema("bright")
        cur.execute("SELECT * FROM bright LIMIT 3")
        t = cur.fetch_arrow_table()
    assert schema.names == t.schema.names
    assert [f.type for f in schema] == [f.type for f in t.schema]


def test_cone_search_and_crossmatch(server):
    with server.adbc() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) AS n FROM objects WHERE cone(ra, dec, 0.0, -30.0, 0.2)"
        )
        cone = cur.fetch_arrow_table().column("n").to_pylist()[0]
        cur.execute(
            "SELECT count(*) AS n, max(dist_arcsec) AS d FROM crossmatch('specz', 'objects', 1.0, 1)"
        )
        xm = cur.fetch_arrow_table().to_pylist()[0]
    assert 0 < cone < OBJECTS
    assert cone == int(
        pz_value(
            server.work,
            server.data,
            "SELECT count(*) FROM objects WHERE cone(ra, dec, 0.0, -30.0, 0.2)",
        )
    )
    assert xm["n"] > 0 and xm["d"] <= 1.0


def test_photoz_pdf_keeps_its_grid(server):
    with server.adbc() as conn, conn.cursor() as cur:
        cur.execute(
            f'SELECT "objectId", photoz(\'knn\', {FEATURES}).pdf AS pdf, '
            f"photoz('knn', {FEATURES}).z_mode AS z_mode FROM objects LIMIT 50"
        )
        t = cur.fetch_arrow_table()
    meta = t.schema.field("pdf").metadata
    assert meta is not None, t.schema
    assert {k: meta[k] for k in (b"pz.zmin", b"pz.zmax", b"pz.nz")} == {
        b"pz.zmin": b"0",
        b"pz.zmax": b"3",
        b"pz.nz": b"301",
    }, meta
    assert t.num_rows == 50
    pdf = t.column("pdf").to_pylist()
    assert all(p is None or len(p) == 301 for p in pdf)


def test_five_million_rows_stream_in_batches(server):
    reader = server.flight().do_get(flight.Ticket(b"SELECT * FROM big"))
    rows = batches = 0
    for chunk in reader:
        rows += chunk.data.num_rows
        batches += 1
    assert rows == BIG_ROWS
    assert batches > 100, batches


def test_adbc_errors_have_their_codes(server):
    S = adbc_driver_manager.AdbcStatusCode
    cases = [
        ("SELEC 1", S.INVALID_ARGUMENT, "SQL syntax error"),
        ("SELECT * FROM nosuch", S.NOT_FOUND, "nosuch"),
        ("CREATE VIEW v AS SELECT 1", S.UNAUTHORIZED, "CREATE VIEW is not allowed"),
        ("SELECT * FROM '/etc/passwd'", S.UNAUTHORIZED, "by its path is not allowed"),
        (f"SELECT * FROM hats('{server.work}/sky/objects')", S.UNAUTHORIZED, "hats()"),
        ("COPY (SELECT 1) TO '/tmp/pz-x.parquet'", S.UNAUTHORIZED, "COPY is not allowed"),
        ("SET datafusion.execution.batch_size = 1", S.UNAUTHORIZED, "SET is not allowed"),
        ("DROP TABLE objects", S.UNAUTHORIZED, "DROP TABLE is not allowed"),
        ("CREATE MODEL m USING knn AS SELECT * FROM specz", S.UNAUTHORIZED, "CREATE MODEL is not allowed"),
        (
            "SELECT * FROM crossmatch('/data/specz.parquet', 'objects', 1.0)",
            S.UNAUTHORIZED,
            "is not a registered table",
        ),
    ]
    with server.adbc() as conn:
        for sql, code, words in cases:
            with conn.cursor() as cur:
                with pytest.raises(adbc_driver_manager.Error) as e:
                    cur.execute(sql)
                    cur.fetch_arrow_table()
                assert e.value.status_code == code, (sql, e.value)
                assert words in str(e.value), (sql, str(e.value))
    assert not pathlib.Path("/tmp/pz-x.parquet").exists()
    assert server.alive()


# ---------------------------------------------------------------- pyarrow.flight


def test_plain_flight_sql_ticket(server):
    t = server.flight().do_get(flight.Ticket(b"SELECT 41 + 1 AS answer")).read_all()
    assert t.column("answer").to_pylist() == [42]
    empty = server.flight().do_get(
        flight.Ticket(b"SELECT \"objectId\" FROM objects WHERE mag_i > 99")
    ).read_all()
    assert empty.num_rows == 0 and empty.schema.names == ["objectId"]


def test_list_flights_and_path_descriptors(server):
    client = server.flight()
    paths = {tuple(p.decode() for p in f.descriptor.path): f for f in client.list_flights()}
    assert ("datafusion", "public", "objects") in paths
    assert ("datafusion", "public", "bright") in paths
    info = client.get_flight_info(flight.FlightDescriptor.for_path("objects"))
    assert info.schema.names == paths[("datafusion", "public", "objects")].schema.names
    t = client.do_get(info.endpoints[0].ticket).read_all()
    assert t.num_rows == OBJECTS
    assert t.schema == info.schema
    # gRPC NotFound: pyarrow raises its KeyError.
    with pytest.raises(pa.ArrowKeyError) as e:
        client.get_flight_info(flight.FlightDescriptor.for_path("nosuch"))
    assert "table 'nosuch' not found" in str(e.value)


def test_unknown_credentials_are_refused_even_with_anonymous_access(server):
    with pytest.raises(flight.FlightUnauthenticatedError) as e:
        server.flight().authenticate_basic_token(b"ann", b"secret")
    assert "unknown token" in str(e.value)
    # A bearer header the server never issued is refused on any call.
    opts = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer nope")])
    with pytest.raises(flight.FlightUnauthenticatedError):
        server.flight().do_get(flight.Ticket(b"SELECT 1"), opts).read_all()


def test_random_bytes_as_tickets_and_commands_never_crash_it(server):
    rng = random.Random(20261202)
    client = server.flight()
    for i in range(10_000):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        with pytest.raises(pa.ArrowException):
            if i % 2:
                client.do_get(flight.Ticket(b"\xff" + junk)).read_all()
            else:
                client.get_flight_info(flight.FlightDescriptor.for_command(junk))
    assert server.alive()


def test_one_log_line_per_request(server):
    server.flight().do_get(flight.Ticket(b"SELECT 7 AS seven")).read_all()
    line = wait_for_line(server.logs, lambda l: 'rpc="DoGet"' in l and "SELECT 7 AS seven" in l)
    mine = [l for l in server.logs if 'rpc="DoGet"' in l and "SELECT 7 AS seven" in l]
    assert len(mine) == 1, mine
    for field in ("user=anonymous", "rows=1", "bytes=", "ms=", "outcome=ok"):
        assert field in line, line
