import pytest

from ocmembers import load_config
from ocmembers.exceptions import ConfigError


def test_defaults_match_the_paper():
    cfg = load_config()
    assert cfg.source.name == "archive"
    assert cfg.cone.radius_pc == 50.0 and cfg.cone.n_sigma == 10.0
    assert cfg.selection.sigma_plx0_mas == 0.015
    assert (cfg.selection.delta_c_extra, cfg.selection.delta_g_extra) == (0.1, 0.8)
    assert cfg.model.n_support == 10 and cfg.model.hidden == 64 and cfg.model.n_blocks == 5
    assert cfg.training.class_weights == (1.0, 5.0)
    assert cfg.membership.n_samples == 100


def test_make_variables_override(tmp_path):
    cfg = load_config(source="local", local_dir="/x", clusters="NGC_2682, IC_4756", jobs=3,
                      output_dir=str(tmp_path))
    assert cfg.source.name == "local" and str(cfg.local_dir) == "/x"
    assert cfg.clusters.names == ("NGC_2682", "IC_4756") and cfg.clusters.jobs == 3
    assert cfg.out_dir == tmp_path / "local"


def test_user_file_overrides_a_subset(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[training]\nmax_epochs = 7\n")
    cfg = load_config(f)
    assert cfg.training.max_epochs == 7
    assert cfg.training.patience == 20  # untouched


@pytest.mark.parametrize("text, match", [
    ("[training]\nmax_epoch = 7\n", "unknown key.*max_epoch"),
    ("[trainin]\nx = 1\n", r"unknown configuration section \[trainin\]"),
    ("[source]\nname = 'vizier'\n", "SOURCE"),
    ("[clusters]\njobs = 0\n", "JOBS"),
    ("[training\n", "not valid TOML"),
])
def test_bad_configuration_names_the_key(tmp_path, text, match):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(f)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.toml"):
        load_config(tmp_path / "nope.toml")


def test_frozen_and_digest_changes_with_content():
    a, b = load_config(), load_config(jobs=2)
    with pytest.raises(AttributeError):
        a.training.seed = 1  # type: ignore[misc]
    assert a.digest("training") == b.digest("training")
    assert a.digest() != b.digest()


@pytest.mark.parametrize("text, match", [
    ("[membership]\nn_samples = '100'\n", r"\[membership\] n_samples: expected an integer, got '100'"),
    ("[membership]\nn_samples = 50.5\n", r"\[membership\] n_samples: expected an integer"),
    ("[cone]\nradius_pc = true\n", r"\[cone\] radius_pc: expected a number, got True"),
    ("[membership]\ncorrelate_g_colour = 1\n", r"correlate_g_colour: expected true or false"),
    ("[training]\nclass_weights = [1.0, 'five']\n", r"class_weights: expected a list of numbers"),
    ("[samples]\ntest_clusters = 'NGC_752'\n", r"test_clusters: expected a list of strings"),
    ("[methods]\nxd_bootstrap = 'many'\n", r"\[methods\] xd_bootstrap: expected an integer"),
])
def test_every_value_is_type_checked_at_load(tmp_path, text, match):
    """Issue 11 item 5: a wrong type is refused when the config loads, naming the key and the type."""
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(f)


def test_integers_widen_to_floats(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[cone]\nradius_pc = 40\n")
    cfg = load_config(f)
    assert cfg.cone.radius_pc == 40.0 and isinstance(cfg.cone.radius_pc, float)


def test_set_parses_by_the_key_type():
    cfg = load_config(overrides=["source.cmd_version=3.8", "samples.test_clusters=NGC_752, NGC_2682",
                                 "membership.thresholds=0.2,0.7", "membership.n_samples=30",
                                 "source.gaia_table='gaiadr3.gaia_source'", "membership.exclude_self=false"])
    assert cfg.source.cmd_version == "3.8"                       # a string key keeps the text
    assert cfg.samples.test_clusters == ("NGC_752", "NGC_2682")  # comma-separated list
    assert cfg.membership.thresholds == (0.2, 0.7)
    assert cfg.membership.n_samples == 30 and cfg.membership.exclude_self is False
    assert cfg.source.gaia_table == "gaiadr3.gaia_source"


@pytest.mark.parametrize("item, match", [
    ("membership.n_samples=abc", r"\[membership\] n_samples: expected an integer, got 'abc'"),
    ("membership.exclude_self=yes", r"exclude_self: expected true or false"),
    ("membership.nsamples=3", r"unknown key.*nsamples"),
])
def test_set_refuses_a_wrong_type(item, match):
    with pytest.raises(ConfigError, match=match):
        load_config(overrides=[item])


def test_the_network_mode_is_a_checked_key():
    assert load_config().membership.network == "exact"              # the default: bitwise the reference
    assert load_config(overrides=["membership.network=compiled"]).membership.network == "compiled"
    with pytest.raises(ConfigError, match="membership.network"):
        load_config(overrides=["membership.network=fast"])
