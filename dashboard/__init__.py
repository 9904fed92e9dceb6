"""The Dash web UI and the JSON API."""
