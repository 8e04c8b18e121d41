"""Who the audit log says ran a command."""

from service.cli.operator import operator


def test_an_operator_with_a_long_login_fits_the_audit_log(monkeypatch):
    monkeypatch.setenv("LOGNAME", "first.last@department.example.ac.uk" * 2)
    monkeypatch.setenv("USER", "first.last@department.example.ac.uk" * 2)
    monkeypatch.delenv("SUDO_USER", raising=False)
    assert operator("cli:import").startswith("cli:import:first.last@") and len(operator("cli:import")) == 64


def test_a_command_run_through_sudo_names_the_person_who_ran_it(monkeypatch):
    for name in ("LOGNAME", "USER"):
        monkeypatch.setenv(name, "hearth")  # sudo -u hearth sets these to the account run as
    monkeypatch.setenv("SUDO_USER", "alice")
    assert operator() == "cli:alice(sudo:hearth)"
    assert operator("cli:import") == "cli:import:alice(sudo:hearth)"
    monkeypatch.setenv("SUDO_USER", "hearth")  # sudo to one's own account says nothing more
    assert operator() == "cli:hearth"
    monkeypatch.delenv("SUDO_USER")
    assert operator() == "cli:hearth"
