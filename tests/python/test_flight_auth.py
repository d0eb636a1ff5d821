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
from pz_serve import pz


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
    assert any("user=ann" in l and 'rpc="DoGet"' in l for l in server["logs"]), server["logs"][-3:]


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
