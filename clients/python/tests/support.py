"""Test support: starting and stopping the real `trellis serve` (optionally with a config file,
e.g. one that requires API keys, and a folder of connector plugins holding the real template
connector), creating and revoking keys with the real `trellis keys`, and skipping tests of RPCs
the server does not implement yet."""

from __future__ import annotations

import json
import os
import queue
import shutil
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
TEMPLATE_LIBRARY = "libtrellis_connector_template.so"
"""The template connector (plugins/template, connector name ``jsonl``) as cargo builds it."""


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


def plugin_dir(binary: Path, workdir: Path) -> Path:
    """A plugin folder for `trellis serve` holding the template connector: TRELLIS_PLUGIN_DIR when
    set, else a folder in ``workdir`` with a copy of the library found next to the binary or in
    target/debug (or its deps/, where a build of dependents leaves it), which is built with cargo
    when it is missing."""
    configured = os.environ.get("TRELLIS_PLUGIN_DIR")
    if configured:
        path = Path(configured)
        if not (path / TEMPLATE_LIBRARY).is_file():
            pytest.exit(
                f"TRELLIS_PLUGIN_DIR={configured} holds no {TEMPLATE_LIBRARY}; "
                "build it with `cargo build -p trellis-connector-template` or unset the variable"
            )
        return path
    built = REPO_ROOT / "target" / "debug" / TEMPLATE_LIBRARY
    candidates = (binary.parent / TEMPLATE_LIBRARY, built, built.parent / "deps" / TEMPLATE_LIBRARY)
    library = next((p for p in candidates if p.is_file()), None)
    if library is None:
        subprocess.run(
            ["cargo", "build", "-p", "trellis-connector-template"], cwd=REPO_ROOT, check=True
        )
        library = built
    folder = workdir / "plugins"
    folder.mkdir(exist_ok=True)
    shutil.copy(library, folder / TEMPLATE_LIBRARY)
    return folder


@dataclass
class Server:
    """A running `trellis serve`."""

    process: subprocess.Popen[str]
    address: str
    log: Path
    binary: Path
    db: Path


def auth_config(requests_per_second: int = 0, burst: int = 0) -> str:
    """A config file that makes every call need an API key; 0 calls per second for no limit."""
    return (
        f"[auth]\nrequired = true\nrequests_per_second = {requests_per_second}\nburst = {burst}\n"
    )


def start_server(
    binary: Path,
    workdir: Path,
    listen: str = "127.0.0.1:0",
    config: str | None = None,
    plugins: Path | None = None,
) -> Server:
    """Starts `trellis serve` (with ``config`` as its config file and ``plugins`` as its plugin
    folder, when given) and waits for the line that names its address."""
    log = workdir / "server.log"
    db = workdir / "trellis.db"
    command = [str(binary), "serve", "--listen", listen, "--db", str(db)]
    if config is not None:
        config_path = workdir / "trellis.toml"
        config_path.write_text(config)
        command += ["--config", str(config_path)]
    with log.open("w") as stderr:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={
                **os.environ,
                "RUST_LOG": os.environ.get("RUST_LOG", "warn"),
                # No sentence-embedding model: the suite's server runs lexical-only, whatever
                # scripts/fetch-model.sh put in the repository.
                "TRELLIS__SEMANTIC__MODEL_DIR": str(workdir / "no-model"),
                **(
                    {}
                    if plugins is None
                    else {"TRELLIS__PLUGINS__DIRS": json.dumps([str(plugins)])}
                ),
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
    return Server(process=process, address=address, log=log, binary=binary, db=db)


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@dataclass(frozen=True)
class ApiKey:
    """A key made by `trellis keys create`."""

    id: str
    key: str
    """The whole key, ``trk_<id>_<secret>``, as a client sends it."""
    workspace: str
    role: str


def create_key(
    server: Server, workspace: str, role: str, name: str = "python-client-tests"
) -> ApiKey:
    """Creates a key on the server's database with the real `trellis keys create`; a running
    server accepts it from its next call."""
    output = _keys(
        server, "create", "--workspace", workspace, "--role", role, "--name", name, "--json"
    )
    created = json.loads(output)
    return ApiKey(
        id=created["id"], key=created["key"], workspace=created["workspace"], role=created["role"]
    )


def revoke_key(server: Server, key: ApiKey) -> None:
    """Revokes ``key`` with the real `trellis keys revoke`; a running server refuses it at once."""
    revoked = json.loads(_keys(server, "revoke", key.id, "--json"))
    assert revoked["id"] == key.id and revoked["revoked"] is True, revoked


def _keys(server: Server, *arguments: str) -> str:
    """Runs `trellis keys ARGUMENTS` on the server's database and returns what it printed."""
    done = subprocess.run(
        [str(server.binary), "keys", *arguments, "--db", str(server.db)],
        capture_output=True,
        text=True,
        env={**os.environ, "RUST_LOG": "warn"},
    )
    if done.returncode != 0:
        raise RuntimeError(f"trellis keys {' '.join(arguments)} failed: {done.stderr}")
    return done.stdout


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
