"""The examples run cleanly against the real server holding the example strategy and community,
and say so plainly when the server does not implement an RPC they need yet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fixtures import write_community
from support import Server
from trellis_client import Client

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOT_YET = "is not implemented by this server yet"


def run(
    example: str, server: Server, workspace: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / example), *args],
        env={**os.environ, "TRELLIS_ADDR": server.address, "TRELLIS_WORKSPACE": workspace},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_crm_sync(server: Server, loaded: Client) -> None:
    done = run("crm_sync.py", server, loaded.workspace)
    assert done.returncode == 0, done.stderr
    if NOT_YET in done.stdout:
        assert "MatchPeople" in done.stdout
        return
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "crm-1001",
        "crm-1002",
        "lead-17",
        "lead-18",
        "lead-19",
    ]
    assert "Ana" in lines[0] and "convergence" in lines[0]
    assert lines[4] == "lead-19: not known to Trellis"


def test_member_suggestions(server: Server, loaded: Client) -> None:
    done = run("member_suggestions.py", server, loaded.workspace, "forum:u-ben", "--limit", "3")
    assert done.returncode == 0, done.stderr
    if NOT_YET in done.stdout:
        # The fallback shows the conversations to nourish now, from an implemented RPC.
        assert "nourish now" in done.stdout
        assert len([line for line in done.stdout.splitlines() if line.startswith("  0.")]) >= 1
    else:
        assert done.stdout.startswith("Discussions for forum:u-ben to join:")


def test_member_suggestions_for_someone_unknown(server: Server, loaded: Client) -> None:
    done = run("member_suggestions.py", server, loaded.workspace, "forum:nobody")
    if NOT_YET in done.stdout:
        assert done.returncode == 0
    else:
        assert done.returncode == 1 and "no member forum:nobody" in done.stderr


def test_source_sync(server: Server, loaded: Client, tmp_path: Path) -> None:
    data = tmp_path / "community.jsonl"
    total = write_community(data)
    config = json.dumps({"path": str(data)})
    done = run(
        "source_sync.py", server, loaded.workspace, "--connector", "jsonl", "--config", config
    )
    assert done.returncode == 0, done.stderr
    assert "added source example-source (jsonl)" in done.stdout, done.stdout
    assert f"done: succeeded, {total} records synced" in done.stdout, done.stdout


def test_source_sync_with_a_bad_config_names_the_field(server: Server, loaded: Client) -> None:
    done = run("source_sync.py", server, loaded.workspace, "--connector", "jsonl", "--id", "bad")
    assert done.returncode == 1, done.stdout
    assert "source.config_json:" in done.stderr, done.stderr
