"""The simulated LLM provider: OpenAI- and Anthropic-compatible HTTP endpoints on loopback,
driven by a scenario file (docs/simulator.md).

    monitor.simulator.scenario   load_scenario(path) -> Scenario, parse_scenario, default_scenario
    monitor.simulator.server     SimulatorServer (background thread), create_app, serve_forever
    monitor.simulator.app        the ASGI app: provider endpoints, faults, /_sim control endpoints
    monitor.simulator.state      phase, counters, fault budgets, per-request seeded randomness
    monitor.simulator.behaviours the text of an answer for a behaviour
    monitor.simulator.synth      valid / invalid / wrong-value instances of a JSON Schema
    monitor.simulator.wire       the two wire formats and their error bodies
    monitor.simulator.model      the resolved scenario (frozen dataclasses)

Only the model and scenario modules are imported here, so importing the package stays cheap
(the CLI imports the server only when `driftmon simulate` runs).
"""

from monitor.simulator.model import Scenario
from monitor.simulator.scenario import default_scenario, load_scenario, parse_scenario

__all__ = ["Scenario", "default_scenario", "load_scenario", "parse_scenario"]
