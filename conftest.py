"""Root conftest: hypothesis profiles shared by the tests and the suites."""

from hypothesis import HealthCheck, settings

# Models are slow to call compared with hypothesis's defaults: no deadline, fewer examples on CI.
settings.register_profile("default", deadline=None, max_examples=30,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True)
settings.load_profile("ci" if __import__("os").environ.get("CI") else "default")
