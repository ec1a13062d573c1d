"""agent/service/masterfiles.py: catalog and master-data files named in the local config."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.rules.catalog import CatalogError
from agent.rules.masterdata import MasterDataError
from agent.service.masterfiles import read_catalog, read_master_file


def test_catalog_rejects_a_bad_level(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("code,level,ratio,name\n8123456,pallet,1,x\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"bad\.csv:2"):
        read_catalog(path)


def test_catalog_file_problems_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"missing\.csv: cannot read"):
        read_catalog(tmp_path / "missing.csv")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"code,level,ratio,name\n8123456,unit,1,caf\xe9\n")
    with pytest.raises(CatalogError, match=r"latin\.csv: not UTF-8"):
        read_catalog(latin)
    bom = tmp_path / "bom.csv"
    bom.write_text("\ufeffcode,level,ratio,name\n8123456,unit,1,x\n", encoding="utf-8")
    assert read_catalog(bom).entries["8123456"].level == "unit"


def test_a_csv_master_file_takes_its_version_from_the_modification_time(tmp_path: Path) -> None:
    path = tmp_path / "blocklist.csv"
    path.write_text("type,value,reason\ncode,81234560000000011234,recall\n", encoding="utf-8")
    value = read_master_file("blocklist", path)
    assert value.version == int(path.stat().st_mtime)
    with pytest.raises(MasterDataError, match=r"nothing\.json: cannot read"):
        read_master_file("relations", tmp_path / "nothing.json")
