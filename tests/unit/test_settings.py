"""Settings: declared once, layered default < file < env < flag, errors that name the setting."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from infiniscale.settings import DECLARED, SettingsError, help_text, http_worker_count, resolve


def test_defaults(tmp_path: Path):
    s = resolve(env={"HOME": str(tmp_path)})
    assert s.http_addr == "0.0.0.0:9200" and s.tls is True and s.url == "https://localhost:9200"
    assert s.base_data_path == str(tmp_path / ".infiniscale")
    assert s.config_dir == str(tmp_path / ".infiniscale" / "config")
    assert s.storage_root == str(tmp_path / ".infiniscale" / "storage" / "users")
    assert s.enable_basic_auth is False and s.enable_app_auth is True and s.allow_propfind_depth_infinity is False


def test_layers(tmp_path: Path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "infiniscale.yaml").write_text("log_level: debug\nurl: https://file.example\n")
    env = {"OCIS_BASE_DATA_PATH": str(tmp_path), "OCIS_URL": "https://env.example"}
    s = resolve(env=env)
    assert s.log_level == "debug" and s.sources["log_level"].startswith("file ")
    assert s.url == "https://env.example" and s.sources["url"] == "env OCIS_URL"
    s = resolve(env=env, flags={"url": "https://flag.example"})
    assert s.url == "https://flag.example" and s.sources["url"] == "flag"


def test_ocis_names_are_accepted(tmp_path: Path):
    s = resolve(env={"OCIS_BASE_DATA_PATH": str(tmp_path), "PROXY_TLS": "false", "PROXY_HTTP_ADDR": "127.0.0.1:1234",
                     "OCDAV_ALLOW_PROPFIND_DEPTH_INFINITY": "true", "IDM_CREATE_DEMO_USERS": "true",
                     "OCIS_LOG_LEVEL": "warn", "OCIS_INSECURE": "true"})
    assert (s.tls, s.listen_host, s.listen_port) == (False, "127.0.0.1", 1234)
    assert s.allow_propfind_depth_infinity and s.create_demo_users and s.insecure and s.log_level == "warn"


@pytest.mark.parametrize(("var", "value", "name"), [
    ("PROXY_TLS", "maybe", "tls"),
    ("PROXY_HTTP_ADDR", "nonsense", "http_addr"),
    ("OCIS_LOG_LEVEL", "loud", "log_level"),
    ("INFINISCALE_HTTP_WORKERS", "two", "workers"),
    ("OCDAV_NAME_VALIDATION_MAX_LENGTH", "1000", "max_name_length"),
])
def test_a_wrong_value_names_the_setting_and_its_source(tmp_path: Path, var, value, name):
    with pytest.raises(SettingsError) as err:
        resolve(env={"OCIS_BASE_DATA_PATH": str(tmp_path), var: value})
    assert name in str(err.value) and var in str(err.value)


def test_a_wrong_value_in_the_file_names_the_file(tmp_path: Path):
    (tmp_path / "config").mkdir()
    path = tmp_path / "config" / "infiniscale.yaml"
    path.write_text("tls: [1, 2]\n")
    with pytest.raises(SettingsError) as err:
        resolve(env={"OCIS_BASE_DATA_PATH": str(tmp_path)})
    assert "tls" in str(err.value) and str(path) in str(err.value)
    path.write_text("no_such_setting: 1\n")
    with pytest.raises(SettingsError, match="no_such_setting"):
        resolve(env={"OCIS_BASE_DATA_PATH": str(tmp_path)})


def test_help_lists_every_setting_and_variable():
    text = help_text()
    for setting in DECLARED:
        assert setting.name in text
        for var in setting.env:
            assert var in text


def test_durations_take_go_syntax_or_seconds():
    env = {"STORAGE_USERS_PURGE_TRASH_BIN_PERSONAL_DELETE_BEFORE": "1h30m",
           "STORAGE_USERS_PURGE_TRASH_BIN_PROJECT_DELETE_BEFORE": "45",
           "INFINISCALE_VERSIONS_PERSONAL_MAX_AGE": "1500ms"}
    settings = resolve(env=env)
    assert settings.trash_personal_retention == 5400
    assert settings.trash_project_retention == 45
    assert settings.versions_personal_max_age == 1
    assert resolve(env={}).trash_personal_retention == 720 * 3600
    with pytest.raises(SettingsError, match="STORAGE_USERS_PURGE_TRASH_BIN_PERSONAL_DELETE_BEFORE"):
        resolve(env={"STORAGE_USERS_PURGE_TRASH_BIN_PERSONAL_DELETE_BEFORE": "a week"})


def test_http_workers_default_to_one_per_core_but_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    settings = resolve(env={"HOME": str(tmp_path)})
    allowed = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(allowed)})  # this thread may run on one core only
        assert http_worker_count(settings) == 1
        if len(allowed) >= 2:
            os.sched_setaffinity(0, set(sorted(allowed)[:2]))
            assert http_worker_count(settings) == 1  # the second core is left to NATS and the consumers
    finally:
        os.sched_setaffinity(0, allowed)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))  # a larger machine than this
    assert http_worker_count(settings) == 7
    assert http_worker_count(resolve(env={"HOME": str(tmp_path), "INFINISCALE_HTTP_WORKERS": "3"})) == 3
