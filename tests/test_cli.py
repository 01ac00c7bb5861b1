

def test_a_librarys_python_warning_is_one_line_without_terminal_codes_and_pythons_form_with_verbose(monkeypatch):
    """gymnasium colours its warnings with terminal codes, even into a pipe, and Python adds the warning's
    source file and line: two lines with escape codes in a log file, among rdpg's one-line messages."""
    import warnings

    from rdpg_cli import cli

    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # restored after the test
    monkeypatch.setitem(cli._log_flags, "verbose", False)
    cli.one_line_warnings()
    message = "\x1b[33mWARN: The environment X-v0 is out of date.\nUpgrade to v1.\x1b[0m"
    assert warnings.formatwarning(message, DeprecationWarning, "/site/gymnasium/registration.py", 511) == \
        "warning: The environment X-v0 is out of date. Upgrade to v1.\n"
    monkeypatch.setitem(cli._log_flags, "verbose", True)
    assert "registration.py:511: DeprecationWarning" in warnings.formatwarning(
        message, DeprecationWarning, "/site/gymnasium/registration.py", 511)
