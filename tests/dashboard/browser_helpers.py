"""Selenium helpers for the topology page: reach the Cytoscape instance and click its elements for real."""
from __future__ import annotations

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from tests.util import wait_until

RED = "rgb(201,25,11)"  # the failing color as the browser computes it
GREEN = "rgb(63,156,53)"


def css(driver, selector):
    return driver.find_elements(By.CSS_SELECTOR, selector)


def text_of(driver, selector) -> str:
    found = css(driver, selector)
    return found[0].text if found else ""

# cytoscape.js registers its core on the container element as `_cyreg.cy`
FIND_CY = """const root = document.getElementById('topo-graph'); if (!root) return null;
for (const e of [root, ...root.querySelectorAll('*')]) if (e._cyreg && e._cyreg.cy) { window._cy = e._cyreg.cy; return true; }
return null;"""


def wait_for_graph(driver, nodes: int, timeout: float = 45) -> None:
    """Until the graph shows `nodes` nodes with positions on a drawn canvas."""
    wait_until(lambda: driver.execute_script(FIND_CY), timeout, what="cytoscape instance")
    wait_until(lambda: driver.execute_script("return window._cy.nodes().length") == nodes, timeout,
               what=f"{nodes} nodes")
    wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "#topo-graph canvas"), timeout, what="canvas")


def cy(driver, expr: str):
    """Evaluate `expr` with `cy` bound to the page's Cytoscape core."""
    driver.execute_script(FIND_CY)
    return driver.execute_script(f"const cy = window._cy; return {expr};")


def sel(element_id: str) -> str:
    return '[id = "' + element_id.replace('"', '\\"') + '"]'


def click_element(driver, element_id: str) -> None:
    """A real mouse click on a node, or on an edge a third of the way along (clear of its label)."""
    point = cy(driver, f"""(() => {{ const e = cy.$('{sel(element_id)}');
        if (e.isNode()) return e.renderedPosition();
        const a = e.renderedSourceEndpoint(), b = e.renderedTargetEndpoint();
        return {{x: a.x + (b.x - a.x) / 3, y: a.y + (b.y - a.y) / 3}}; }})()""")
    container = driver.find_element(By.CSS_SELECTOR, "#topo-graph")
    size = container.size
    ActionChains(driver).move_to_element_with_offset(
        container, int(point["x"] - size["width"] / 2), int(point["y"] - size["height"] / 2)).click().perform()
