"""`lajur office|group`, `deploy --check`, `versions` and `diff` through the real command group."""
from __future__ import annotations


import pytest
from click.testing import CliRunner

from engine.cli import COMMAND_MODULES, main

from .test_deploy_rules import edit
from .test_readme_kelurahan import write_readme_folder


@pytest.fixture
def lajur(services, tmp_path):
    env = {"LAJUR_DATABASE_URL": services.settings.database_url, "LAJUR_DATA_DIR": str(tmp_path / "data")}
    runner = CliRunner()

    def run(*args, code=0):
        result = runner.invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)
        assert result.exit_code == code, (args, result.output)
        assert "Traceback" not in result.output
        return result.output
    return run


@pytest.fixture
def folder(tmp_path):
    return write_readme_folder(tmp_path / "surat-domisili")


def test_every_command_module_registers_commands():
    assert COMMAND_MODULES and {"office", "group", "deploy", "versions", "diff", "start", "calendar"} <= set(main.commands)


def test_office_and_group_commands(lajur):
    lajur("office", "create", "panggungharjo", "--name", "Kalurahan Panggungharjo")
    assert "already exists" in lajur("office", "create", "panggungharjo", "--name", "x", code=1)
    assert "lowercase" in lajur("office", "create", "Bad Code!", "--name", "x", code=1)
    assert "panggungharjo" in lajur("office", "list")
    lajur("group", "create", "panggungharjo", "Lurah")
    assert "already has group" in lajur("group", "create", "panggungharjo", "Lurah", code=1)
    assert "line breaks" in lajur("group", "create", "panggungharjo", "Lu\nrah", code=1)
    lajur("user", "create", "pgh.lurah", "--name", "Wahyudi", "--office", "panggungharjo", "--password", "rahasia-123")
    assert "added to" in lajur("group", "add-member", "panggungharjo", "Lurah", "pgh.lurah")
    assert "already in" in lajur("group", "add-member", "panggungharjo", "Lurah", "pgh.lurah")
    assert "pgh.lurah" in lajur("group", "list", "panggungharjo")
    assert "(its groups: Lurah)" in lajur("group", "add-member", "panggungharjo", "Carik", "pgh.lurah", code=1)
    assert "has no group 'Carik'" in lajur("user", "create", "pgh.carik", "--name", "C", "--office", "panggungharjo",
                                                "--group", "Carik", "--password", "rahasia-123", code=1)
    assert "removed from" in lajur("group", "remove-member", "panggungharjo", "Lurah", "pgh.lurah")
    assert "Lurah" in lajur("group", "list", "panggungharjo") and "pgh.lurah" not in lajur("group", "list", "panggungharjo")


def test_deploy_check_reports_and_stores_nothing(lajur, folder):
    lajur("office", "create", "panggungharjo", "--name", "Kalurahan Panggungharjo")
    out = lajur("deploy", "--check", folder)
    assert "2/2 branch(es) taken" in out and "reached an end" in out
    # TIDAK can never be chosen: the form only offers YA
    edit(folder, '"enum": ["YA", "TIDAK"]', '"enum": ["YA"]', "forms/setujui.schema.json")
    out = lajur("deploy", "--check", folder, code=1)
    assert "flow 'f_tidak': this branch was never taken" in out
    # a form no data satisfies
    edit(folder, '"enum": ["YA"]', '"enum": ["YA"], "minLength": 9', "forms/setujui.schema.json")
    assert "cannot be satisfied" in lajur("deploy", "--check", folder, code=1)
    assert "no SOP" in lajur("versions", "panggungharjo", "surat-domisili", code=1)


def test_versions_and_diff(lajur, folder):
    lajur("office", "create", "panggungharjo", "--name", "Kalurahan Panggungharjo")
    assert "groups created: Petugas Pelayanan, Lurah" in lajur("deploy", folder, "--create-groups")
    edit(folder, "<bpmn:timeDuration>PT1H</bpmn:timeDuration>", "<bpmn:timeDuration>PT2H</bpmn:timeDuration>")
    edit(folder, 'keputusan_lurah == "TIDAK"', 'keputusan_lurah != "YA"')
    edit(folder, '"catatan": {', '"alasan": {"type": "string"}, "catatan": {', "forms/setujui.schema.json")
    assert "version 2" in lajur("deploy", folder)
    out = lajur("versions", "panggungharjo", "surat-domisili")
    assert out.count("\n") == 2 and "v1" in out and "v2" in out and "(latest)" in out.splitlines()[1]
    diff = lajur("diff", "panggungharjo", "surat-domisili", 1, 2).splitlines()
    assert "~ Mutu Baku setujui: 60 min -> 120 min" in diff
    assert "~ condition f_tidak: keputusan_lurah == \"TIDAK\" -> keputusan_lurah != \"YA\"" in diff
    assert "+ field setujui.alasan: string" in diff
    assert "no SOP" not in lajur("diff", "panggungharjo", "surat-domisili", 1, 1, code=1)
    assert "has no version 9" in lajur("diff", "panggungharjo", "surat-domisili", 1, 9, code=1)


def test_deploy_with_several_problems_refuses_in_one_line(lajur, services, tmp_path, folder):
    """Three problems in the folder: `lajur deploy` names the first and counts the others on one
    line of stderr, exits non-zero and stores nothing."""
    lajur("office", "create", "panggungharjo", "--name", "Kalurahan Panggungharjo")
    edit(folder, '<bpmn:lane id="lane_lurah" name="Lurah">', '<bpmn:lane id="lane_lurah" name="">')
    edit(folder, "<bpmn:timeDuration>PT15M</bpmn:timeDuration>", "<bpmn:timeDuration>PT0M</bpmn:timeDuration>")
    edit(folder, 'keputusan_lurah == "TIDAK"', 'keputusan_camat == "TIDAK"')
    env = {"LAJUR_DATABASE_URL": services.settings.database_url, "LAJUR_DATA_DIR": str(tmp_path / "data")}
    result = CliRunner().invoke(main, ["deploy", str(folder), "--create-groups"], env=env, catch_exceptions=False)
    assert result.exit_code != 0 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "lane_lurah" in lines[0] and lines[0].endswith("(and 2 more problems)"), lines
    assert "no SOP" in lajur("versions", "panggungharjo", "surat-domisili", code=1)
