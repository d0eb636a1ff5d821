"""Users, tokens and what each may do, through the real clients: `pz user` / `pz token`
make them, `pz serve` (no anonymous access) checks them on every call.

Run by cli/tests/serve_clients.rs with PZ_BIN set.
"""

import time

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import pyarrow as pa
import pyarrow.flight as flight
import pytest

import pz_serve
from pz_serve import pz, wait_for_line


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("serve-auth")
    data = work / "data"
    pz(work, data, "simulate", "--objects", "3000", "--specz", "200", "--seed", "4", "--out", "sky")
    pz(work, data, "sql", "-c",
       f"CREATE EXTERNAL TABLE objects STORED AS HATS LOCATION '{work}/sky/objects'")
    pz(work, data, "user", "add", "root", "--admin")
    pz(work, data, "user", "add", "ann", "--group", "desc")
    tokens = {
        "root": pz(work, data, "token", "create", "root").strip(),
        "ann": pz(work, data, "token", "create", "ann", "--expires", "30d").strip(),
        "revoked": pz(work, data, "token", "create", "ann").strip(),
        "short": pz(work, data, "token", "create", "ann", "--expires", "1s").strip(),
    }
    assert all(t.startswith("pz_") for t in tokens.values()), tokens
    out = pz(work, data, "token", "revoke", tokens["revoked"])
    assert "revoked token" in out
    users = pz(work, data, "user", "list")
    assert "root,true," in users and "ann,false,desc," in users, users

    s = pz_serve.Server(work, data)
    time.sleep(1.1)  # the 1 s token has expired by now
    yield {"uri": s.uri, "tokens": tokens, "work": work, "data": data, "logs": s.logs}
    s.stop()


def bearer(token):
    return flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode())])


def adbc(server, user):
    return flight_sql.connect(
        server["uri"], db_kwargs={"username": user, "password": server["tokens"][user]}
    )


def test_no_credentials_no_access(server):
    with pytest.raises(flight.FlightUnauthenticatedError) as e:
        flight.FlightClient(server["uri"]).do_get(flight.Ticket(b"SELECT 1")).read_all()
    assert "no credentials" in str(e.value)


def test_bad_tokens_are_refused_with_their_reason(server):
    client = flight.FlightClient(server["uri"])
    t = server["tokens"]
    for token, words in [
        ("pz_000000000000_00", "unknown token"),
        (t["revoked"], "was revoked"),
        (t["short"], "has expired"),
    ]:
        with pytest.raises(flight.FlightUnauthenticatedError) as e:
            client.do_get(flight.Ticket(b"SELECT 1"), bearer(token)).read_all()
        assert words in str(e.value), (token, str(e.value))
    with pytest.raises(flight.FlightUnauthenticatedError) as e:
        client.authenticate_basic_token(b"root", t["ann"].encode())
    assert "not one of user 'root'" in str(e.value)


def test_basic_handshake_gives_a_bearer_header(server):
    client = flight.FlightClient(server["uri"])
    name, value = client.authenticate_basic_token(b"ann", server["tokens"]["ann"].encode())
    assert name.lower() == b"authorization" and value.startswith(b"Bearer "), (name, value)
    opts = flight.FlightCallOptions(headers=[(name, value)])
    t = client.do_get(flight.Ticket(b"SELECT count(*) AS n FROM objects"), opts).read_all()
    assert t.column("n").to_pylist() == [3000]
    wait_for_line(server["logs"], lambda l: "user=ann" in l and 'rpc="DoGet"' in l)


def test_adbc_with_user_and_token(server):
    with adbc(server, "ann") as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM objects WHERE mag_i < $1", parameters=(30.0,))
        assert cur.fetch_arrow_table().column("n").to_pylist() == [3000]
    # A static bearer header, with no handshake.
    header = f"Bearer {server['tokens']['ann']}"
    with flight_sql.connect(
        server["uri"], db_kwargs={"adbc.flight.sql.authorization_header": header}
    ) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 AS one")
        assert cur.fetch_arrow_table().column("one").to_pylist() == [1]


