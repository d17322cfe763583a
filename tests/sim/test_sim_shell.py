"""The shell reader: scripts parsed with tree-sitter's bash grammar and walked in virtual time."""

from __future__ import annotations

import math

import pytest

from labkit.sim import SimLab
from labkit.sim.infer import infer
from labkit.sim.shell import UnreadableScript, first_command, program_at_end, read_script


def test_done_is_an_ordinary_word_outside_a_loop():
    """Issue 18 item 9: the word `done` used to end the reader's loop parsing."""
    m = read_script("echo app start; sleep 3; echo app done")
    assert m.runs[0].seconds == 3 and m.runs[0].exit_code == 0
    assert m.stdout == ((0.0, "app start"), (3.0, "app done"))
    assert read_script('echo "done"').stdout == ((0.0, "done"),)


def test_loop_variables_are_expanded():
    m = read_script("for i in 1 2; do echo $i; sleep 1; done; echo end")
    assert m.stdout == ((0.0, "1"), (1.0, "2"), (2.0, "end"))
    assert m.runs[0].seconds == 2
    assert read_script('for f in a b; do echo "file ${f}.log"; done').stdout == ((0.0, "file a.log"), (0.0, "file b.log"))


def test_variables_set_in_the_script_and_from_the_container_env():
    assert read_script('N=3; sleep $N; echo "slept $N"').stdout == ((3.0, "slept 3"),)
    assert read_script("echo $GREETING", {"GREETING": "hello there"}).stdout == ((0.0, "hello there"),)
    assert read_script("echo '$i'").stdout == ((0.0, "$i"),)          # single quotes: no expansion


def test_and_or_follow_the_exit_status():
    m = read_script("false || echo fallback; true && echo yes; false && echo no; echo last")
    assert [line for _, line in m.stdout] == ["fallback", "yes", "last"]
    assert read_script("false && exit 3; exit 4").runs[0].exit_code == 4
    assert read_script("true && exit 3; exit 4").runs[0].exit_code == 3
    assert read_script("! false && exit 5").runs[0].exit_code == 5


def test_trap_and_wait():
    m = read_script("trap 'echo bye; exit 0' TERM; sleep 60 & wait")
    assert m.handles_sigterm and m.sigterm_exit_code == 0 and m.runs[0].seconds == 60
    assert m.trap_delay(10) == 0.0
    m = read_script("trap 'exit 3' TERM; sleep 60")
    assert m.trap_delay(10) == 50.0            # the trap waits for the foreground sleep


def test_an_until_loop_and_redirected_loops():
    m = read_script("until false; do echo tick; sleep 2; done")
    assert m.loop_period == 2 and m.loop_stdout == ((0.0, "tick"),)
    m = read_script("while true; do echo tick; sleep 1; done > /tmp/out")
    assert m.loop_stdout == () and "/tmp/out" in m.files


def test_tail_follow_in_the_background_then_wait_runs_forever():
    m = read_script("tail -F /var/log/x & wait")
    assert m.runs[0].seconds is None and any(math.isinf(s.end) and not s.foreground for s in m.segments)


@pytest.mark.parametrize("script, what", [
    ("if true; then sleep 1; fi", "'if'"),
    ("echo $(date)", "command substitution"),
    ('echo "unterminated', "syntax error"),
    ("while read x; do :; done", "condition 'read x'"),
    ("python app.py", "the command 'python'"),
])
def test_what_it_cannot_read_it_names(script, what):
    with pytest.raises(UnreadableScript, match=what):
        read_script(script)


def test_an_unread_script_is_a_warning_where_it_was_applied(capsys):
    lab = SimLab(k8s_version="1.36")
    lab.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "if true; then :; fi"]}]}})
    out = capsys.readouterr().out
    assert "Warning:" in out and "'if' statement" in out and "container c" in out


def test_the_program_at_the_end_and_the_first_command():
    row, words, before = program_at_end('sleep 2; echo hi; exec nginx -g "daemon off;"')
    assert row.row == "nginx" and words == ["-g", "daemon off;"] and before == 2
    assert program_at_end("trap 'exit 0' TERM; nginx") is None
    assert first_command("cat /tmp/ready && echo ok") == ["cat", "/tmp/ready"]


def test_a_container_script_is_read_through_infer():
    m, warnings = infer({"name": "app", "image": "alpine", "command": ["sh", "-c", "echo app start; sleep 3; echo app done"]})
    assert not warnings and m.runs[0].seconds == 3
