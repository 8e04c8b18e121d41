import pytest

from service.config import Config


def test_defaults_are_embedded():
    config = Config.from_env({})
    assert config.database_url.startswith("sqlite:///") and config.database_url.endswith("instance/hearth.db")
    assert config.redis_url == "redis://127.0.0.1:6379/0"
    assert config.transport == "console" and config.send_rate == 10


def test_the_default_database_is_in_the_checkout_wherever_a_command_runs(tmp_path, monkeypatch):
    from pathlib import Path
    monkeypatch.chdir(tmp_path)
    checkout = Path(__file__).resolve().parents[2]
    assert Config.from_env({}).database_url == f"sqlite:///{checkout / 'instance' / 'hearth.db'}"


def test_credentials_choose_the_twilio_transport():
    config = Config.from_env({"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t", "HEARTH_SEND_RATE": "2.5",
                              "PUBLIC_BASE_URL": "https://h.example/"})
    assert config.transport == "twilio" and config.send_rate == 2.5
    assert config.public_base_url == "https://h.example"


@pytest.mark.parametrize("env, message", [
    ({"HEARTH_TRANSPORT": "pigeon"}, "HEARTH_TRANSPORT"),
    ({"HEARTH_SEND_RATE": "fast"}, "HEARTH_SEND_RATE"),
    ({"HEARTH_SEND_RATE": "-1"}, "HEARTH_SEND_RATE"),
    ({"HEARTH_SEND_RATE": "nan"}, "HEARTH_SEND_RATE"),
    ({"HEARTH_SEND_RATE": "inf"}, "HEARTH_SEND_RATE"),
    ({"HEARTH_SEND_LEASE": "nan"}, "HEARTH_SEND_LEASE must be a number of seconds above 0"),
    ({"HEARTH_SEND_LEASE": "inf"}, "HEARTH_SEND_LEASE must be a number of seconds above 0"),
    ({"HEARTH_SEND_LEASE": "1e12"}, "HEARTH_SEND_LEASE must be a number of seconds above 0"),
    ({"HEARTH_SEND_LEASE": "0"}, "HEARTH_SEND_LEASE must be a number of seconds above 0"),
    ({"HEARTH_SEND_LEASE": "-5"}, "HEARTH_SEND_LEASE must be a number of seconds above 0"),
    ({"HEARTH_SEND_LEASE": "soon"}, "HEARTH_SEND_LEASE must be a number of seconds above 0"),
    ({"DATABASE_URL": "mysql://root@localhost/hearth"}, "DATABASE_URL must be a PostgreSQL URL .* not mysql://"),
    ({"DATABASE_URL": "postgresql+asyncpg://x/y"}, "not postgresql\\+asyncpg://"),
    ({"DATABASE_URL": "hearth.db"}, "not 'hearth.db'"),
    ({"DATABASE_URL": "postgresql://u@h:port/db"}, "DATABASE_URL cannot be read: what stands for its port is not a"),
    ({"DATABASE_URL": "sqlite://"}, "DATABASE_URL names no file: SQLite in memory cannot be shared"),
    ({"DATABASE_URL": "sqlite:///:memory:"}, "DATABASE_URL names no file"),
    ({"REDIS_URL": "127.0.0.1:6379"}, "REDIS_URL must be a Redis URL such as redis://127.0.0.1:6379/0: it cannot"),
    ({"REDIS_URL": "http://localhost:6379"}, "REDIS_URL must be a Redis URL .*: not http://...$"),
    ({"REDIS_URL": "redis://:secret@localhost:port/0"}, "cannot be read as one$"),  # the password is not shown
    ({"HEARTH_FLOWS_DIR": "/nonexistent/flows"}, "HEARTH_FLOWS_DIR is '/nonexistent/flows', which is not a folder"),
    ({"PUBLIC_BASE_URL": "hearth.example.org"}, "PUBLIC_BASE_URL must be an absolute URL"),
    ({"PUBLIC_BASE_URL": "ftp://hearth.example.org"}, "PUBLIC_BASE_URL must be an absolute URL"),
    ({"PUBLIC_BASE_URL": "https://hearth.example.org:port"}, "PUBLIC_BASE_URL must be an absolute URL"),
    ({"PUBLIC_BASE_URL": "https://hearth.example.org/?a=1"}, "PUBLIC_BASE_URL must not carry a query"),
    ({"PUBLIC_BASE_URL": "http://hearth.example.org"}, "PUBLIC_BASE_URL must use https unless"),
    ({"PUBLIC_BASE_URL": "http://192.168.1.20:5000/hearth"}, "PUBLIC_BASE_URL must use https unless"),
    ({"TWILIO_API_BASE": "http://api.example.org"}, "TWILIO_API_BASE must use https unless"),
    ({"TWILIO_API_BASE": "http://10.0.0.5:8080"}, "TWILIO_API_BASE must use https unless"),
    ({"TWILIO_API_BASE": "127.0.0.1:8080"}, "TWILIO_API_BASE must be an absolute URL"),
])
def test_bad_settings_are_named(env, message):
    with pytest.raises(ValueError, match=message):
        Config.from_env(env)


