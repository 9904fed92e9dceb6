"""The overview page shows the backend's one-line warnings (Istio config not visible), escaped, and nothing without."""
from __future__ import annotations

import json

from dashboard.pages import overview
from meshscope.config_source import HINT


class Source:
    """The few DataSource answers the overview reads, from a backend that may warn."""

    def __init__(self, notices):
        self._notices = notices

    def now(self):
        return 1_795_000_000.0

    def services(self):
        return []

    def findings(self, filters=None):
        return []

    def slos(self):
        return []

    def scenarios(self):
        return []

    def notices(self):
        return self._notices


def rendered(source) -> str:
    return json.dumps(overview.layout(source, None, {}).to_plotly_json(), default=lambda o: o.to_plotly_json())


def test_overview_shows_the_hint_once():
    page = rendered(Source([HINT]))
    assert page.count(HINT) == 1 and "ov-notices" in page


def test_overview_without_notices_has_no_notice_block():
    assert "ov-notices" not in rendered(Source([]))
    # a DataSource without `notices` at all (snapshot files, older sources) renders as before
    bare = type("Bare", (), {k: v for k, v in vars(Source).items() if k not in ("notices", "__init__")})()
    assert not hasattr(bare, "notices") and "ov-notices" not in rendered(bare)
