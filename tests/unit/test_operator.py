"""Who the audit log says ran a command."""

from service.cli.operator import operator


def test_an_operator_with_a_long_login_fits_the_audit_log(monkeypatch):
    monkeypatch.setenv("LOGNAME", "first.last@department.example.ac.uk" * 2)
    monkeypatch.setenv("USER", "first.last@department.example.ac.uk" * 2)
    assert operator("cli:import").startswith("cli:import:first.last@") and len(operator("cli:import")) == 64
