import dataclasses

import pytest

from service import create_app
from tests.conftest import DATABASE


def test_healthz_reports_database_and_redis(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok", "redis": "ok"}


def test_healthz_names_an_unreachable_redis(config, clock):
    app = create_app(dataclasses.replace(config, redis_url="redis://127.0.0.1:1/0"), overrides={"CLOCK": clock})
    response = app.test_client().get("/healthz")
    app.extensions["hearth_db"].engine.dispose()
    assert response.status_code == 503
    assert response.json["redis"].startswith("error") and response.json["database"] == "ok"


def _health_of(config, clock, database_url: str):
    app = create_app(dataclasses.replace(config, database_url=database_url), overrides={"CLOCK": clock})
    try:
        return app.test_client().get("/healthz")
    finally:
        app.extensions["hearth_db"].engine.dispose()


def test_healthz_names_a_database_not_migrated(config, clock, tmp_path):
    response = _health_of(config, clock, f"sqlite:///{tmp_path / 'empty.db'}")
    assert response.status_code == 503
    assert response.json["database"] == "error: not migrated (run hearth db upgrade)"


def test_healthz_names_a_schema_behind_the_code_and_accepts_one_ahead(config, clock, tmp_path):
    from sqlalchemy import create_engine, text

    from service.migrations import revisions, upgrade

    url = f"sqlite:///{tmp_path / 'behind.db'}"
    upgrade(url, revisions()[-2])
    response = _health_of(config, clock, url)
    assert response.status_code == 503
    assert response.json["database"].startswith(f"error: schema at {revisions()[-2]}, this code needs")
    engine = create_engine(url)
    with engine.begin() as conn:  # a deployment migrated past this code, which is still running
        conn.execute(text("UPDATE alembic_version SET version_num = 'a_later_one'"))
    engine.dispose()
    assert _health_of(config, clock, url).status_code == 200


def test_health_answers_while_a_writer_holds_the_database(app, client, session, member):
    """An anonymous probe neither waits behind a writer (SQLite's write lock) nor takes it."""
    member.name = "Alex R"
    session.flush()  # this transaction is writing and holds the lock until it ends
    answer = client.get("/healthz")
    assert answer.status_code == 200 and answer.get_json()["database"] == "ok"
    session.rollback()


def test_healthz_refuses_another_applications_database(config, clock, tmp_path):
    """DATABASE_URL names a database that another application migrates with Alembic: its revision
    is not one of Hearth's, and Hearth's tables are not there."""
    from sqlalchemy import create_engine, text

    url = f"sqlite:///{tmp_path / 'other.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('ae1027a6acf')"))
    engine.dispose()
    response = _health_of(config, clock, url)
    assert response.status_code == 503
    assert response.json["database"] == ("error: schema at ae1027a6acf, a revision that is not Hearth's"
                                         " (is DATABASE_URL another application's?)")


def test_healthz_answers_when_the_database_takes_the_connection_and_never_speaks(config, clock):
    """A PostgreSQL host that is wedged (the port open, nothing answering): the probe gives up on
    the connection (`CONNECT_SECONDS`) and says 503, rather than hang until gunicorn kills it."""
    import socket
    import threading

    with socket.create_server(("127.0.0.1", 0), backlog=8) as silent:  # the kernel completes the handshake
        url = f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/hearth"
        answers = []
        probe = threading.Thread(target=lambda: answers.append(_health_of(config, clock, url)), daemon=True)
        probe.start()
        probe.join(timeout=120)  # a bound on a hang, not a speed: the connection is given up after 5 s
        assert answers, "the health probe never answered"
    assert answers[0].status_code == 503 and answers[0].json["database"] == "error: OperationalError"


@pytest.mark.skipif(DATABASE == "sqlite", reason="connect_timeout is a PostgreSQL connection parameter; SQLite opens a file")
@pytest.mark.parametrize("query, used", [({}, 5), ({"connect_timeout": "30"}, "30")])
def test_a_connect_timeout_the_operator_gave_stands(database_url, query, used):
    from sqlalchemy import event, make_url

    from service.database import make_engine, normalise_url

    engine = make_engine(make_url(normalise_url(database_url)).update_query_dict(query)
                         .render_as_string(hide_password=False))
    seen = {}
    event.listen(engine, "do_connect", lambda dialect, record, cargs, cparams: seen.update(cparams))
    engine.connect().close()
    engine.dispose()
    assert seen["connect_timeout"] == used
