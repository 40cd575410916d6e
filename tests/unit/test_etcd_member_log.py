"""etcd's own words from a member's component log (netlab.lab.control): what ``netlab
up`` and ``netlab status`` quote when a member fails. The lines are etcd 3.4's, as the
supervisor logs them (its ``--- ... starting`` line before each run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab.lab.component_logs import etcd_log_error, etcd_log_tail

pytestmark = pytest.mark.unit

START = "--- 2026-12-07T11:28:48 starting etcd-worker1 in lab-worker1: /usr/bin/etcd --name w1\n"
INFO = ('{"level":"info","ts":"2026-12-07T11:28:48.976Z","caller":"etcdmain/etcd.go:110",'
        '"msg":"failed to detect default host","error":"could not find default route"}\n')
FATAL = ('{"level":"fatal","ts":"2026-12-07T11:28:48.976Z","caller":"etcdmain/etcd.go:562",'
         '"msg":"failed to list data directory","dir":"/d/w1","error":"readdirent /d/w1: '
         'not a directory","stacktrace":"go.etcd.io/etcd/etcdmain.identifyDataDirOrDie\\n'
         '\\tgo.etcd.io/etcd/etcdmain/etcd.go:562"}\n')
PANIC = ('{"level":"panic","ts":"2026-12-07T11:23:15.451Z","caller":"backend/backend.go:162",'
         '"msg":"failed to open database","path":"/d/db","error":"invalid database",'
         '"stacktrace":"go.etcd.io/etcd/mvcc/backend.newBackend"}\n'
         "panic: failed to open database\n\n"
         "goroutine 124 [running]:\n"
         "go.uber.org/zap/zapcore.CheckWriteAction.OnWrite(0x2?, 0x0?, {0x0?, 0x0?})\n"
         "\tgo.uber.org/zap@v1.17.0/zapcore/entry.go:196 +0x65\n")
BARE_PANIC = ("panic: cannot use none as id\n\ngoroutine 1 [running]:\n"
              "go.etcd.io/etcd/raft.newRaft(0xc0002e7f08)\n")


def log(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "etcd-worker1.log"
    path.write_text(text)
    return path


def test_the_last_fatal_entry_is_quoted_with_its_fields_but_not_its_stack(tmp_path):
    assert etcd_log_error(log(tmp_path, START + INFO + FATAL)) == (
        "failed to list data directory: readdirent /d/w1: not a directory (dir=/d/w1)")


def test_a_zap_panic_is_quoted_rather_than_the_go_panic_line_after_it(tmp_path):
    assert etcd_log_error(log(tmp_path, START + INFO + PANIC)) == (
        "failed to open database: invalid database (path=/d/db)")


def test_a_bare_go_panic_is_quoted_when_etcd_logged_no_error(tmp_path):
    assert etcd_log_error(log(tmp_path, START + INFO + BARE_PANIC)) == (
        "panic: cannot use none as id")


def test_a_run_still_starting_is_explained_by_the_run_before_it(tmp_path):
    path = log(tmp_path, START + FATAL + START + INFO)
    assert etcd_log_error(path).startswith("failed to list data directory")


def test_errors_older_than_the_last_two_runs_and_info_lines_are_not_quoted(tmp_path):
    assert etcd_log_error(log(tmp_path, START + FATAL + START + INFO + START + INFO)) is None
    assert etcd_log_error(log(tmp_path, START + INFO)) is None
    assert etcd_log_error(tmp_path / "missing.log") is None


def test_the_tail_is_the_last_run_without_stack_traces(tmp_path):
    tail = etcd_log_tail(log(tmp_path, START + FATAL + START + INFO + PANIC)).splitlines()
    assert tail[0] == START.strip() and tail[1] == INFO.strip()
    assert '"msg":"failed to open database"' in tail[2] and "stacktrace" not in tail[2]
    assert tail[3:] == ["panic: failed to open database"]
