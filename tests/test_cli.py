"""The ``batchqa`` group loads its subcommands when used, and names the missing extra when one cannot load."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from utilities import cli

pytestmark = pytest.mark.area("Kit conventions")


@pytest.fixture
def command_needing_a_missing_package(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(sys.modules, "batchqa_probe_command", None)  # import of it raises ModuleNotFoundError
    monkeypatch.setitem(cli.LAZY_COMMANDS, "probe", "batchqa_probe_command:probe_command")
    monkeypatch.delitem(cli.main.commands, "probe", raising=False)
    return "probe"


def test_every_lazy_command_loads_in_this_install() -> None:
    for name in cli.LAZY_COMMANDS:
        result = CliRunner().invoke(cli.main, [name, "--help"])
        assert result.exit_code == 0, f"batchqa {name} --help: {result.output}"
        assert "Usage:" in result.output


def test_a_command_whose_package_is_missing_says_which_extra_to_install(command_needing_a_missing_package: str) -> None:
    listing = CliRunner().invoke(cli.main, ["--help"])
    assert command_needing_a_missing_package in listing.output
    result = CliRunner().invoke(cli.main, [command_needing_a_missing_package])
    assert result.exit_code == 1
    assert "batchqa probe needs 'batchqa_probe_command'" in result.output
    assert "pip install 'batchqa[load" in result.output
    cli.main.commands.pop(command_needing_a_missing_package, None)
