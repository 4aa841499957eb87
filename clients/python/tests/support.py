"""Test support: starting and stopping the real `trellis serve`, and skipping tests of RPCs the
server does not implement yet."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
import pytest

from fixtures import REPO_ROOT
from trellis_client import Unimplemented

START_TIMEOUT = 60.0
T = TypeVar("T")


def trellis_binary() -> Path:
    """TRELLIS_BIN, or target/debug/trellis, built with cargo when it is missing."""
    configured = os.environ.get("TRELLIS_BIN")
    if configured:
        path = Path(configured)
        if not path.is_file():
            pytest.exit(f"TRELLIS_BIN={configured} is not a file; build it or unset TRELLIS_BIN")
        return path
    path = REPO_ROOT / "target" / "debug" / "trellis"
    if not path.is_file():
        subprocess.run(["cargo", "build", "--bin", "trellis"], cwd=REPO_ROOT, check=True)
    return path


@dataclass
class Server:
    """A running `trellis serve`."""

    process: subprocess.Popen[str]
    address: str
    log: Path
    binary: Path


def start_server(binary: Path, workdir: Path, listen: str = "127.0.0.1:0") -> Server:
    """Starts `trellis serve` and waits for the line that names its address."""
    log = workdir / "server.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [str(binary), "serve", "--listen", listen, "--db", str(workdir / "trellis.db")],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={
                **os.environ,
                "RUST_LOG": os.environ.get("RUST_LOG", "warn"),
                # No sentence-embedding model: the suite's server runs lexical-only, whatever
                # scripts/fetch-model.sh put in the repository.
                "TRELLIS__SEMANTIC__MODEL_DIR": str(workdir / "no-model"),
            },
        )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        line = lines.get(timeout=START_TIMEOUT)
    except queue.Empty:
        process.kill()
        raise RuntimeError(f"trellis did not print its address; see {log}") from None
    prefix = "trellis listening on "
    if not line.startswith(prefix):
        process.kill()
        raise RuntimeError(f"unexpected first line from trellis: {line!r}; see {log}")
    address = line.removeprefix(prefix).strip()
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=START_TIMEOUT)
    return Server(process=process, address=address, log=log, binary=binary)


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def skip_unimplemented(call: Callable[[], T]) -> T:
    """Runs ``call``; skips the test while the server answers UNIMPLEMENTED for it, so the test
    starts running the day the RPC lands."""
    try:
        return call()
    except Unimplemented as error:
        pytest.skip(f"the server does not implement this RPC yet: {error}")


@contextmanager
def unimplemented_skips() -> Iterator[None]:
    """The block form of skip_unimplemented."""
    try:
        yield
    except Unimplemented as error:
        pytest.skip(f"the server does not implement this RPC yet: {error}")
