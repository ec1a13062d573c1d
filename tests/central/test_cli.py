"""`tracescan-central` as operators run it: config errors, keys, enrolment, run, export,
report and master publish."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

from agent.records.verify import public_key_from_b64, verify_signature
from central import ledger
from hardware_sim.broker import LocalBroker, free_port
from hardware_sim.subscriber import Recorder
from tests.central.conftest import (
    LedgerProcess,
    Publisher,
    TestDevice,
    progress,
    today,
    write_config,
)
from tests.harness import wait_until


def central(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m central ARGS`."""
    return subprocess.run(
        [sys.executable, "-m", "central", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
    )


def test_every_config_error_at_once_naming_the_key_exit_78(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(
        '[central]\nkey_dri = "k"\nbatch_max = 0\ntimezone = "Mars/Base"\n'
        '[mqtt]\nport = "x"\nprotocol = "3.1.1"\npasword = "s3cret"\n'
        "[database]\ndsn = 5\n[extra]\n"
    )
    out = central("pubkey", "--config", str(cfg))
    assert out.returncode == 78
    err = out.stderr
    for expected in (
        "central.key_dri: unknown key (did you mean 'key_dir'?)",
        "central.batch_max: 0 is outside",
        "central.timezone: 'Mars/Base'",
        "mqtt.port: must be an integer",
        "mqtt.protocol: the ledger needs MQTT 5",
        "mqtt.pasword: unknown key (did you mean 'password'?)",
        "database.dsn: must be a string",
        "extra: unknown section",
    ):
        assert expected in err, err
    assert "s3cret" not in err
    assert "Traceback" not in err
    missing = central("run", "--config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 78
    assert "cannot read" in missing.stderr


def test_pubkey_is_created_once_kept_private_and_stable(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "postgresql://x@127.0.0.1:1/x", 1883)
    first = central("pubkey", "--config", str(cfg))
    assert first.returncode == 0, first.stderr
    assert len(base64.b64decode(first.stdout.strip())) == 32
    assert central("pubkey", "--config", str(cfg)).stdout == first.stdout
    key_dir = tmp_path / "keys"
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((key_dir / "signing.key").stat().st_mode) == 0o600
    os.chmod(key_dir / "signing.key", 0o644)
    exposed = central("pubkey", "--config", str(cfg))
    assert exposed.returncode == 78
    assert "chmod 0600" in exposed.stderr


def test_an_unreachable_database_names_the_key_and_exits_78(tmp_path: Path) -> None:
    dsn = f"postgresql://tracescan:hunter2@127.0.0.1:{free_port()}/tracescan"
    cfg = write_config(tmp_path, dsn, 1883)
    for args in (["run"], ["report"], ["export", "--site", "s", "--device", "d"]):
        out = central(*args, "--config", str(cfg))
        assert out.returncode == 78, out.stderr
        assert "database.dsn: cannot connect" in out.stderr
        assert "hunter2" not in out.stderr
        assert "Traceback" not in out.stderr


def test_enroll_refuses_another_key_unless_replace(tmp_path: Path, dsn: str) -> None:
    cfg = str(write_config(tmp_path, dsn, 1883))
    dev, other = TestDevice(), TestDevice(seed=3)
    args = ["enroll", "--config", cfg, "--site", dev.site, "--device", dev.device]
    assert central(*args, "--pubkey", dev.pubkey).returncode == 0
    again = central(*args, "--pubkey", dev.pubkey)
    assert again.returncode == 0
    assert "already enrolled" in again.stdout
    refused = central(*args, "--pubkey", other.pubkey)
    assert refused.returncode == 1
    assert "--replace" in refused.stderr
    assert central(*args, "--pubkey", other.pubkey, "--replace").returncode == 0
    assert central(*args, "--pubkey", "not base64!").returncode == 2
    assert central(*args[:-2], "--device", "bad/name", "--pubkey", dev.pubkey).returncode == 2
    conn = ledger.connect(dsn)
    assert (
        ledger.enrolled_key(conn, dev.site, dev.device) == other.key.public_key().public_bytes_raw()
    )
    conn.close()


def test_run_stores_export_is_byte_identical_report_and_sigterm_exits_0_in_5s(
    tmp_path: Path, dsn: str, ledger_broker: LocalBroker, publisher: Publisher
) -> None:
    cfg = write_config(tmp_path, dsn, ledger_broker.port)
    dev = TestDevice()
    enroll = central(
        "enroll",
        "--config",
        str(cfg),
        "--site",
        dev.site,
        "--device",
        dev.device,
        "--pubkey",
        dev.pubkey,
    )
    assert enroll.returncode == 0, enroll.stderr
    proc = LedgerProcess(cfg).start()
    try:
        events = dev.events(30)
        time.sleep(1.0)  # subscribed
        publisher.send(dev.topic(), events)
        publisher.send(dev.topic("reject"), [dev.record("reject", reason="commodity_barcode")])
        conn = ledger.connect(dsn)
        assert wait_until(lambda: progress(conn, dev) == (30, 30))
        conn.close()
        t0 = time.monotonic()
        status, err = proc.terminate(timeout=10)
        assert status == 0, err
        assert time.monotonic() - t0 < 5.0
        assert "Traceback" not in err
    finally:
        proc.stop()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "central",
            "export",
            "--config",
            str(cfg),
            "--site",
            dev.site,
            "--device",
            dev.device,
        ],
        capture_output=True,
        check=True,
    )
    assert out.stdout == b"".join(e + b"\n" for e in events)

    rep = central("report", "--config", str(cfg), "--json", "--day", today())
    assert rep.returncode == 0, rep.stderr
    figures = json.loads(rep.stdout)
    (d,) = figures["devices"]
    assert (d["site"], d["device"], d["through"], d["events"], d["rejects"]) == (
        dev.site,
        dev.device,
        30,
        30,
        1,
    )
    assert d["open_gaps"] == []
    assert d["rejects_by_reason"] == {"commodity_barcode": 1}
    assert d["scan_rate"] == round(30 / 31, 4)
    assert d["days"][0]["day"] == today()
    text = central("report", "--config", str(cfg))
    assert f"{dev.site}/{dev.device}" in text.stdout
    assert "confirmed through seq 30" in text.stdout


def test_master_publish_signs_a_retained_envelope_with_a_growing_version(
    tmp_path: Path, dsn: str, ledger_broker: LocalBroker
) -> None:
    cfg = write_config(tmp_path, dsn, ledger_broker.port)
    body = tmp_path / "blocklist.json"
    body.write_text(json.dumps({"entries": [{"type": "batch", "value": "B1", "reason": "recall"}]}))
    pub = ["master", "publish", "--config", str(cfg), "--kind", "blocklist", "--file", str(body)]
    for _ in range(2):
        out = central(*pub, "--site", "site-01", "--device", "dev-a")
        assert out.returncode == 0, out.stderr
    site_wide = central(*pub, "--site", "site-01")
    assert site_wide.returncode == 0, site_wide.stderr
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"supplier": "S", "codes": ["81234560000000011234"]}))
    out = central(
        "master",
        "publish",
        "--config",
        str(cfg),
        "--kind",
        "manifest",
        "--file",
        str(manifest),
        "--site",
        "site-01",
        "--device",
        "dev-a",
        "--doc",
        "PO-1",
    )
    assert out.returncode == 0, out.stderr
    body.write_text(json.dumps({"version": 3, "entries": []}))
    refused = central(*pub, "--site", "site-01")
    assert refused.returncode == 1
    assert "remove `version`" in refused.stderr

    central_key = public_key_from_b64(central("pubkey", "--config", str(cfg)).stdout)
    seen = Recorder("127.0.0.1", ledger_broker.port, "tracescan/v1/#")  # retained: delivered now
    try:
        assert seen.wait_for(lambda r: len(r.messages) >= 3)
    finally:
        seen.close()
    by_topic = {m.topic: (json.loads(m.payload), m.retain) for m in seen.messages}
    dev_env, retained = by_topic["tracescan/v1/site-01/dev-a/master/blocklist"]
    assert retained
    assert set(dev_env) == {"v", "kind", "version", "site", "device", "issued", "body", "sig"}
    assert (dev_env["v"], dev_env["kind"], dev_env["version"]) == (1, "blocklist", 2)
    assert (dev_env["site"], dev_env["device"]) == ("site-01", "dev-a")
    assert dev_env["body"] == {"entries": [{"type": "batch", "value": "B1", "reason": "recall"}]}
    assert verify_signature(dev_env, central_key)
    site_env, _ = by_topic["tracescan/v1/site-01/master/blocklist"]
    assert (site_env["device"], site_env["version"]) == ("*", 1)
    man, _ = by_topic["tracescan/v1/site-01/dev-a/master/manifest/PO-1"]
    assert man["body"]["doc"] == "PO-1"
    assert verify_signature(man, central_key)
