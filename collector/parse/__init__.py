"""Pure parsers: text or bytes in, Arrow/pandas tables out, no I/O."""
from collector.parse.exposition import ExpositionResult, ParseError, parse_exposition

__all__ = ["ExpositionResult", "ParseError", "parse_exposition"]
