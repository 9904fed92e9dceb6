"""Collector sources: one module per kind of telemetry origin, all behind `base.Source`."""
from collector.sources.base import Source
from collector.sources.prom_scrape import Scraper, ScrapeTarget, TargetHealth

__all__ = ["ScrapeTarget", "Scraper", "Source", "TargetHealth"]
