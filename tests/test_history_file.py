"""The history shared through a file (eyeshim/history_file.py, ``history_file``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, List, Tuple

import pytest
from interpreters import POSIX_ONLY, clean_env, eyeshim_run, python

from eyeshim import history_file
from eyeshim.config import Config, history_file_path
from eyeshim.history import History
from eyeshim.history_file import HistoryFile, fold, network
from eyeshim.state import ProcessState

V6, V4 = socket.AF_INET6, socket.AF_INET
NET = "2001:db8::100 192.0.2.100"


def line(when: float, kind: str, *fields: Any, net: str = NET) -> str:
    return "\t".join([str(when), net, kind, *map(str, fields)]) + "\n"


# -- folding the lines ------------------------------------------------------------------


def test_fold_applies_the_lessons_in_order() -> None:
    lines = [
        line(100, "failed", "2001:db8::1"),
        line(101, "failed", "2001:db8::1"),
        line(102, "refused", "192.0.2.1", 443),
        line(103, "refused", "192.0.2.1", 80),
        line(104, "dead", "example.org", "ipv6"),
        line(105, "failed", "192.0.2.9"),
        line(106, "ok", "192.0.2.1", 443, "ipv4"),  # 443 works again, 80 still refuses
        line(107, "forget", "192.0.2.9"),
    ]
    folded = fold(lines, now=110, net=NET, ttl=600, size=100)
    assert folded.failed == {"2001:db8::1": [101, 2]}
    assert folded.refused == {("192.0.2.1", 80): 103}
    assert folded.dead == {("example.org", V6): 104}
    assert folded.lines == len(lines)


def test_an_ok_clears_only_what_is_older_and_of_its_family() -> None:
    lines = [
        line(100, "dead", "a.example", "ipv6"),
        line(100, "dead", "b.example", "ipv4"),
        line(105, "failed", "2001:db8::1"),
        line(103, "ok", "2001:db8::1", 443, "ipv6"),  # written late, learnt earlier
    ]
    folded = fold(lines, now=110, net=NET, ttl=600, size=100)
    assert folded.failed == {"2001:db8::1": [105, 1]}
    assert folded.dead == {("b.example", V4): 100}


def test_a_flush_forgets_everything_before_it() -> None:
    lines = [
        line(100, "failed", "2001:db8::1"),
        line(101, "dead", "a.example", "ipv6"),
        line(102, "flush"),
        line(103, "failed", "2001:db8::2"),
    ]
    folded = fold(lines, now=110, net=NET, ttl=600, size=100)
    assert list(folded.failed) == ["2001:db8::2"] and not folded.dead


def test_fold_skips_other_networks_expired_and_broken_lines() -> None:
    lines = [
        line(100, "failed", "2001:db8::1", net="2001:db8:ffff::7 198.51.100.7"),
        line(10, "failed", "2001:db8::2"),  # 100 s old with a ttl of 50
        f"100\t{NET}\tfailed\t2001:db8::",  # cut short: the address is not all there
        line(100, "refused", "192.0.2.1"),  # no port
        line(100, "dead", "x.example", "ipv9"),
        line(100, "what", "2001:db8::4"),
        "not a lesson\n",
        line(100, "failed", "2001:db8::5"),
    ]
    folded = fold(lines, now=110, net=NET, ttl=50, size=100)
    assert folded.failed == {"2001:db8::5": [100, 1]}
    assert not folded.refused and not folded.dead


@pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="no O_NOFOLLOW")
def test_appends_never_follow_a_symbolic_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    path = tmp_path / "history.tsv"
    path.symlink_to(victim)
    history, _ = shared(path)
    history.record_failure("2001:db8::1")
    assert victim.read_text() == "precious\n"
    assert history.journal is None  # said once, then went on without the file


def test_fold_keeps_the_most_recent_within_the_size() -> None:
    lines = [line(100 + i, "failed", f"2001:db8::{i}") for i in range(10)]
    folded = fold(lines, now=200, net=NET, ttl=600, size=3)
    assert list(folded.failed) == ["2001:db8::7", "2001:db8::8", "2001:db8::9"]


# -- a history and its file ---------------------------------------------------------------


def shared(path: Path, **kw: Any) -> Tuple[History, HistoryFile]:
    history = History(**kw)
    keeper = HistoryFile(str(path), history)
    keeper.load()
    history.journal = keeper.record
    return history, keeper


def lines_of(path: Path) -> List[List[str]]:
    """time, network, kind, fields... of each line."""
    return [text.split("\t") for text in path.read_text().splitlines()]


def test_what_one_history_learns_the_next_one_knows(tmp_path: Path) -> None:
    path = tmp_path / "history.tsv"
    first, _ = shared(path)
    first.record_failure("2001:db8::1")  # timed out
    first.record_failure("192.0.2.1", port=443, refused=True)
    first.record_dead_family("example.org", V6)
    assert [item[2] for item in lines_of(path)] == ["failed", "refused", "dead"]
    assert {item[1] for item in lines_of(path)} == {network()}

    second, _ = shared(path)
    assert second.failed_recently("2001:db8::1")
    assert second.refused_recently("192.0.2.1", 443) and not second.refused_recently(
        "192.0.2.1", 80
    )
    assert second.dead_family("example.org", V6) and not second.dead_family("example.org", V4)
    # Remembered as old as it is: it expires when it would have in the first.
    record = second.get("2001:db8::1")
    assert record is not None and record.last_failure is not None
    assert time.monotonic() - record.last_failure < 5


def test_the_happy_path_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "history.tsv"
    history, _ = shared(path)
    for _ in range(100):
        history.record_success("192.0.2.1", 0.01, port=443, family=V4)
    assert not path.exists()
    # A success that takes a failure back is news, once.
    history.record_failure("192.0.2.1")
    history.record_success("192.0.2.1", 0.01, port=443, family=V4)
    history.record_success("192.0.2.1", 0.01, port=443, family=V4)
    assert [item[2] for item in lines_of(path)] == ["failed", "ok"]
    assert not shared(path)[0].failed_recently("192.0.2.1")


def test_one_lesson_is_written_once_a_minute(tmp_path: Path) -> None:
    path = tmp_path / "history.tsv"
    history, _ = shared(path)
    for _ in range(5):
        history.record_failure("192.0.2.1", port=8080, refused=True)
    assert len(lines_of(path)) == 1
    # ... unless something said otherwise in between.
    history.record_success("192.0.2.1", 0.01, port=8080, family=V4)
    history.record_failure("192.0.2.1", port=8080, refused=True)
    assert [item[2] for item in lines_of(path)] == ["refused", "ok", "refused"]
    assert shared(path)[0].refused_recently("192.0.2.1", 8080)


def test_a_network_change_flushes_the_file_too(tmp_path: Path) -> None:
    path = tmp_path / "history.tsv"
    history, _ = shared(path)
    history.record_success("192.0.2.1", 0.01, "192.0.2.100")
    history.record_failure("2001:db8::1")
    assert history.observe_sources({"192.0.2.1": "198.51.100.100"})
    assert [item[2] for item in lines_of(path)][-1] == "flush"
    assert not shared(path)[0].failed_recently("2001:db8::1")


def test_lessons_of_another_network_are_not_taught(tmp_path: Path) -> None:
    path = tmp_path / "history.tsv"
    path.write_text(line(time.time(), "failed", "2001:db8::1", net="2001:db8:ffff::9 -"))
    assert not shared(path)[0].failed_recently("2001:db8::1")


def test_the_file_is_compacted_when_it_grows(tmp_path: Path) -> None:
    path = tmp_path / "history.tsv"
    history, _ = shared(path, max_entries=20)
    for i in range(600):
        history.record_failure(f"2001:db8::{i:x}")
    size = path.stat().st_size
    assert size < 2 * 20 * 100 + 16384 + 200, size  # bounded, not 600 lines
    kept = lines_of(path)
    assert len(kept) < 600
    assert all(item[2] == "failed" for item in kept)
    # The newest lessons survive a compaction.
    again, _ = shared(path, max_entries=20)
    assert again.failed_recently("2001:db8::257")
    assert [p.name for p in tmp_path.iterdir()] == ["history.tsv"]  # no temporary left


def test_an_unwritable_file_is_said_once_and_nothing_breaks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "missing-directory" / "history.tsv"
    history, _ = shared(path)
    history.record_failure("2001:db8::1")
    history.record_failure("2001:db8::2")
    assert history.failed_recently("2001:db8::2")  # the history itself goes on
    err = capsys.readouterr().err
    assert err.count("eyeshim: history file") == 1
    assert "cannot write it (No such file or directory); going on without it" in err
    assert history.journal is None


def test_the_default_file_is_in_the_users_cache_directory(tmp_path: Path) -> None:
    assert history_file_path("auto", {"XDG_CACHE_HOME": str(tmp_path)}) == str(
        tmp_path / "eyeshim" / "history.tsv"
    )
    home = os.path.expanduser("~")
    for environ in ({}, {"XDG_CACHE_HOME": "relative/dir"}):
        assert history_file_path("auto", environ) == os.path.join(
            home, ".cache", "eyeshim", "history.tsv"
        )
    assert Config.from_env({"EYESHIM_HISTORY_FILE": "on"}).history_file == "auto"
    assert Config.from_env({"EYESHIM_HISTORY_FILE": "0"}).history_file == ""
    with pytest.raises(ValueError, match="absolute path"):
        Config.from_env({"EYESHIM_HISTORY_FILE": "history.tsv"})
    with pytest.raises(ValueError, match="no directory"):
        Config.from_env({"EYESHIM_HISTORY_FILE": str(tmp_path / "nope" / "h.jsonl")})
    with pytest.raises(ValueError, match="absolute path"):
        Config(history_file="relative.jsonl")


# -- concurrent writers ----------------------------------------------------------------

WRITER = """\
import sys
from eyeshim.history import History
from eyeshim.history_file import HistoryFile
path, me = sys.argv[1], int(sys.argv[2])
history = History(max_entries=100000)
keeper = HistoryFile(path, history)
keeper._limit = 10**12  # no compaction: this test is about appends
history.journal = keeper.record
for i in range(300):
    history.record_failure(f"2001:db8:{me:x}::{i:x}")
