"""A milvus-lite gRPC server for the store tests: started as a subprocess on a free 127.0.0.1 port
with a temporary data directory, killable (SIGKILL) and restartable on the same port and data.

milvus-lite 3.x is a pure-Python engine speaking the Milvus protocol; it proves the client path
(`pymilvus` talking gRPC to a server it does not share a process with), not Milvus's C++ engine.
The tests skip, saying why, only when `pymilvus` or `milvus_lite` cannot be imported (install
`semsearch[milvus]`; under CI, which installs it, they fail instead); a server that does not
come up is a failure, not a skip.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers import free_port

MISSING = [name for name in ("pymilvus", "milvus_lite") if importlib.util.find_spec(name) is None]
SKIP_REASON = (f"{' and '.join(MISSING)} not installed: the Milvus store tests need "
               "`pip install 'semsearch[milvus]'` (pymilvus and milvus-lite)")
STARTUP_SECONDS = 120
ROOT = Path(__file__).resolve().parent.parent


class MilvusLiteServer:
    """`milvus-lite server` on 127.0.0.1:`port` over `data_dir`, as a subprocess of the tests."""

    def __init__(self, data_dir: Path, port: int | None = None, *, token: str | None = None):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.token = token  # when set, calls without it fail as on a Milvus with authentication
        self.process: subprocess.Popen | None = None
        self._log = data_dir.parent / f"milvus-lite-{self.port}.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def uri(self) -> str:
        """What `pymilvus.MilvusClient(uri=...)` takes."""
        return f"http://{self.address}"

    def store_url(self, collection: str | None = None) -> str:
        """A `--store` URL for `collection` (a new, unique name unless given)."""
        return f"milvus://{self.address}/{collection or new_collection_name()}"

    def start(self) -> MilvusLiteServer:
        """Start the server and return once it answers a Milvus request."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self._log, "ab") as log:
            if self.token is None:
                command = ["-m", "milvus_lite", "server", "--data-dir", str(self.data_dir),
                           "--host", "127.0.0.1", "--port", str(self.port)]
            else:
                command = ["-m", "tests.milvus_auth_server", str(self.data_dir), str(self.port), self.token]
            self.process = subprocess.Popen([sys.executable, *command], cwd=ROOT, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"milvus-lite server exited with {self.process.returncode}: {self.log()}")
            try:
                # A refused connection first, quietly: pymilvus logs a traceback per failed attempt.
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                client = self._new_client(timeout=5)
                try:
                    client.list_collections()
                    return
                finally:
                    client.close()
            except Exception as exc:  # noqa: BLE001 - not up yet: gRPC raises several kinds
                last = exc
                time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"milvus-lite server on {self.address} did not answer in {STARTUP_SECONDS}s "
                           f"({last}): {self.log()}")

    def kill(self) -> None:
        """SIGKILL the server, as a crash or an OOM kill would end it (its data directory stays)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def restart(self) -> MilvusLiteServer:
        """Kill the server if it runs, then start it again on the same port and data directory."""
        self.kill()
        return self.start()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def client(self):
        """A `pymilvus.MilvusClient` on this server (the caller closes it)."""
        return self._new_client(timeout=30)

    def _new_client(self, timeout: float):
        from pymilvus import MilvusClient

        # A connection of its own (pymilvus shares one per address and token, which outlives a
        # client and a server restart), pinging rarely: milvus-lite's gRPC server keeps gRPC's
        # default ping policy and drops a connection that pings every 10 s while idle ("too
        # many pings"), which pymilvus does by default.
        return MilvusClient(uri=self.uri, token=self.token or "", timeout=timeout, dedicated=True,
                            grpc_options={"grpc.keepalive_time_ms": 3_600_000})

    def log(self) -> str:
        try:
            return self._log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""


def new_collection_name() -> str:
    """A collection name no other test uses (letters, digits and `_`, as Milvus requires)."""
    return f"semsearch_{uuid.uuid4().hex[:12]}"


def require_milvus() -> None:
    """Skip, saying why, when the extra is missing, except in CI (`CI` set), which installs it:
    there a missing extra fails the tests instead of passing them by skipping."""
    if MISSING:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(SKIP_REASON)


@pytest.fixture(scope="session")
def milvus_server():
    """One milvus-lite server for the whole run; give each test its own collection
    (`milvus_server.store_url()`), never kill this one (see `killable_milvus_server`)."""
    require_milvus()
    data = Path(tempfile.mkdtemp(prefix="semsearch-milvus-"))
    server = MilvusLiteServer(data / "data").start()
    yield server
    server.stop()
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def killable_milvus_server(tmp_path):
    """A milvus-lite server of this test alone, which it may `kill()` and `restart()`."""
    require_milvus()
    server = MilvusLiteServer(tmp_path / "milvus-data").start()
    yield server
    server.stop()


@pytest.fixture
def milvus_server_with_token(tmp_path):
    """A milvus-lite server of this test alone that answers only clients sending its `token`."""
    require_milvus()
    server = MilvusLiteServer(tmp_path / "milvus-auth-data", token="root:s3cret-token").start()
    yield server
    server.stop()
