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
