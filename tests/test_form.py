"""pk2d form: the XLSForm of the contract converts (pyxform, ODK Validate), asks each contract column once under
its name with the contract's types, ranges and codes, offers the region table as cascading lists, and is the same
bytes for the same inputs."""
from __future__ import annotations

import csv
import shutil
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from pyxform.xls2xform import convert

from pk2d import form, parse, paths, rawio
from pk2d.cli import main

TEAM = paths.RAW_DIR / "SINTETIS_wilayah.csv"
NS = {"h": "http://www.w3.org/1999/xhtml", "x": "http://www.w3.org/2002/xforms"}
JR = "{http://openrosa.org/javarosa}"


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    """The form without and with the team's region list."""
    d = tmp_path_factory.mktemp("form")
    return {"plain": form.write_form(d / "plain.xlsx"), "team": form.write_form(d / "team.xlsx", regions=TEAM)}


@pytest.fixture(scope="module")
def xforms(written) -> dict[str, ET.Element]:
    return {k: ET.fromstring(convert(str(p)).xform) for k, p in written.items()}


def _binds(root: ET.Element) -> dict[str, dict]:
    return {b.get("nodeset"): dict(b.attrib) for b in root.iter(f"{{{NS['x']}}}bind")}


def _items(root: ET.Element, list_name: str) -> list[dict]:
    inst = next(i for i in root.iter(f"{{{NS['x']}}}instance") if i.get("id") == list_name)
    return [{c.tag.split("}")[1]: c.text for c in item} for item in inst.iter(f"{{{NS['x']}}}item")]


def _itemset(root: ET.Element, question: str) -> str:
    ref = next(e for e in root.iter()
               if e.get("ref", "").endswith("/" + question) and e.find("x:itemset", NS) is not None)
    return ref.find("x:itemset", NS).get("nodeset")


def _region_table(team: Path | None) -> pd.DataFrame:
    """The region rows the form must offer: the shipped list, plus the team's rows it does not have."""
    ref = pd.read_csv(paths.REGIONS_FILE, dtype=str, keep_default_na=False)
    if team is None:
        return ref
    extra = pd.read_csv(team, dtype=str, keep_default_na=False)
    return pd.concat([ref, extra]).drop_duplicates(["kode", "tingkat"], ignore_index=True)


@pytest.mark.parametrize("which", ["plain", "team"])
def test_the_form_converts_without_warnings_and_passes_odk_validate(written, which):
    warnings: list[str] = []
    convert(str(written[which]), warnings=warnings)
    assert warnings == [], "pyxform warnings:\n" + "\n".join(warnings)
    from pyxform.validators import odk_validate

    if shutil.which("java") is None or not odk_validate.install_exists():
        pytest.skip("ODK Validate needs Java and pyxform's bundled ODK_Validate.jar; not found here")
    warnings = []
    convert(str(written[which]), warnings=warnings, validate=True)  # raises ODKValidateError on an invalid XForm
    assert warnings == [], "ODK Validate warnings:\n" + "\n".join(warnings)


def test_every_text_is_in_both_languages(xforms):
    texts = {t.get("lang"): {e.get("id"): "".join(e.itertext()).strip() for e in t}
             for t in xforms["team"].iter(f"{{{NS['x']}}}translation")}
    assert sorted(texts) == sorted(form.LANGUAGES.values())
    ids, en = texts["Bahasa Indonesia (id)"], texts["English (en)"]
    assert set(ids) == set(en) and all(v not in ("", "-") for v in (*ids.values(), *en.values()))
    assert {k for k in ids if k.endswith(":jr:constraintMsg")} >= {"/data/anggota/umur:jr:constraintMsg",
                                                                 "/data/cek_kepala_keluarga:jr:constraintMsg"}
    translated = [k for k in ids if not k.startswith(("provinsi-", "kabupaten-", "kecamatan-", "desa-"))
                  and ":label" in k or k.endswith((":hint", ":jr:constraintMsg"))]
    assert sum(ids[k] != en[k] for k in translated) > 0.9 * len(translated)  # questions really are translated


def test_every_contract_column_is_asked_once_under_its_name(xforms):
    for which, root in xforms.items():
        leaves = [n.rsplit("/", 1)[1] for n in _binds(root) if not n.startswith("/data/meta/")]
        contract = [c["name"] for c in rawio.columns("keluarga")] + \
                   [c["name"] for c in rawio.columns("anggota") if c["name"] != "no_kk"]
        assert sorted(leaves) == sorted(contract + list(form.HELPERS)), which
        binds = _binds(root)
        for c in rawio.columns("keluarga"):
            group = "wilayah" if c["name"] in form.WILAYAH else "desain" if c["name"] in form.DESAIN else "keluarga"
            assert f"/data/{group}/{c['name']}" in binds
        assert "/data/anggota/nik" in binds and "/data/anggota/no_kk" not in binds  # a member's No. KK is its family's