"""


@POSIX_ONLY
def test_concurrent_writers_never_tear_a_line(tmp_path: Path) -> None:
    path = tmp_path / "history.tsv"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = clean_env()
    writers = [
        subprocess.Popen([sys.executable, str(script), str(path), str(n)], env=env)
        for n in range(6)
    ]
    assert [writer.wait(120) for writer in writers] == [0] * 6
    items = lines_of(path)  # every line parses: none was interleaved with another
    assert len(items) == 6 * 300
    folded = fold(path.read_text().splitlines(True), time.time(), network(), 600, 100000)
    assert len(folded.failed) == 6 * 300


# -- the process's history, shared ------------------------------------------------------


def test_state_shares_the_history_at_its_first_use(tmp_path: Path) -> None:
    path = tmp_path / "history.tsv"
    path.write_text(line(time.time(), "failed", "2001:db8::77", net=network()))
    config = Config(history_file=str(path))
    state = ProcessState()  # a fresh process's
    history = state.history(config)
    assert history is not None and history.failed_recently("2001:db8::77")
    assert state.history(config) is history
    # Private blocks share nothing: what the demo and check teach stays there.
    with state.private_history():
        inner = state.history(config)
        assert inner is not None and inner is not history
        assert not inner.failed_recently("2001:db8::77")
        inner.record_failure("2001:db8::78")
    assert "2001:db8::78" not in path.read_text()
    assert state.history(config) is history
    history.record_failure("2001:db8::79")
    assert "2001:db8::79" in path.read_text()
    # Turning the file off stops the writing, not the history.
    assert state.history(Config()) is history
    history.record_failure("2001:db8::80")
    assert "2001:db8::80" not in path.read_text()
    assert history.failed_recently("2001:db8::77")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_appends_to_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "history.tsv"
    history, keeper = shared(path)
    history.record_failure("2001:db8::1")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            keeper.after_fork()
            history.after_fork()
            history.record_failure("2001:db8::2")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert [item[3] for item in lines_of(path)] == ["2001:db8::1", "2001:db8::2"]


# -- two processes: the second pip install on a broken network ------------------------------

APP = """\
import json, socket
from eyeshim import events
from eyeshim.cli.demo import DEMO_NAME, BrokenAndWorking, demo_name_resolves_to
with BrokenAndWorking() as lab, demo_name_resolves_to(lab), events.recording() as seen:
    socket.create_connection((DEMO_NAME, lab.port), timeout=5).close()
