"""The README's walk-through: a new kelurahan with a new SOP, set up and run with the CLI alone.

The folder's files and the commands are read from README.md itself, so the README cannot
drift from what works. Both branches of the Lurah's decision are run to their end.
"""
import json
import re
import shlex
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from engine.cli import main
from engine.models import ProcessInstance

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_files() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    return {m.group(1): m.group(2) for m in re.finditer(r"<!-- file: (\S+) -->\n```\w+\n(.*?)\n```", text, re.S)}


def write_readme_folder(folder: Path) -> Path:
    """The README's example SOP folder, written to `folder`."""
    for name, content in readme_files().items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(content + "\n", encoding="utf-8")
    return folder


def readme_commands() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- commands -->\n```sh\n(.*?)\n```", text, re.S).group(1)
    return [shlex.split(line)[1:] for line in block.splitlines() if line.startswith("lajur ")]


def test_new_kelurahan_and_sop_from_the_readme_with_the_cli_alone(services, tmp_path, monkeypatch):
    write_readme_folder(tmp_path / "surat-domisili")
    assert {"process.bpmn", "sop.json", "forms/terima.schema.json"} <= set(readme_files())
    monkeypatch.chdir(tmp_path)
    env = {"LAJUR_DATABASE_URL": services.settings.database_url, "LAJUR_DATA_DIR": str(tmp_path / "data")}
    runner = CliRunner()

    def lajur(*args, ok=True):
        result = runner.invoke(main, list(args), env=env, catch_exceptions=False)
        assert (result.exit_code == 0) == ok, (args, result.output)
        return result.output

    out = ""
    for args in readme_commands():
        out = lajur(*args)
    assert "Menerima dan memeriksa berkas permohonan" in out  # `lajur tasks pgh.petugas` shows step 1
    lajur("start", "pgh.petugas", "surat-domisili", "--subject", "Domisili Siti Aminah")

    def open_task(user: str, subject: str) -> int:
        """The user's open step of the instance with this subject (the starter already holds step 1)."""
        lines = [line for line in lajur("tasks", user).splitlines() if subject in line]
        return int(re.findall(r"#(\d+)\s", lines[0])[0])

    def work(user: str, data: dict, subject: str = "Domisili Budi Santoso") -> None:
        task = open_task(user, subject)
        lajur("complete", user, str(task), "--data", json.dumps(data), "--claim")

    applicant = {"nama_pemohon": "Budi Santoso", "nik": "3402011203870001"}
    # instance 1: YA, then the letter is issued; instance 2: TIDAK ends it
    work("pgh.petugas", applicant)
    work("pgh.lurah", {"keputusan_lurah": "YA"})
    work("pgh.petugas", {"nomor_surat": "470/012/PGH/2026"})
    work("pgh.petugas", {**applicant, "nama_pemohon": "Siti Aminah"}, "Domisili Siti Aminah")
    work("pgh.lurah", {"keputusan_lurah": "TIDAK", "catatan": "KK belum diperbarui"}, "Domisili Siti Aminah")
    assert "[group] 0 task(s)" in lajur("tasks", "pgh.petugas")
    with services.sessions() as session:
        done = session.scalars(select(ProcessInstance).order_by(ProcessInstance.id)).all()
        assert [i.status for i in done] == ["completed", "completed"]
    versions = lajur("versions", "panggungharjo", "surat-domisili")
    assert "done 2" in versions and "(latest)" in versions
    # a wrong answer is one line and a non-zero exit, not a traceback
    lajur("start", "pgh.lurah", "surat-domisili", "--subject", "x", ok=False)
    err = runner.invoke(main, ["start", "pgh.lurah", "surat-domisili", "--subject", "x"], env=env)
    assert err.exit_code == 1 and len(err.output.strip().splitlines()) == 1 and "Traceback" not in err.output
