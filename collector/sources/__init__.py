"""Collector sources: one module per kind of telemetry origin, all behind `base.Source`."""
from collector.sources.access_log import AccessLogTailer, LogFile
from collector.sources.base import Source
from collector.sources.otlp import OtlpReceiver
from collector.sources.prom_api import PrometheusAPIError, PrometheusClient, PrometheusSource
from collector.sources.prom_scrape import Scraper, ScrapeTarget, TargetHealth

__all__ = ["AccessLogTailer", "LogFile", "OtlpReceiver", "PrometheusAPIError", "PrometheusClient", "PrometheusSource",
           "ScrapeTarget", "Scraper", "Source", "TargetHealth"]
