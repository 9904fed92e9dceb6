"""Root conftest: shared fixtures live in tests/fixtures/, one module per real part they start."""

pytest_plugins = [
    "tests.fixtures.mesh",
    "tests.fixtures.prometheus",
    "tests.fixtures.alertmanager",
    "tests.fixtures.browser",
    "tests.fixtures.stack",
    "tests.fixtures.kubeapi",
]
