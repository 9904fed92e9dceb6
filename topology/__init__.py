"""The traffic graph (networkx) built from the collector's tables, decorated by appenders."""