print(json.dumps([event.address for event in seen if event.kind == "attempt"]))
"""


@POSIX_ONLY
def test_the_second_process_skips_the_dead_family_from_its_first_connection(
    tmp_path: Path,
) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP)
    path = tmp_path / "cache" / "eyeshim" / "history.tsv"
    env = clean_env(XDG_CACHE_HOME=str(tmp_path / "cache"), EYESHIM_HISTORY_FILE="1")

    def attempts(environ: dict[str, str]) -> List[str]:
        ran = eyeshim_run([str(app)], environ)
        assert ran.returncode == 0 and ran.stderr == "", ran.stderr
        result: List[str] = json.loads(ran.stdout)
        return result

    first = attempts(env)
    assert len(first) == 2  # the broken address first, then the working one
    broken, working = first
    assert path.exists()  # the default directory was made
    assert attempts(env) == [working]  # straight to the working address
    assert attempts(env) == [working]
    # Without the file, every new process pays the attempt delay again.
    assert attempts(clean_env()) == [broken, working]
    status = python(["-m", "eyeshim", "status"], env)
    assert f"history file: {path} (" in status.stdout


def test_the_module_doc_states_the_limits_it_implements() -> None:
    doc = textwrap.dedent(history_file.__doc__ or "")
    assert "O_APPEND" in doc and "os.replace()" in doc and "history_failure_ttl" in doc
    assert "tabs" in doc
    assert history_file._REPEAT == 60.0
