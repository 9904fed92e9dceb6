"""Root conftest: shared fixtures live in tests/fixtures/, one module per real part they start."""

pytest_plugins = [
    "tests.fixtures.mesh",
    "tests.fixtures.prometheus",
    "tests.fixtures.alertmanager",
    "tests.fixtures.browser",
    "tests.fixtures.stack",
    "tests.fixtures.kubeapi",
]


def pytest_configure(config):
    """Let the Ctrl-C tests' children see Ctrl-C even when the suite runs as a background job.

    A shell starts `cmd &` with SIGINT ignored and children inherit that at exec, so a
    `meshscope up` started by a test would ignore the SIGINT the test sends. A Python
    handler is reset to the default on exec, which restores the terminal's behaviour.
    """
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


# End-to-end tests that failed in the last clean full run (session 5) and are not yet fixed.
# They run and are reported (xfail, not skipped); a pass shows as XPASS. Each names the issue that owns it.
KNOWN_FAILING = {
}


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        for prefix, why in KNOWN_FAILING.items():
            if item.nodeid.startswith(prefix):
                item.add_marker(pytest.mark.xfail(reason=f"known failing, {why}", strict=False))