@pytest.mark.parametrize("env", [
    {"DATABASE_URL": "hearth:s3cret@db.internal/hearth"},  # no scheme
    {"DATABASE_URL": "postgresql://hearth:s3cret"},  # no host: the password is read as the port
    {"DATABASE_URL": "postgresql://hearth:s3cret@db.internal:5432x/hearth"},
    {"TWILIO_API_BASE": "http://AC1:s3cret@api.example.org"},
    {"TWILIO_API_BASE": "https://AC1:s3cret@api.example.org:port"},
    {"PUBLIC_BASE_URL": "https://hearth:s3cret@hearth.example.org/?a=1"},
    {"PUBLIC_BASE_URL": "hearth:s3cret@hearth.example.org"},
])
def test_a_setting_refused_is_not_quoted_with_its_password(env):
    with pytest.raises(ValueError) as refused:
        Config.from_env(env)
    assert "s3cret" not in str(refused.value) and next(iter(env)) in str(refused.value)


@pytest.mark.parametrize("url", ["postgres://u@h/db", "postgresql://u@h/db", "postgresql+psycopg://u@h/db",
                                 "sqlite:///x.db", "sqlite:////var/lib/hearth/hearth.db"])
def test_the_databases_hearth_runs_on_are_taken(url):
    assert Config.from_env({"DATABASE_URL": url}).database_url == url



@pytest.mark.parametrize("env, missing", [
    ({"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_FROM_NUMBER": "+441632960000"}, "TWILIO_AUTH_TOKEN"),
    ({"TWILIO_AUTH_TOKEN": "t"}, "TWILIO_ACCOUNT_SID"),
    ({"TWILIO_FROM_NUMBER": "+441632960000"}, "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"),
    ({"HEARTH_TRANSPORT": "twilio", "TWILIO_ACCOUNT_SID": "AC1"}, "TWILIO_AUTH_TOKEN"),
])
def test_half_a_twilio_set_up_is_refused_not_turned_into_the_console(env, missing):
    with pytest.raises(ValueError, match=f"set but {missing} not"):
        Config.from_env(env)


@pytest.mark.parametrize("base", ["http://127.0.0.1:8099", "http://[::1]:8099/", "http://localhost:8099",
                                  "https://api.twilio.example"])
def test_the_api_base_may_be_https_or_this_machine(base):
    assert Config.from_env({"TWILIO_API_BASE": base}).twilio_api_base == base.rstrip("/")


@pytest.mark.parametrize("base", ["http://127.0.0.1:5000", "http://localhost:5000", "https://hearth.example.org"])
def test_the_public_base_url_may_be_https_or_this_machine(base):
    assert Config.from_env({"PUBLIC_BASE_URL": base}).public_base_url == base


def test_a_public_base_url_with_a_path_is_kept_without_its_trailing_slash():
    assert Config.from_env({"PUBLIC_BASE_URL": "https://h.example/hearth/"}).public_base_url == "https://h.example/hearth"


def test_the_console_can_still_be_chosen_beside_twilio_settings():
    assert Config.from_env({"HEARTH_TRANSPORT": "console", "TWILIO_FROM_NUMBER": "+441632960000"}).transport == "console"
    assert Config.from_env({}).transport == "console"


def test_secrets_are_not_in_the_configurations_repr():
    config = Config.from_env({"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "tok-secret", "SECRET_KEY": "key-secret",
                              "DATABASE_URL": "postgresql://u:db-secret@h/d", "REDIS_URL": "redis://:redis-secret@h"})
    assert not any(secret in repr(config) for secret in ("tok-secret", "key-secret", "db-secret", "redis-secret"))


def test_twilio_without_a_public_base_url_is_warned_of(caplog, tmp_path):
    from service import create_app

    config = Config.from_env({"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t",
                              "DATABASE_URL": f"sqlite:///{tmp_path}/h.db"})
    create_app(config).extensions["hearth_db"].engine.dispose()
    assert any("PUBLIC_BASE_URL is not set" in r.getMessage() for r in caplog.records)
    caplog.clear()
    create_app(Config.from_env({"DATABASE_URL": f"sqlite:///{tmp_path}/h.db"})).extensions["hearth_db"].engine.dispose()
    assert not any("PUBLIC_BASE_URL" in r.getMessage() for r in caplog.records)  # the console needs none


def test_a_send_lease_shorter_than_a_send_can_take_is_warned_of(caplog, tmp_path):
    from service import create_app

    create_app(Config.from_env({"HEARTH_SEND_LEASE": "5", "DATABASE_URL": f"sqlite:///{tmp_path}/h.db"})
               ).extensions["hearth_db"].engine.dispose()
    assert any("HEARTH_SEND_LEASE is 5 s" in r.getMessage() for r in caplog.records)