def test_types_constraints_and_required_follow_the_contract(xforms):
    b = _binds(xforms["team"])
    umur = b["/data/anggota/umur"]
    assert (umur["type"], umur["constraint"], umur["required"]) == ("int", ". >= 0 and . <= 110", "true()")
    assert "tanggal_lahir" in umur["relevant"] and "= ''" in umur["relevant"]
    no_kk = b["/data/keluarga/no_kk"]
    assert (no_kk["type"], no_kk["constraint"], no_kk["required"]) == ("string", "regex(., '^[0-9]{16}$')", "true()")
    assert b["/data/anggota/nik"]["constraint"] == "regex(., '^[0-9]{16}$')"
    tw = b["/data/keluarga/tanggal_wawancara"]
    assert tw["type"] == "date" and tw["constraint"].startswith(". <= today()") and f"{JR}constraintMsg" in tw
    assert b["/data/anggota/tanggal_lahir"]["constraint"] == ". <=  /data/keluarga/tanggal_wawancara "
    assert (b["/data/wilayah/rt"]["type"], b["/data/wilayah/rt"]["constraint"]) == ("int", ". >= 1 and . <= 999")
    assert b["/data/keluarga/luas_lantai_m2"]["type"] == "decimal"
    ukp = b["/data/anggota/usia_kawin_pertama"]
    status = next(c for c in rawio.columns("anggota") if c["name"] == "status_kawin")["codes"]
    assert {s for s in status if f"'{s}'" in ukp["relevant"]} == set(status) - {form.NEVER_MARRIED}
    assert ukp["constraint"].endswith(". <=  ../umur_hitung ")
    for table in ("keluarga", "anggota"):
        for c in rawio.columns(table):
            node = next((n for n in b if n.endswith("/" + c["name"])
                         and (table == "anggota") == n.startswith("/data/anggota/")), None)
            if node is None or "calculate" in b[node] or c["name"] in ("umur", "usia_kawin_pertama",
                                                                       "imunisasi_lengkap"):
                continue  # member no_kk (not asked), nama_* from the chosen code, required when relevant
            assert (b[node].get("required") == "true()") == (c.get("nullable", True) is False), c["name"]
    head = b["/data/cek_kepala_keluarga"]
    assert head["constraint"].strip() == "/data/jumlah_kepala  = 1" and head["required"] == "true()"
    assert b["/data/jumlah_kepala"]["calculate"] == "sum( /data/anggota/kepala_hitung )"
    assert f"'{form.HEAD}'" in b["/data/anggota/kepala_hitung"]["calculate"]
    msgs = [t for t in xforms["team"].iter(f"{{{NS['x']}}}text")
            if t.get("id") == "/data/cek_kepala_keluarga:jr:constraintMsg"]
    assert len(msgs) == 2 and len({"".join(m.itertext()) for m in msgs}) == 2  # Indonesian and English


def test_code_and_yesno_lists_match_the_contract_and_parse_back(xforms):
    root = xforms["plain"]
    c = rawio.load_contract()
    for table in ("keluarga", "anggota"):
        for spec in rawio.columns(table):
            if spec["type"] != "code":
                continue
            items = _items(root, spec["name"])
            assert {i["name"] for i in items} == {str(k) for k in spec["codes"]}, spec["name"]
            for lang in form.LANGUAGES.values():
                labels = [t for t in root.iter(f"{{{NS['x']}}}translation") if t.get("lang") == lang][0]
                texts = {e.get("id"): "".join(e.itertext()).strip() for e in labels}
                shown = [texts[i["itextId"]] for i in items]
                got = parse.parse_code(pd.Series([i["name"] for i in items] + shown), spec).tolist()
                assert got == [i["name"] for i in items] * 2, (spec["name"], lang, shown)
    yesno = _items(root, "yesno")
    assert [i["name"] for i in yesno] == ["ya", "tidak"]
    for lang in form.LANGUAGES.values():
        texts = {e.get("id"): "".join(e.itertext()).strip()
                 for t in root.iter(f"{{{NS['x']}}}translation") if t.get("lang") == lang for e in t}
        values = ["ya", "tidak"] + [texts[i["itextId"]] for i in yesno]
        assert parse.parse_yesno(pd.Series(values)).tolist() == [True, False, True, False], lang
    assert {s for s in (c["yes_values"] + c["no_values"])} >= {"ya", "tidak"}


