"""Replay a window on the graph (issue #14): a slider steps through it, the config changes marked on it.

Step i of STEPS shows the graph of one slice of the window (its length over
STEPS, at least MIN_SLICE_S so a slice holds a few scrapes) ending i slices into
the window; the last step is the whole window as usual. A slice in which the
config changed carries a mark naming how many changes, so stepping across it
shows what the change did to the traffic.
"""
from __future__ import annotations

from typing import Any

from dashboard.components.change_marks import window_changes

STEPS = 10
MIN_SLICE_S = 10.0


def slice_s(window_s: float) -> float:
    return max(float(window_s) / STEPS, MIN_SLICE_S)


def view(window: float | None, end_ago: float | None, step: int | None) -> tuple[float | None, float | None]:
    """(window, end_ago) to draw at a slider step; the last step (or none) is the window itself."""
    if step is None or step >= STEPS or step < 0:
        return window, end_ago
    w = float(window or 300)
    return slice_s(w), float(end_ago or 0) + (STEPS - 1 - step) * w / STEPS


def marks(source: Any, window: float | None, end_ago: float | None) -> dict[str, Any]:
    """Slider marks: each step's time offset; a step whose slice holds config changes says how many."""
    w = float(window or 300)
    end = source.now() - float(end_ago or 0)
    start = end - w
    changes = [c for c in window_changes(source, start, end) if c.get("op") != "gap"]
    out: dict[str, Any] = {}
    for step in range(STEPS + 1):
        if step == STEPS:
            out[str(step)] = {"label": "all"}
            continue
        step_end = start + (step + 1) * w / STEPS
        n = sum(1 for c in changes if step_end - w / STEPS < float(c["time"]) <= step_end)
        label = f"-{(STEPS - 1 - step) * w / STEPS:.0f}s" if step % 3 == 0 or n else ""
        if n:
            out[str(step)] = {"label": f"\u25b2{n} {label}".strip(), "style": {"color": "#7c3aed", "fontWeight": "bold"}}
        elif label:
            out[str(step)] = {"label": label}
    return out


# ---- autoplay: the slider steps itself, one step per tick once the previous step is drawn -------------
SPEEDS = [(0.5, "0.5x"), (1.0, "1x"), (2.0, "2x"), (4.0, "4x")]
TICK_MS = 2000  # at 1x a step stays on screen this long (at least: a step waits for its graph to be drawn)


def tick_ms(speed: float | None) -> int:
    return int(TICK_MS / float(speed or 1.0))


def player() -> list[Any]:
    """Play/pause and speed beside the slider; the tick runs only while playing."""
    from dash import dcc, html

    return [html.Button("\u25b6 Play", id="topo-play", n_clicks=0, title="step the graph through the window",
                        style={"marginLeft": "6px"}),
            dcc.Dropdown(id="topo-speed", options=[{"label": label, "value": v} for v, label in SPEEDS], value=1.0,
                         clearable=False, style={"width": "70px", "display": "inline-block", "verticalAlign": "middle"}),
            dcc.Interval(id="topo-replay-tick", interval=tick_ms(1.0), disabled=True),
            dcc.Store(id="topo-replay-drawn", data=None),
            dcc.Store(id="topo-replay-next", data=None)]  # a tick's proposed step, taken only while still playing


def advance(trigger: str | None, step: int | None, drawn: int | None, playing: bool) -> tuple[int | None, bool]:
    """(slider step to show or None to keep it, playing afterwards) for a play click or a tick.

    Play from the last step ("all") starts at the first slice; a tick moves on only once the step shown has
    been drawn (a slow graph build holds the replay instead of skipping steps); the last step stops it.
    """
    step = STEPS if step is None else int(step)
    if trigger == "topo-play":
        if playing:
            return None, False  # pause where it is
        return (0 if step >= STEPS else None), True
    if trigger != "topo-replay-tick" or not playing:
        return None, playing
    if drawn != step:
        return None, True  # the step shown is still being drawn
    nxt = step + 1
    return nxt, nxt < STEPS


def register_player(app: Any) -> None:
    from dash import ClientsideFunction, Input, Output, State, no_update

    @app.callback(Output("topo-replay-drawn", "data"), Input("topo-updated", "children"),
                  State("topo-replay", "value"), prevent_initial_call=True)
    def drawn(_updated, step):  # noqa: ANN001, ANN202 - a refresh drew the graph of this step
        return step

    # The page's refresh timer is held while the past is shown (a replay slice, by Play or by hand, or a past
    # end): a past window does not change, and a refresh request issued while its graph is being built
    # supersedes that build (Dash keeps only the newest answer of a callback), so on a machine where a
    # build outlasts the timer the step was never drawn.
    @app.callback(Output("topo-interval", "disabled", allow_duplicate=True), Input("topo-replay", "value"),
                  Input("topo-end", "value"), State("topo-refresh", "value"), prevent_initial_call=True)
    def hold_refresh(step, end_ago, refresh_s):  # noqa: ANN001, ANN202
        return (step is not None and int(step) < STEPS) or bool(end_ago) or not refresh_s

    # Play/Pause is applied in the browser at once (assets/topology_render.js, replayToggle): as a server
    # callback shared with the tick, a click whose answer was still on its way when the next tick fired was
    # superseded by that tick's answer (Dash keeps only a callback's newest answer), so Pause was sometimes
    # ignored. The tick asks the server whether the step shown has been drawn (`advance`) and proposes the next
    # step; the browser takes it only if the player is still playing from that step (replayStep), so a tick
    # answered after a pause moves nothing.
    @app.callback(Output("topo-replay-next", "data"), Input("topo-replay-tick", "n_intervals"),
                  State("topo-replay", "value"), State("topo-replay-drawn", "data"),
                  State("topo-replay-tick", "disabled"), prevent_initial_call=True)
    def tick(_ticks, step, drawn_step, stopped):  # noqa: ANN001, ANN202
        nxt, playing = advance("topo-replay-tick", step, drawn_step, not stopped)
        if nxt is None:
            return no_update
        return {"from": STEPS if step is None else int(step), "to": nxt, "playing": playing}

    @app.callback(Output("topo-replay-tick", "interval"), Input("topo-speed", "value"), prevent_initial_call=True)
    def speed(value):  # noqa: ANN001, ANN202
        return tick_ms(value)

    outputs = (Output("topo-replay", "value", allow_duplicate=True),
               Output("topo-replay-tick", "disabled", allow_duplicate=True),
               Output("topo-play", "children", allow_duplicate=True))
    app.clientside_callback(ClientsideFunction("meshscope_topology", "replayToggle"), *outputs,
                            Input("topo-play", "n_clicks"), State("topo-replay", "value"), State("topo-replay", "max"),
                            State("topo-replay-tick", "disabled"), prevent_initial_call=True)
    app.clientside_callback(ClientsideFunction("meshscope_topology", "replayStep"), *outputs,
                            Input("topo-replay-next", "data"), State("topo-replay", "value"),
                            State("topo-replay-tick", "disabled"), prevent_initial_call=True)
