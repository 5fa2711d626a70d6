"""The CLI's build display: plain mode passes the classic stream through; tty mode redraws a compact step list."""

from __future__ import annotations

import io

from dockyard.cli.commands.build_progress import Display


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


STREAM = ["Step 1/3 : FROM busybox\n", " ---> 1234\n", "Step 2/3 : RUN echo hi\n", " ---> Running in abc\n",
          "hi\n", "Removing intermediate container abc\n", " ---> 5678\n", "Step 3/3 : CMD [\"sh\"]\n",
          " ---> Using cache\n", " ---> 9abc\n", "Successfully built 9abc\n"]


def test_plain_passes_the_stream_through() -> None:
    out = io.StringIO()
    d = Display(out, io.StringIO(), "plain", False)
    for s in STREAM:
        d.feed(s)
    d.close()
    assert out.getvalue() == "".join(STREAM)


def test_auto_on_a_terminal_draws_steps_with_times() -> None:
    out = _TTY()
    d = Display(out, io.StringIO(), "auto", False)
    for s in STREAM:
        d.feed(s)
    d.close()
    text = out.getvalue()
    assert "[+] Building" in text and "FINISHED" in text
    assert " => [1] FROM busybox" in text and " => [2] RUN echo hi" in text
    last = text.split("\x1b[")[-12:]
    assert any("[3] CMD [\"sh\"]" in part and "CACHED" in part for part in last)
    assert "Successfully built 9abc" in text and "Removing intermediate" not in text


def test_quiet_prints_nothing() -> None:
    out = _TTY()
    d = Display(out, io.StringIO(), "tty", True)
    for s in STREAM:
        d.feed(s)
    d.close()
    assert out.getvalue() == ""
