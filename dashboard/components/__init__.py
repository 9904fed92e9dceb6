"""Widgets and figures shared by the pages."""