def test_region_lists_are_the_region_table_and_cascade(xforms, written):
    for which, team in (("plain", None), ("team", TEAM)):
        root, table = xforms[which], _region_table(team)
        for level in form.LEVELS:
            rows = table[table["tingkat"] == level]
            if rows.empty:  # no list: a typed code with its format checked
                b = _binds(root)[f"/data/wilayah/kode_{level}"]
                assert "regex(., '^[0-9]{" + str(form.DIGITS[level]) + "}$')" in b["constraint"], (which, level)
                assert "calculate" not in _binds(root)[f"/data/wilayah/nama_{level}"]
                continue
            items = _items(root, level)
            undotted = rows["kode"].str.replace(".", "", regex=False)
            assert sorted(i["name"] for i in items) == sorted(undotted), (which, level)
            assert "calculate" in _binds(root)[f"/data/wilayah/nama_{level}"]
            if level in form.PARENT:
                parent = form.PARENT[level]
                assert all(i[parent] == i["name"][:form.DIGITS[parent]] for i in items)
                assert f"[{parent}= /data/wilayah/kode_{parent} " in _itemset(root, f"kode_{level}")
    # with the team's list, every kabupaten offered leads to kecamatan, every kecamatan offered to desa
    root = xforms["team"]
    for level, child in (("kabupaten", "kecamatan"), ("kecamatan", "desa")):
        parents = {i[level] for i in _items(root, child)}
        offered = {i["name"] for i in _items(root, level) if i.get("aktif", "1") == "1"}
        assert offered == parents and offered
    assert "aktif='1'" in _itemset(root, "kode_kabupaten")


def test_english_default_language_and_cli(tmp_path, capsys):
    out = tmp_path / "sub" / "form_en.xlsx"
    assert main(["form", "--lang", "en", "--regions", str(TEAM), "--out", str(out)]) == 0
    assert out.is_file() and str(out) in capsys.readouterr().out
    root = ET.fromstring(convert(str(out)).xform)
    default = [t.get("lang") for t in root.iter(f"{{{NS['x']}}}translation") if t.get("default") == "true()"]
    assert default == ["English (en)"]
    assert root.find("h:head/h:title", NS).text == form.build_form("en")["settings"][0]["form_title"]
    assert form.build_form("id")["settings"][0]["default_language"] == "Bahasa Indonesia (id)"


def _bad(tmp_path, name: str, rows: list[list[str]]) -> Path:
    p = tmp_path / name
    with p.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return p


@pytest.mark.parametrize("case, expect", [
    ("missing", "does not exist"),
    ("folder", "is a folder"),
    ("no_tingkat", "missing: tingkat"),
    ("bad_code", "row 3: kode is not a desa code"),
    ("orphan_desa", "row 2: desa 63.02.06.2099 lies in kecamatan 63.02.06"),
    ("wrong_parent", "row 2: kode_induk"),
    ("unknown_kabupaten", "kecamatan 64.01.01 lies in kabupaten 64.01"),
    ("binary", "not UTF-8"),
])
def test_a_bad_region_list_is_a_clear_message_and_exit_2(tmp_path, capsys, case, expect):
    head = ["kode", "tingkat", "nama", "kode_induk"]
    path = {
        "missing": tmp_path / "nope.csv",
        "folder": tmp_path,
        "no_tingkat": _bad(tmp_path, "a.csv", [["kode", "nama"], ["63.02.06", "X"]]),
        "bad_code": _bad(tmp_path, "b.csv", [head, ["63.02.06", "kecamatan", "X", "63.02"],
                                             ["630206201", "desa", "Y", "63.02.06"]]),
        "orphan_desa": _bad(tmp_path, "c.csv", [head, ["63.02.06.2099", "desa", "Y", "63.02.06"]]),
        "wrong_parent": _bad(tmp_path, "d.csv", [head, ["63.02.06", "kecamatan", "X", "63.03"]]),
        "unknown_kabupaten": _bad(tmp_path, "e.csv", [head, ["64.01.01", "kecamatan", "X", "64.01"]]),
        "binary": tmp_path / "f.csv",
    }[case]
    if case == "binary":
        path.write_bytes(b"kode,tingkat,nama\n63.02.06,kecamatan,\xff\xfe\x00\x81\n")
    out = tmp_path / "form.xlsx"
    assert main(["form", "--regions", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert expect in err and str(path) in err and "Perbaikan / fix:" in err, err
    assert "Traceback" not in err and "internal error" not in err and not out.exists()


def test_same_inputs_give_the_same_bytes(tmp_path):
    a = form.write_form(tmp_path / "a.xlsx", regions=TEAM).read_bytes()
    time.sleep(1.1)  # zip entries and workbook properties would carry the clock
    b = form.write_form(tmp_path / "b.xlsx", regions=TEAM).read_bytes()
    assert a == b
    other = form.build_form(regions=TEAM)["settings"][0]["version"], form.build_form()["settings"][0]["version"]
    assert other[0] != other[1] and all(v.startswith(f"{rawio.load_contract()['version']}.{form.FORM_REVISION}-")
                                        for v in other)  # another form, another version


def test_hints_and_labels_come_from_both_halves_of_each_meaning():
    for table in ("keluarga", "anggota"):
        for c in rawio.columns(table):
            assert c["meaning"].count(" / ") == 1, f"{c['name']}: meaning needs 'Bahasa Indonesia / English'"
    rows = {r.get("name"): r for r in form.build_form()["survey"]}
    assert rows["tahun"]["label::English (en)"] == "Survey year"
    assert rows["tahun"]["hint::Bahasa Indonesia (id)"] == "Tahun survei"
    assert "pengawas" in rows["bobot"]["hint::Bahasa Indonesia (id)"]  # the design columns are the supervisor's
