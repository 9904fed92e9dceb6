"""The one catalog of finding codes, merged from every YAML file in this folder."""
from diagnose.catalog.registry import CATALOG, CatalogEntry, CatalogError, load_catalog, make, parse_catalog

__all__ = ["CATALOG", "CatalogEntry", "CatalogError", "load_catalog", "make", "parse_catalog"]
