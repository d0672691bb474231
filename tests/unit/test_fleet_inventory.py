"""The fleet inventory in the settings and the --hosts patterns (names, @group, slurm, SSH destinations)."""

from __future__ import annotations

import pytest

from rebuilt.core import settings as settings_mod
from rebuilt.errors import ConfigError
from rebuilt.tools.fleet import inventory
from rebuilt.tools.fleet.inventory import FleetHost

YAML = """\
rebuilt:
  fleet:
    hosts:
      node1: {host: 10.0.0.1, user: me, port: 2222, identity: ~/.ssh/id_fleet, workdir: /scratch/rb,
              python: /opt/envs/sgl/bin/python}
      node2: gpu-node2
      node3: ops@10.0.0.3:22
    groups:
      prefill: [node1]
      decode: [node2, node3]
      all: ["@prefill", "@decode"]
"""


@pytest.fixture
def fleet_settings(tmp_path):
    (tmp_path / "invoke.yaml").write_text(YAML)
    return settings_mod.resolve(cwd=tmp_path, home=tmp_path / "home", environ={})


def names(hosts):
    return [h.name for h in hosts]


def test_inventory_entries_from_invoke_yaml(fleet_settings):
    hosts = inventory.hosts_of(fleet_settings)
    assert hosts["node1"] == FleetHost("node1", "10.0.0.1", "me", 2222, "~/.ssh/id_fleet", "/scratch/rb",
                                       "/opt/envs/sgl/bin/python")
    assert hosts["node2"] == FleetHost("node2", "gpu-node2")
    assert hosts["node3"].destination == "ops@10.0.0.3:22"
    assert fleet_settings.source("fleet.hosts").endswith("invoke.yaml")


def test_groups_nest_and_each_host_comes_once(fleet_settings):
    assert names(inventory.select(fleet_settings, "@all,node1")) == ["node1", "node2", "node3"]
    assert names(inventory.select(fleet_settings, "@decode")) == ["node2", "node3"]


def test_unknown_group_is_bad_input_with_did_you_mean(fleet_settings):
    with pytest.raises(ConfigError, match=r"unknown group '@prefil' \(did you mean 'prefill'\?\)") as err:
        inventory.select(fleet_settings, "@prefil")
    assert err.value.exit_code == 2 and "@decode" in err.value.hint


@pytest.mark.parametrize("text, expected", [
    ("host-a", FleetHost("host-a", "host-a")),
    ("me@host-a", FleetHost("me@host-a", "host-a", "me")),
    ("me@10.1.2.3:2200", FleetHost("me@10.1.2.3:2200", "10.1.2.3", "me", 2200)),
    ("[::1]:22", FleetHost("[::1]:22", "::1", None, 22)),
])
def test_any_ssh_destination_as_fab_takes_it(fleet_settings, text, expected):
    assert inventory.select(fleet_settings, text) == [expected]


@pytest.mark.parametrize("bad", ["me@host:99999", "a b", "me@@host"])
def test_bad_destination_is_bad_input(fleet_settings, bad):
    with pytest.raises(ConfigError) as err:
        inventory.select(fleet_settings, bad)
    assert err.value.exit_code == 2


def test_slurm_expands_the_allocation_through_scontrol(fleet_settings):
    asked = []

    def expand(nodelist):
        asked.append(nodelist)
        return ["gpu-1", "gpu-2"]

    env = {"SLURM_JOB_NODELIST": "gpu-[1-2]"}
    assert names(inventory.select(fleet_settings, "slurm,node1", env, expand)) == ["gpu-1", "gpu-2", "node1"]
    assert asked == ["gpu-[1-2]"]


def test_slurm_outside_an_allocation_says_so(fleet_settings):
    with pytest.raises(ConfigError, match="SLURM_JOB_NODELIST is not set"):
        inventory.select(fleet_settings, "slurm", {}, lambda n: [])


def test_no_hosts_given_is_bad_input(fleet_settings):
    with pytest.raises(ConfigError, match="--hosts is required"):
        inventory.select(fleet_settings, " ")


@pytest.mark.parametrize("entry, message", [
    ("{host: h, password: x}", "SSH passwords are never stored"),
    ("{host: h, prot: 22}", "did you mean 'port'"),
    ("{host: h, python: bin/python}", "not an absolute path"),
    ("{host: h, port: abc}", "expected a whole number"),
])
def test_bad_inventory_entries_are_named(tmp_path, entry, message):
    (tmp_path / "invoke.yaml").write_text(f"rebuilt:\n  fleet:\n    hosts:\n      bad: {entry}\n")
    s = settings_mod.resolve(cwd=tmp_path, home=tmp_path / "home", environ={})
    with pytest.raises(ConfigError) as err:
        inventory.hosts_of(s)
    assert "fleet.hosts.bad" in str(err.value) and message in err.value.render()


def test_inventory_from_an_env_var_as_json(tmp_path):
    env = {"INVOKE_REBUILT_FLEET_GROUPS": '{"g": ["a", "b"]}'}
    s = settings_mod.resolve(cwd=tmp_path, home=tmp_path / "home", environ=env)
    assert names(inventory.select(s, "@g")) == ["a", "b"]


def test_a_mapping_setting_refuses_other_values(tmp_path):
    with pytest.raises(ConfigError, match=r"fleet.hosts .*expected a mapping"):
        settings_mod.resolve({"fleet.hosts": "[1, 2]"}, cwd=tmp_path, home=tmp_path / "home", environ={})


def test_config_shows_the_inventory_one_line_per_host_and_group(fleet_settings):
    hosts = inventory.describe(fleet_settings, "fleet.hosts")
    assert hosts[0] == "3 host(s)"
    assert hosts[1].split() == ["node1", "me@10.0.0.1:2222", "identity", "~/.ssh/id_fleet", "workdir", "/scratch/rb",
                                "python", "/opt/envs/sgl/bin/python"]
    assert hosts[3].split() == ["node3", "ops@10.0.0.3:22"]
    groups = inventory.describe(fleet_settings, "fleet.groups")
    assert groups[0] == "3 group(s)"
    assert groups[3].split() == ["@all", "@prefill,", "@decode", "=", "node1,", "node2,", "node3"]
    assert inventory.describe(fleet_settings, "fleet.timeout") is None


def test_config_names_a_bad_entry_and_never_prints_its_password(tmp_path):
    (tmp_path / "invoke.yaml").write_text("rebuilt:\n  fleet:\n    hosts:\n      node1: {host: h, password: hunter2-pw}\n")
    s = settings_mod.resolve(cwd=tmp_path, home=tmp_path / "home", environ={})
    hosts = "\n".join(inventory.describe(s, "fleet.hosts"))
    assert "hunter2-pw" not in hosts and "'password': '***'" in hosts
    assert "unknown field 'password'" in hosts
    (tmp_path / "invoke.yaml").write_text("rebuilt:\n  fleet:\n    groups:\n      g: ['@nope']\n")
    line = inventory.describe(settings_mod.resolve(cwd=tmp_path, home=tmp_path / "home", environ={}), "fleet.groups")[1]
    assert line.split()[0] == "@g" and "unknown group '@nope'" in line
