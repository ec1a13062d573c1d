"""Every code the demo and the simulators show comes out as the demo says it does.

A code that is refused where the demo's caption says "a unit", or a simulated camera video whose
GS1 pack fails its check digit, reads to a newcomer as a fault of the agent or the camera. The
demo's scenes are played through the agent (in this process, with the demo's catalog and
manifest) in the demo's order; the simulators' codes go through `tracescan check`'s decision.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from agent.rules.catalog import parse_catalog_csv
from agent.rules.decision import assess
from drivers import RawScan
from drivers.camera import FrameOptions, ZxingDecoder, prepare
from hardware_sim import demo
from hardware_sim.camera_scene import COUNTER_SESSION, Showing, compose, render_symbol
from hardware_sim.workload import DEMO_CATALOG_CSV, unit_codes
from tests.harness import InProcessAgent, agent_config, load_config

CATALOG = parse_catalog_csv(DEMO_CATALOG_CSV, "demo catalog")


def _outcome(agent: InProcessAgent, before: tuple[int, int]) -> str:
    """What the worker was told about the one scan processed since `before` (seen, notes)."""
    seen = agent.collect.seen[before[0] :]
    assert len(seen) == 1, seen
    if len(agent.collect.notes) > before[1]:
        return "command"
    _, decision, seq = seen[0]
    if decision.accepted:
        assert seq is not None
        return "accepted"
    assert decision.reason is not None
    return decision.reason


def test_every_scene_of_the_demo_comes_out_as_its_captions_say(tmp_path: Path) -> None:
    (tmp_path / "catalog.csv").write_text(DEMO_CATALOG_CSV, encoding="utf-8")
    doc, arrived, stray = demo.manifest()
    (tmp_path / "manifest.json").write_text(json.dumps(doc), encoding="utf-8")
    config = load_config(
        tmp_path,
        agent_config(
            tmp_path,
            catalog=tmp_path / "catalog.csv",
            masterdata={"manifests": [str(tmp_path / "manifest.json")]},
        ),
    )
    agent = InProcessAgent(config, clock=dt.datetime.now().timestamp())
    try:
        plan = [
            *demo.pharmacy(),
            *demo.receiving(arrived, stray),
            *demo.outage(),
            *demo.more_units(1),
        ]
        for code, what, expect in plan:
            before = (len(agent.collect.seen), len(agent.collect.notes))
            agent.process([RawScan(code, "counter", agent.now(demo.GAP))])
            assert _outcome(agent, before) == expect, f"{what}: {code}"
    finally:
        agent.close()


@pytest.mark.parametrize("showing", COUNTER_SESSION, ids=lambda s: s.kind)
def test_every_pack_of_the_simulated_camera_video_is_accepted(showing: Showing) -> None:
    """As the camera delivers it (AIM id + bytes), decoded from a rendered frame."""
    frame = compose(render_symbol(showing.content, showing.kind), showing.variant)
    (symbol,) = ZxingDecoder().decode(prepare(frame, FrameOptions()))
    decision = assess(symbol.scan_text, op="dispense", catalog=CATALOG, today=dt.date.today())
    assert decision.accepted, (showing.content, decision.reason, decision.detail)


def test_the_serial_simulators_codes_are_accepted() -> None:
    """`python -m hardware_sim serial` types `unit_codes(count, start=...)` by default."""
    for code in unit_codes(50) + unit_codes(10, start=1000):
        decision = assess(code, op="dispense", catalog=CATALOG, today=dt.date.today())
        assert decision.accepted, (code, decision.reason)
        assert decision.level == "unit"
