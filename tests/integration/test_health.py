import dataclasses

from service import create_app


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
