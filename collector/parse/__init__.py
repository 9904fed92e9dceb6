"""Pure parsers: text or bytes in, Arrow/pandas tables out, no I/O."""
from collector.parse.access_log import AccessLogResult, LogContext, parse_access_log, parse_json_log, parse_text_log
from collector.parse.exposition import ExpositionResult, ParseError, parse_exposition
from collector.parse.otlp import OtlpDecodeError, OtlpError, OtlpResult, decode_logs, decode_traces

__all__ = ["AccessLogResult", "ExpositionResult", "LogContext", "OtlpDecodeError", "OtlpError", "OtlpResult", "ParseError", "decode_logs",
           "decode_traces", "parse_access_log", "parse_exposition", "parse_json_log", "parse_text_log"]
