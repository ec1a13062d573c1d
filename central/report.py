"""`tracescan-central report`: per site, device and day — events, confirmed-through, open gaps,
conflicts, rejects by reason, scan rate, alerts; as text for people, `--json` for machines.

Events and device rejects count on the day of their scan time (`ts`), evidence and alerts on
the day central recorded them; days are calendar days in `[central] timezone`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any, Final

from central import ledger

OPEN_GAPS_SHOWN: Final = 64


def _rows(cur: ledger.Cursor, query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    cur.execute(query, params)
    return cur.fetchall()


def gather(conn: ledger.Connection, day: dt.date | None, tz: str) -> dict[str, Any]:
    """The report's figures as plain data (what `--json` prints)."""
    params: dict[str, Any] = {"tz": tz, "day": day}
    devices: dict[tuple[str, str], dict[str, Any]] = {}

    def entry(site: str, device: str) -> dict[str, Any]:
        return devices.setdefault(
            (site, device),
            {
                "site": site,
                "device": device,
                "enrolled": False,
                "through": 0,
                "head": 0,
                "open_gaps": [],
                "days": defaultdict(_empty_day),
            },
        )

    with conn.transaction(), conn.cursor() as cur:
        for site, device in _rows(cur, "SELECT site, device FROM devices", params):
            entry(site, device)["enrolled"] = True
        for site, device, through, head in _rows(
            cur, "SELECT site, device, through, head FROM progress", params
        ):
            e = entry(site, device)
            e["through"], e["head"] = int(through), int(head)
            if head > through:
                e["open_gaps"] = [
                    [a, b] for a, b in ledger.gaps(cur, site, device, through, OPEN_GAPS_SHOWN)
                ]
        for site, device, d, op, n in _rows(
            cur,
            "SELECT site, device, (ts AT TIME ZONE %(tz)s)::date AS d, op, count(*) FROM events"
            " WHERE %(day)s::date IS NULL OR (ts AT TIME ZONE %(tz)s)::date = %(day)s"
            " GROUP BY 1, 2, 3, 4",
            params,
        ):
            bucket = entry(site, device)["days"][d.isoformat()]
            bucket["events"] += n
            bucket["by_op"][op] = n
        for site, device, d, reason, n in _rows(
            cur,
            "SELECT site, device, (ts AT TIME ZONE %(tz)s)::date, coalesce(reason, '-'),"
            " count(*) FROM device_records WHERE kind = 'reject' AND (%(day)s::date IS NULL"
            " OR (ts AT TIME ZONE %(tz)s)::date = %(day)s) GROUP BY 1, 2, 3, 4",
            params,
        ):
            bucket = entry(site, device)["days"][d.isoformat()]
            bucket["rejects"] += n
            bucket["rejects_by_reason"][reason] = n
        for site, device, d, n in _rows(
            cur,
            "SELECT site, device, (at AT TIME ZONE %(tz)s)::date, count(*) FROM conflicts"
            " WHERE %(day)s::date IS NULL OR (at AT TIME ZONE %(tz)s)::date = %(day)s"
            " GROUP BY 1, 2, 3",
            params,
        ):
            entry(site, device)["days"][d.isoformat()]["conflicts"] += n
        unattributed: dict[str, int] = {}
        for site, device, d, reason, n in _rows(
            cur,
            "SELECT site, device, (at AT TIME ZONE %(tz)s)::date, reason, count(*) FROM quarantine"
            " WHERE %(day)s::date IS NULL OR (at AT TIME ZONE %(tz)s)::date = %(day)s"
            " GROUP BY 1, 2, 3, 4",
            params,
        ):
            if site is None or device is None:
                unattributed[reason] = unattributed.get(reason, 0) + n
                continue
            bucket = entry(site, device)["days"][d.isoformat()]
            bucket["kept_apart"][reason] = n
        unattributed_alerts = 0
        for site, device, d, kind, n in _rows(
            cur,
            "SELECT site, device, (at AT TIME ZONE %(tz)s)::date, kind, count(*) FROM alerts"
            " WHERE %(day)s::date IS NULL OR (at AT TIME ZONE %(tz)s)::date = %(day)s"
            " GROUP BY 1, 2, 3, 4",
            params,
        ):
            if site is None or device is None:
                unattributed_alerts += n
                continue
            entry(site, device)["days"][d.isoformat()]["alerts_by_kind"][kind] = n
    out = []
    for key in sorted(devices):
        e = devices[key]
        days = [{"day": d, **_finish(v)} for d, v in sorted(e.pop("days").items())]
        totals = _finish(_total(days))
        out.append({**e, "confirmed_through": e["through"], **totals, "days": days})
    return {
        "day": day.isoformat() if day else None,
        "timezone": tz,
        "devices": out,
        "unattributed": {"kept_apart": unattributed, "alerts": unattributed_alerts},
    }


def _empty_day() -> dict[str, Any]:
    return {
        "events": 0,
        "by_op": {},
        "rejects": 0,
        "rejects_by_reason": {},
        "conflicts": 0,
        "kept_apart": {},
        "alerts_by_kind": {},
    }


def _total(days: list[dict[str, Any]]) -> dict[str, Any]:
    total = _empty_day()
    for d in days:
        for k in ("events", "rejects", "conflicts"):
            total[k] += d[k]
        for k in ("by_op", "rejects_by_reason", "kept_apart", "alerts_by_kind"):
            for name, n in d[k].items():
                total[k][name] = total[k].get(name, 0) + n
    return total


def _finish(day: dict[str, Any]) -> dict[str, Any]:
    """Add the scan rate (accepted ÷ attempts, the provincial plans' 95–100 % figure) and the
    alert count."""
    attempts = day["events"] + day["rejects"]
    return {
        **day,
        "scan_rate": round(day["events"] / attempts, 4) if attempts else None,
        "alerts": sum(day["alerts_by_kind"].values()),
    }


def _counts(named: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(named.items())) or "-"


def render(figures: dict[str, Any]) -> str:
    """The report as text."""
    when = figures["day"] or "all days"
    lines = [f"tracescan-central report ({when}, {figures['timezone']})"]
    for d in figures["devices"]:
        gaps = ", ".join(f"{a}..{b}" if a != b else str(a) for a, b in d["open_gaps"]) or "none"
        state = "" if d["enrolled"] else "  (NOT ENROLLED)"
        lines += [
            "",
            f"{d['site']}/{d['device']}{state}",
            f"  confirmed through seq {d['through']} (highest seen {d['head']}); open gaps: {gaps}",
            "  day          events  rejects  scan rate  conflicts  kept apart  alerts",
        ]
        for day in d["days"]:
            rate = f"{100 * day['scan_rate']:.1f} %" if day["scan_rate"] is not None else "-"
            lines.append(
                f"  {day['day']:<10} {day['events']:>8} {day['rejects']:>8} {rate:>10}"
                f" {day['conflicts']:>10} {sum(day['kept_apart'].values()):>11}"
                f" {day['alerts']:>7}"
            )
        lines.append(f"  rejects by reason: {_counts(d['rejects_by_reason'])}")
        if d["kept_apart"]:
            lines.append(f"  kept apart: {_counts(d['kept_apart'])}")
        if d["alerts"]:
            label = {"returned_to_market": "回流 returned_to_market"}
            named = {label.get(k, k): v for k, v in d["alerts_by_kind"].items()}
            lines.append(f"  alerts: {_counts(named)}")
    un = figures["unattributed"]
    if un["kept_apart"] or un["alerts"]:
        lines += ["", f"not attributable to a device: {_counts(un['kept_apart'])}"]
    return "\n".join(lines)
