"""One module per page; each exposes PATH, TITLE, layout(source, **query) and register(app, source, ctx)."""
