"""`txlab acid`: each property shown on the real server, durability only on txlab's own."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from txlab.cli import cli


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in ("TXLAB_DSN", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TXLAB_HOME", str(tmp_path / "home"))  # never the user's server


def test_atomicity_and_consistency_hold(pg_dsn, clean_env):
    result = CliRunner().invoke(cli, ["acid", "atomicity", "--dsn", pg_dsn], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.count("HELD:") == 2
    assert "ERROR 23514" in result.output and "connection lost" in result.output
    result = CliRunner().invoke(cli, ["acid", "consistency", "--dsn", pg_dsn],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for code in ("23514", "23503", "23505"):
        assert f"HELD: refused with {code}" in result.output


def test_isolation_shows_both_levels(pg_dsn, clean_env):
    result = CliRunner().invoke(cli, ["acid", "isolation", "--dsn", pg_dsn], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.count("ANOMALY:") == 2
    flat = " ".join(result.output.split())
    assert flat.count("PREVENTED:") == 2
    assert "PREVENTED: P4 (lost update) did not occur; s1 committed; s2 waited for s1" in flat
    assert "PREVENTED: G2-item (write skew) did not occur; s1 committed; s2 aborted with 40001" \
        in flat


def test_durability_refuses_a_server_txlab_did_not_start(pg_dsn, clean_env):
    result = CliRunner().invoke(cli, ["acid", "durability", "--dsn", pg_dsn],
                                catch_exceptions=False)
    assert result.exit_code == 2
    assert "only runs on an embedded server that txlab started" in result.output
    result = CliRunner().invoke(cli, ["acid", "--dsn", pg_dsn], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "DURABILITY" in result.output and "Skipped" in result.output


def test_durability_survives_a_crash_of_txlabs_own_server(clean_env):
    result = CliRunner().invoke(cli, ["acid", "durability"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "pg_ctl stop -m immediate" in result.output
    assert "automatic recovery in progress" in result.output
    assert "(1, committed), (2, committed)" in result.output
    assert "HELD: both committed rows survived the crash" in result.output
