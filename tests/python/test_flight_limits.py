"""Limits of `pz serve`: a query past its memory or time ends with ResourceExhausted or
DeadlineExceeded, a user runs at most so many queries at once, a client that goes away
stops its query, and the server keeps serving everyone.

Run by cli/tests/serve_clients.rs with PZ_BIN set.
"""

import time

import pyarrow as pa
import pyarrow.flight as flight
import pytest

import pz_serve
from pz_serve import pz, wait_for_line

ROWS = 4_000_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("serve-limits")
    data = work / "data"
    pz(work, data, "sql", "-c", f"""
        COPY (SELECT value AS id, CAST(value AS DOUBLE) AS x FROM generate_series(1, {ROWS}))
          TO '{work}/ids.parquet';
        CREATE EXTERNAL TABLE ids STORED AS PARQUET LOCATION '{work}/ids.parquet';
    """)
    s = pz_serve.Server(
        work, data, "--allow-anonymous", "--query-memory", "32MiB", "--query-timeout", "4s",
        "--max-queries-per-user", "2",
    )
    yield {"uri": s.uri, "logs": s.logs}
    s.stop()


def query(server, sql):
    return flight.FlightClient(server["uri"]).do_get(flight.Ticket(sql.encode())).read_all()


def still_serves(server):
    assert query(server, "SELECT count(*) AS n FROM ids").column("n").to_pylist() == [ROWS]


def test_a_query_past_its_memory_is_stopped(server):
    # A hash join's build side cannot spill: 4 M keys are far more than 32 MiB.
    with pytest.raises(pa.ArrowException) as e:
        query(server, "SELECT count(*) FROM ids a JOIN ids b ON a.id = b.id")
    assert "Resources exhausted" in str(e.value), str(e.value)
    wait_for_line(server["logs"], lambda l: "outcome=ResourceExhausted" in l)
    still_serves(server)


def test_a_query_past_its_time_is_stopped(server):
    # 4 billion rows streamed: far more than 4 s of work.
    sql = "SELECT a.id, g.value FROM generate_series(1, 1000) g CROSS JOIN ids a"
    t0 = time.monotonic()
    with pytest.raises(flight.FlightTimedOutError) as e:
        query(server, sql)
    assert "time limit of 4 s" in str(e.value), str(e.value)
    assert time.monotonic() - t0 < 30
    wait_for_line(server["logs"], lambda l: sql in l and "outcome=DeadlineExceeded" in l)
    still_serves(server)


def test_a_user_runs_at_most_two_queries_at_once(server):
    client = flight.FlightClient(server["uri"])
    held = [client.do_get(flight.Ticket(b"SELECT * FROM ids")) for _ in range(2)]
    for r in held:
        r.read_chunk()  # both are running
    with pytest.raises(pa.ArrowException) as e:
        client.do_get(flight.Ticket(b"SELECT * FROM ids")).read_all()
    assert "already runs 2 queries" in str(e.value), str(e.value)
    for r in held:
        r.cancel()
    del held
    deadline = time.monotonic() + 20
    while True:
        try:
            still_serves(server)
            break
        except pa.ArrowException:
            assert time.monotonic() < deadline, "the cancelled queries still hold their slots"
            time.sleep(0.2)


def test_a_client_that_goes_away_stops_its_query(server):
    sql = "SELECT a.id, g.value FROM generate_series(1, 1000) g CROSS JOIN ids a"
    client = flight.FlightClient(server["uri"])
    reader = client.do_get(flight.Ticket(sql.encode()))
    reader.read_chunk()
    reader.cancel()
    client.close()
    deadline = time.monotonic() + 20
    while not any(sql in l and "outcome=cancelled" in l for l in server["logs"]):
        assert time.monotonic() < deadline, server["logs"][-3:]
        time.sleep(0.2)
    still_serves(server)
