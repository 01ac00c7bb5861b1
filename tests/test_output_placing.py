"""Outputs that appear while a command works are never replaced without --force.

`rdpg export`, `rdpg plot` and `rdpg evaluate --video` check that their output does not exist, work (seconds to
minutes), then move the finished file into place. Two commands writing the same output (a script exporting
in parallel, the default output of two exports of one run) both passed the check, and the last rename
replaced the first command's file: its work was lost, and both said they had written it.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rdpg_cli import export, recording
from rdpg_cli.cli import app
from rdpg_cli.input_files import make_folder, place_new, remove_made_folders, temporary_name
from conftest import TINY, rdpg


# ------------------------------------------------------------------------------------------------ place_new


def _link_failing(error: int):
    def link(*args, **kwargs):
        raise OSError(error, os.strerror(error))
    return link


def _link_answered_exists(real_link):
    """Over NFS a retransmitted link request can be answered "exists" after the server made the link."""
    def link(src, dst, **kwargs):
        real_link(src, dst, **kwargs)
        raise FileExistsError(errno.EEXIST, "File exists")
    return link


@pytest.mark.parametrize("links", ["hard links", "none (FAT)", "none (FUSE)", "made, answered exists (NFS)"])
def test_a_file_is_placed_where_nothing_is_and_its_temporary_name_goes(links: str, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch):
    link = {"hard links": os.link, "none (FAT)": _link_failing(errno.EPERM),
            "none (FUSE)": _link_failing(errno.EOPNOTSUPP),
            "made, answered exists (NFS)": _link_answered_exists(os.link)}[links]
    monkeypatch.setattr(os, "link", link)
    tmp = tmp_path / ".tmp"
    tmp.write_text("new")
    place_new(tmp, tmp_path / "out")
    assert [(p.name, p.read_text()) for p in tmp_path.iterdir()] == [("out", "new")]


@pytest.mark.parametrize("there", ["file", "link to nothing", "folder"])
@pytest.mark.parametrize("hard_links", [True, False])
def test_what_is_already_there_is_left_as_it_is(there: str, hard_links: bool, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch):
    if not hard_links:  # FAT, exFAT: the check and the move are two steps
        monkeypatch.setattr(os, "link", _link_failing(errno.EPERM))
    tmp, out = tmp_path / ".tmp", tmp_path / "out"
    tmp.write_text("new")
    if there == "file":
        out.write_text("mine")
    elif there == "link to nothing":
        out.symlink_to("elsewhere")
    else:
        out.mkdir()
    with pytest.raises(FileExistsError):
        place_new(tmp, out)
    assert tmp.read_text() == "new"  # left for its owner to remove
    if there == "file":
        assert out.read_text() == "mine"
    elif there == "link to nothing":
        assert os.readlink(out) == "elsewhere"
    else:
        assert out.is_dir() and not out.is_symlink()


def test_another_failure_to_link_is_not_taken_for_an_existing_output(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(os, "link", _link_failing(errno.ENOSPC))
    tmp = tmp_path / ".tmp"
    tmp.write_text("new")
    with pytest.raises(OSError) as raised:
        place_new(tmp, tmp_path / "out")
    assert raised.value.errno == errno.ENOSPC


def test_made_folders_are_taken_back_deepest_first_and_only_while_empty(tmp_path: Path):
    """What plot, video and export make for an output they end up not placing. "a/.." names no folder to remove:
    it stopped the removal before "a", which stayed."""
    made = make_folder(tmp_path / "a" / ".." / "b" / "c")
    assert made == [tmp_path / "a" / ".." / "b" / "c", tmp_path / "a" / ".." / "b", tmp_path / "a"]
    assert (tmp_path / "b" / "c").is_dir() and (tmp_path / "a").is_dir()
    remove_made_folders(made)
    assert list(tmp_path.iterdir()) == []
    made = make_folder(tmp_path / "x" / "y")
    (tmp_path / "x" / "theirs.txt").write_text("put there meanwhile")
    remove_made_folders(made)
    assert [p.name for p in tmp_path.iterdir()] == ["x"] and [p.name for p in (tmp_path / "x").iterdir()] == [
        "theirs.txt"]
    assert make_folder(tmp_path / "x") == []  # there already: nothing of it is rdpg's to remove
    # Through "..", a name listed as made may be a file (new/f2/../../notes.txt): the folders above still go.
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        make_folder(tmp_path / "new" / "f2" / ".." / ".." / "notes.txt" / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "x"]


@pytest.mark.parametrize("there", ["nothing", "a folder holding something", "an empty folder", "a file",
                                   "a link to nothing"])
def test_a_folder_is_placed_only_where_nothing_is(there: str, tmp_path: Path):
    """A rename replaces an empty folder: the name is claimed with a folder of rdpg's own first."""
    tmp, out = tmp_path / ".tmp", tmp_path / "out"
    tmp.mkdir()
    (tmp / "saved_model.pb").write_text("new")
    if there == "a folder holding something":
        out.mkdir()
        (out / "saved_model.pb").write_text("mine")
    elif there == "an empty folder":
        out.mkdir()
    elif there == "a file":
        out.write_text("mine")
    elif there == "a link to nothing":
        out.symlink_to("elsewhere")
    if there == "nothing":
        place_new(tmp, out)
        assert (out / "saved_model.pb").read_text() == "new" and not tmp.exists()
        return
    with pytest.raises(FileExistsError):
        place_new(tmp, out)
    if there == "a link to nothing":
        assert os.readlink(out) == "elsewhere"
    elif there == "an empty folder":
        assert out.is_dir() and not list(out.iterdir())
    else:
        assert (out / "saved_model.pb" if out.is_dir() else out).read_text() == "mine"
    assert (tmp / "saved_model.pb").read_text() == "new"


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_path_through_a_file_is_not_taken_for_an_existing_output(kind: str, tmp_path: Path):
    tmp = tmp_path / ".tmp"
    if kind == "file":
        tmp.write_text("new")
    else:
        tmp.mkdir()
    (tmp_path / "notes").write_text("a file, not a folder")
    with pytest.raises(NotADirectoryError):
        place_new(tmp, tmp_path / "notes" / "out")
    assert tmp.exists()


