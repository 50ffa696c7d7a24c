"""``/api/runs`` matches runs to dataset versions from a catalog listed at most once per
``ttl_s``, however often the page polls."""

from __future__ import annotations

from typing import Any

from synthfactory_flows.dashboard.prefect_api import RecentCatalog


def test_one_listing_serves_the_polls_of_its_ttl() -> None:
    now = [100.0]
    listings: list[list[str]] = []

    def read(roots: list[str]) -> list[dict[str, Any]]:
        listings.append(roots)
        return [{"uri": f"{roots[0]}/v{len(listings)}"}]

    recent = RecentCatalog(["./out"], ttl_s=10.0, clock=lambda: now[0], read=read)
    assert recent.rows() == [{"uri": "./out/v1"}]
    for step in (0.0, 2.0, 2.0, 5.9):  # polls every 2 s within the ttl: no new listing
        now[0] += step
        assert recent.rows() == [{"uri": "./out/v1"}]
    assert len(listings) == 1
    now[0] += 0.1  # 10 s after the listing: listed again, the new version shows
    assert recent.rows() == [{"uri": "./out/v2"}]
    assert listings == [["./out"], ["./out"]]
