"""Config validation: every mistake is an error naming the key, the value and what is allowed."""
from __future__ import annotations

import pytest

import feeds
from appliance import config
from appliance.config import ConfigError

VENUE = (feeds.implemented() or [None])[0]
needs_venue = pytest.mark.skipif(VENUE is None, reason="no venue implemented yet")


def base(**extra):
    d = {"simulator": {"enabled": True}}
    d.update(extra)
    return d


def test_defaults_fill_every_section():
    cfg = config.from_dict(base())
    assert cfg.rings.capacity == 1 << 20
    assert cfg.metrics.address == "127.0.0.1"
    assert cfg.supervisor.stop_timeout_s == 15.0
    assert cfg.shm_name("binance") == "binance"
    assert config.from_dict(base(namespace="demo")).shm_name("binance") == "demo.binance"


@pytest.mark.parametrize("data, fragments", [
    (base(colour="red"), ["unknown key 'colour'", "namespace", "venues"]),
    (base(rings={"capacity": 1000}), ["rings.capacity = 1000", "power of two"]),
    (base(rings={"capacity": "big"}), ["rings.capacity = 'big'", "expected an integer"]),
    (base(rings={"capasity": 1024}), ["unknown key rings.capasity", "allowed keys: capacity"]),
    (base(keep_shm="yes"), ["keep_shm = 'yes'", "true or false"]),
    (base(metrics={"address": "0.0.0.0"}), ["metrics.address = '0.0.0.0'", "loopback"]),
    (base(metrics={"port": 70000}), ["metrics.port = 70000", "0..65535"]),
    (base(namespace="a/b"), ["namespace = 'a/b'", "letters, digits"]),
    (base(supervisor={"stop_timeout_s": -1}), ["supervisor.stop_timeout_s = -1", "> 0"]),
    (base(supervisor={"cpu": 4096}), ["supervisor.cpu = 4096", "CPU this process may use"]),
    (base(compactor={"timeframes": ["1x"]}), ["compactor.timeframes", "\"1m\""]),
    (base(rings=5), ["rings = 5", "[rings] section"]),
    (base(venues={"binanse": {}}), ["unknown venue 'binanse'", "binance", "kucoin"]),
    ({"venues": {}}, ["no venue configured"]),
])
def test_bad_configs_name_key_value_and_what_is_allowed(data, fragments):
    with pytest.raises(ConfigError) as err:
        config.from_dict(data)
    for frag in fragments:
        assert frag in str(err.value), (frag, str(err.value))


def test_booleans_are_not_numbers():
    with pytest.raises(ConfigError, match="rings.capacity = True"):
        config.from_dict(base(rings={"capacity": True}))


@needs_venue
def test_venue_section_checks():
    ok = config.from_dict({"venues": {VENUE: {"symbols": ["AAA"], "ring_capacity": 1 << 16}}})
    assert ok.venues[VENUE].ring_capacity == 1 << 16
    with pytest.raises(ConfigError, match=f"venues.{VENUE}.symbols is empty"):
        config.from_dict({"venues": {VENUE: {}}})
    with pytest.raises(ConfigError, match=f"venues.{VENUE}.ring_capacity = 1000: must be a power of two"):
        config.from_dict({"venues": {VENUE: {"symbols": ["A"], "ring_capacity": 1000}}})
    with pytest.raises(ConfigError, match="not a channel of"):
        config.from_dict({"venues": {VENUE: {"symbols": ["A"], "channels": ["gossip"]}}})
    with pytest.raises(ConfigError, match="ws:// or wss://"):
        config.from_dict({"venues": {VENUE: {"symbols": ["A"], "url": "http://x"}}})
    with pytest.raises(ConfigError, match=f"unknown key venues.{VENUE}.symbol;"):
        config.from_dict({"venues": {VENUE: {"symbol": ["A"]}}})


def test_known_but_unimplemented_venue_is_named():
    missing = [v for v in feeds.VENUE_MODULES if v not in feeds.implemented()]
    if not missing:
        pytest.skip("every venue is implemented")
    with pytest.raises(ConfigError, match=f"venue '{missing[0]}' .* is not implemented"):
        config.from_dict({"venues": {missing[0]: {"symbols": ["A"]}}})


def test_load_reports_file_and_toml_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("namespace = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(str(bad))
    with pytest.raises(ConfigError, match="not found"):
        config.load(str(tmp_path / "nope.toml"))
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("[rings]\ncapacity = 3\n[simulator]\nenabled = true\n")
    with pytest.raises(ConfigError, match=r"wrong.toml: rings.capacity = 3"):
        config.load(str(wrong))


def test_examples_are_valid():
    import glob
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    files = glob.glob(os.path.join(root, "examples", "*.toml"))
    implemented = set(feeds.implemented())
    for path in files:
        import tomllib
        with open(path, "rb") as f:
            venues = set(tomllib.load(f).get("venues", {}))
        if venues - implemented:
            continue      # an example for venues this build does not have yet
        config.load(path)


def test_markdown_documents_every_key():
    md = config.markdown()
    for keys in config.SECTIONS.values():
        for k in keys:
            assert k.name in md
    for k in config.VENUE_KEYS + config.TOP:
        assert k.name in md


def test_run_check_prints_the_plan_without_starting_anything(tmp_path):
    from click.testing import CliRunner
    from tools.run import command
    toml = tmp_path / "c.toml"
    toml.write_text("namespace = \"chk\"\n[rings]\ncapacity = 1024\n[simulator]\nenabled = true\n")
    from shm import segment
    before = set(segment.list_segments())
    result = CliRunner().invoke(command, ["--config", str(toml), "--check"])
    assert result.exit_code == 0, result.output
    assert "namespace: chk" in result.output and "MemoryMax=" in result.output
    assert set(segment.list_segments()) == before