def test_temporary_names_tell_whose_they_are_and_never_meet():
    """Named after the process alone, two processes of the same id (in two containers sharing a folder) wrote
    one temporary file and placed each other's bytes."""
    names = {temporary_name(".rdpg-export-", ".keras") for _ in range(100)}
    assert len(names) == 100
    assert all(n.startswith(f".rdpg-export-{os.getpid()}-") and n.endswith(".keras") and len(n) < 40 for n in names)


# -------------------------------------------------------------------------------------------- the commands


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("placing")
    rdpg("train", "--preset", "pendulum", "--steps", "200", *TINY, "--run-dir", "run", "-q", cwd=folder)
    return folder / "run"


def cli(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stderr


def another_export_writes(other: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While this export writes its artifact, another one puts its own at ``other`` (a file, or for a
    SavedModel a folder holding one)."""
    def racing(writer):
        def write(model, meta, dest):
            writer(model, meta, dest)
            if dest.is_dir():
                other.mkdir()
                (other / "saved_model.pb").write_text("the other export's")
            else:
                other.write_text("the other export's")
        return write

    for name, writer in list(export.WRITERS.items()):
        monkeypatch.setitem(export.WRITERS, name, racing(writer))


@pytest.mark.parametrize(("fmt", "appears"), [("keras", "policy.keras"), ("keras", "policy.keras.json"),
                                              ("savedmodel", "savedmodel")])
def test_an_export_that_appeared_meanwhile_is_left_as_it_is(fmt: str, appears: str, tmp_path: Path,
                                                            tiny_run: Path, monkeypatch: pytest.MonkeyPatch):
    output = tmp_path / ("savedmodel" if fmt == "savedmodel" else "policy.keras")
    other = tmp_path / appears
    another_export_writes(other, monkeypatch)
    code, err = cli("export", tiny_run, "--format", fmt, "--output", output)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert f"--output {output}: {other} appeared while exporting" in err, err
    assert "use --force to overwrite it" in err
    # The other export's file stays, and nothing of this one is left: neither its half of a pair nor a temporary.
    assert [p.name for p in tmp_path.iterdir()] == [appears]
    found = other / "saved_model.pb" if fmt == "savedmodel" else other
    assert found.read_text() == "the other export's"


def test_an_export_that_fails_between_its_two_moves_takes_back_the_first(tmp_path: Path, tiny_run: Path,
                                                                          monkeypatch: pytest.MonkeyPatch):
    """A sidecar placed without its file would describe a file that is not there (or another one)."""
    real_place_new, moves = export.place_new, []

    def failing_second(tmp, dest):
        moves.append(dest)
        if len(moves) == 2:
            raise OSError(errno.EIO, "Input/output error")
        real_place_new(tmp, dest)

    monkeypatch.setattr(export, "place_new", failing_second)
    output = tmp_path / "policy.keras"
    code, err = cli("export", tiny_run, "--format", "keras", "--output", output)
    assert code == 2 and err.count("\n") == 1, err
    assert f"--output {output}: cannot write it (Input/output error)" in err, err
    assert moves == [tmp_path / "policy.keras.json", output]
    assert not list(tmp_path.iterdir())


def test_with_force_an_export_replaces_what_appeared_meanwhile(tmp_path: Path, tiny_run: Path,
                                                               monkeypatch: pytest.MonkeyPatch):
    output = tmp_path / "policy.keras"
    another_export_writes(output, monkeypatch)
    code, err = cli("export", tiny_run, "--format", "keras", "--output", output, "--force", "--quiet")
    assert code == 0, err
    assert output.read_bytes()[:2] == b"PK"  # the .keras zip, not the other export's text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy.keras", "policy.keras.json"]


def test_a_plot_that_appeared_while_drawing_is_left_as_it_is(tmp_path: Path, tiny_run: Path,
                                                             monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from rdpg_cli import plot as plotting

    output = tmp_path / "c.png"
    real_savefig = Figure.savefig

    def racing(self, fname, **kwargs):
        real_savefig(self, fname, **kwargs)
        output.write_bytes(b"the other plot")

    monkeypatch.setattr(Figure, "savefig", racing)
    with pytest.raises(plotting.PlotError, match=r"c\.png: appeared while drawing .* use --force to replace it"):
        plotting.render([tiny_run], output=output)
    assert [(p.name, p.read_bytes()) for p in tmp_path.iterdir()] == [("c.png", b"the other plot")]
    plotting.render([tiny_run], output=output, force=True)
    assert output.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["c.png"]


def test_a_plot_is_not_drawn_through_a_link_to_nothing_without_force(tmp_path: Path, tiny_run: Path):
    pytest.importorskip("matplotlib")
    from rdpg_cli import plot as plotting

    (tmp_path / "c.png").symlink_to("elsewhere.png")
    with pytest.raises(plotting.PlotError, match=r"c\.png: already exists; use --force to replace it"):
        plotting.render([tiny_run], output=tmp_path / "c.png")
    assert [p.name for p in tmp_path.iterdir()] == ["c.png"] and (tmp_path / "c.png").is_symlink()


def test_a_video_that_appeared_while_the_episodes_ran_is_left_as_it_is(tmp_path: Path, tiny_run: Path,
                                                                       monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("imageio")
    video = tmp_path / "v.gif"
    real_reply = recording.VideoRecorder._reply

    def reply(self, expected):
        answer = real_reply(self, expected)
        if expected == "written":  # the episodes are done and the video complete: another one lands first
            video.write_text("the other video")
        return answer

    monkeypatch.setattr(recording.VideoRecorder, "_reply", reply)
    code, err = cli("evaluate", tiny_run, "--episodes", "1", "--video", video)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert f"--video {video}: appeared while the episodes ran" in err, err
    assert [(p.name, p.read_text()) for p in tmp_path.iterdir()] == [("v.gif", "the other video")]
