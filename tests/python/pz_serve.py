"""What the `pz serve` test modules share: running the pz binary under test (PZ_BIN) and
starting a server as a separate process on a free loopback port."""

import os
import signal
import subprocess
import threading
import time

PZ = os.environ["PZ_BIN"]


def wait_for_line(logs, wanted, timeout=10.0):
    """The first line of LOGS (a server's standard error, still being read) for which
    WANTED(line) is true, waiting up to TIMEOUT seconds: a request's log line is written
    when its stream ends, which may be just after the client has read the last batch."""
    deadline = time.monotonic() + timeout
    while True:
        for line in list(logs):
            if wanted(line):
                return line
        assert time.monotonic() < deadline, "no such log line; the last ones:\n" + "".join(logs[-5:])
        time.sleep(0.05)


def pz(work, data, *args):
    """Runs `pz --data-dir DATA ARGS…` in WORK; its standard output, or the test fails."""
    r = subprocess.run(
        [PZ, "--data-dir", str(data), *args], cwd=work, capture_output=True, text=True
    )
    assert r.returncode == 0, f"pz {args}: {r.stderr}"
    return r.stdout


class Server:
    """`pz serve --listen 127.0.0.1:0 FLAGS…` over DATA; `logs` collects its standard error."""

    def __init__(self, work, data, *flags):
        self.work, self.data = work, data
        self.logs = []
        self.proc = subprocess.Popen(
            [PZ, "--data-dir", str(data), "serve", "--listen", "127.0.0.1:0", *flags],
            cwd=work,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.first_line = self.proc.stdout.readline()
        threading.Thread(target=lambda: self.logs.extend(self.proc.stderr), daemon=True).start()
        assert self.first_line.startswith("pz serve: listening on grpc"), (
            self.first_line + "".join(self.logs)
        )
        self.uri = self.first_line.strip().split(" on ", 1)[1]

    def peak_memory_bytes(self):
        """The server's peak resident memory (VmHWM), from /proc."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM in /proc status")

    def stop(self):
        """SIGTERM; the server must exit 0 and say it stopped."""
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=60) == 0, "".join(self.logs[-20:])
        assert any("pz serve: stopped" in line for line in self.logs), "".join(self.logs[-20:])