def test_admins_change_what_is_served_readers_only_read(server):
    with adbc(server, "root") as conn, conn.cursor() as cur:
        cur.execute(
            'CREATE VIEW bright AS SELECT "objectId", mag_i FROM objects WHERE mag_i < 24'
        )
        cur.fetch_arrow_table()
        cur.execute("SELECT count(*) AS n FROM bright")
        n_bright = cur.fetch_arrow_table().column("n").to_pylist()[0]
    assert 0 < n_bright < 3000
    # The view is kept in the data directory, as external tables are.
    assert "bright" in (server["data"] / "catalog.json").read_text()
    with adbc(server, "ann") as conn:
        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
        kinds = {
            t["table_name"]: t["table_type"]
            for c in objects
            for s in c["catalog_db_schemas"] or []
            for t in s["db_schema_tables"] or []
        }
        assert kinds.get("bright") == "VIEW", kinds
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) AS n FROM bright")
            assert cur.fetch_arrow_table().column("n").to_pylist() == [n_bright]
            with pytest.raises(adbc_driver_manager.Error) as e:
                cur.execute("DROP VIEW bright")
                cur.fetch_arrow_table()
            assert e.value.status_code == adbc_driver_manager.AdbcStatusCode.UNAUTHORIZED
            assert "user 'ann' has read-only access" in str(e.value)


def zspec_table(ids, survey="DESI"):
    z = pa.field("z", pa.float64(), metadata={b"ucd": b"src.redshift"})
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "z": pa.array([i / 100 for i in ids], pa.float64()),
            "survey": pa.array([survey] * len(ids)),
        },
        schema=pa.schema([pa.field("id", pa.int64()), z, pa.field("survey", pa.string())]),
    )


def count(cur, table):
    cur.execute(f"SELECT count(*) AS n FROM {table}")
    return cur.fetch_arrow_table().column("n").to_pylist()[0]


def test_admins_ingest_tables_readers_may_not(server):
    with adbc(server, "root") as conn, conn.cursor() as cur:
        assert cur.adbc_ingest("zspec_upload", zspec_table(list(range(1000))), mode="create") == 1000
        assert count(cur, "zspec_upload") == 1000
        with pytest.raises(adbc_driver_manager.Error) as e:
            cur.adbc_ingest("zspec_upload", zspec_table([1]), mode="create")
        assert e.value.status_code == adbc_driver_manager.AdbcStatusCode.ALREADY_EXISTS
        assert "already exists" in str(e.value)
        assert cur.adbc_ingest("zspec_upload", zspec_table([2000, 2001]), mode="append") == 2
        assert count(cur, "zspec_upload") == 1002
        # Appended rows must have the table's columns; the error names the one that differs.
        other = zspec_table([1]).rename_columns(["id", "zphot", "survey"])
        with pytest.raises(adbc_driver_manager.Error) as e:
            cur.adbc_ingest("zspec_upload", other, mode="append")
        assert "column 2" in str(e.value) and "zphot" in str(e.value)
        assert count(cur, "zspec_upload") == 1002
        with pytest.raises(adbc_driver_manager.Error) as e:
            cur.adbc_ingest("no_such_table", zspec_table([1]), mode="append")
        assert e.value.status_code == adbc_driver_manager.AdbcStatusCode.NOT_FOUND
        assert cur.adbc_ingest("zspec_new", zspec_table([5]), mode="create_append") == 1
        assert cur.adbc_ingest("zspec_upload", zspec_table([7, 8, 9]), mode="replace") == 3
        cur.execute("SELECT id, z FROM zspec_upload ORDER BY id")
        got = cur.fetch_arrow_table()
        assert got.column("id").to_pylist() == [7, 8, 9]
        # Field metadata (a column's UCD, a PDF's grid) is kept.
        assert got.schema.field("z").metadata == {b"ucd": b"src.redshift"}
        with pytest.raises(adbc_driver_manager.Error) as e:
            cur.adbc_ingest("bad name; DROP", zspec_table([1]), mode="create")
        assert "is not a table name ingest accepts" in str(e.value)
    # Written into the data directory, registered so it persists.
    assert "zspec_upload" in (server["data"] / "catalog.json").read_text()
    assert list((server["data"] / "ingested").glob("zspec_upload-*/part-*.parquet"))
    with adbc(server, "ann") as conn, conn.cursor() as cur:
        assert count(cur, "zspec_upload") == 3
        with pytest.raises(adbc_driver_manager.Error) as e:
            cur.adbc_ingest("ann_table", zspec_table([1, 2]), mode="create")
        assert e.value.status_code == adbc_driver_manager.AdbcStatusCode.UNAUTHORIZED
        assert "ingest (adbc_ingest) into 'ann_table' is not allowed" in str(e.value)
        cur.execute(
            "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'ann_table'"
        )
        assert cur.fetch_arrow_table().column("n").to_pylist() == [0]
