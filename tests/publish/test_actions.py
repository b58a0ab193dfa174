"""GitHub Actions I/O: the runner's file and command formats, and that untrusted text stays inert."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from darwin_bot.publish import actions

INJECTION = (
    "I tuned the learning rate.\n"
    "::set-output name=champion::darwin/evil\n"
    "::error::pwned\n"
    "::add-mask::x\n"
    "::stop-commands::guess\n"
    "::endgroup::\n"
)


def parse_output_file(text: str) -> dict[str, str]:
    """Parse $GITHUB_OUTPUT the way the runner does (name=value and name<<DELIM blocks)."""
    lines = text.split("\n")
    result: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line:
            i += 1
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            body: list[str] = []
            i += 1
            while lines[i] != delim:
                body.append(lines[i])
                i += 1
            result[name] = "\n".join(body)
        else:
            name, value = line.split("=", 1)
            result[name] = value
        i += 1
    return result


def commands_outside_stop_blocks(log: str) -> list[str]:
    """The workflow commands a runner would execute in ``log``, honouring stop-commands."""
    executed: list[str] = []
    resume: str | None = None
    for line in log.splitlines():
        if resume is not None:
            if line == f"::{resume}::":
                resume = None
            continue
        match = re.match(r"^::([a-z-]+)(?: [^:]*)?::(.*)$", line)
        if not match:
            continue
        if match.group(1) == "stop-commands":
            resume = match.group(2)
        else:
            executed.append(line)
    return executed


@pytest.fixture
def in_gha(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    out = tmp_path / "output"
    summary = tmp_path / "summary.md"
    out.touch()
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    return tmp_path


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GITHUB_ACTIONS", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)


def test_in_actions_reads_the_runner_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert actions.in_actions()
    monkeypatch.setenv("GITHUB_ACTIONS", "false")
    assert not actions.in_actions()
    monkeypatch.delenv("GITHUB_ACTIONS")
    assert not actions.in_actions()


# ----------------------------------------------------------------------------- outputs


def test_set_output_round_trips_multiline_values(in_gha: Path) -> None:
    actions.set_output("agents", '[{"agent": "a1", "branch": "darwin/a1"}]')
    actions.set_output("report", "line one\nline two\n\nline four")
    actions.set_output("empty", "")
    text = (in_gha / "output").read_text(encoding="utf-8")
    assert parse_output_file(text) == {
        "agents": '[{"agent": "a1", "branch": "darwin/a1"}]',
        "report": "line one\nline two\n\nline four",
        "empty": "",
    }


def test_value_containing_a_delimiter_cannot_forge_another_output(in_gha: Path) -> None:
    # An attacker who knows the toolkit's delimiter shape tries to close the block and add one.
    forged = "ok\nghadelimiter_0000\nchampion=darwin/evil\nx<<ghadelimiter_0000"
    actions.set_output("summary", forged)
    parsed = parse_output_file((in_gha / "output").read_text(encoding="utf-8"))
    assert parsed == {"summary": forged}


def test_random_delimiter_is_never_one_found_in_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    # Force the first two draws to collide with the value; the third must be used.
    draws = iter(["a" * 32, "b" * 32, "c" * 32])
    monkeypatch.setattr(actions.secrets, "token_hex", lambda n: next(draws))
    value = f"ghadelimiter_{'a' * 32} and ghadelimiter_{'b' * 32}"
    record = actions.format_output("x", value)
    assert record.splitlines()[0] == f"x<<ghadelimiter_{'c' * 32}"
    assert record.splitlines()[-1] == f"ghadelimiter_{'c' * 32}"


def test_explicit_delimiter_inside_the_value_is_refused() -> None:
    with pytest.raises(ValueError, match="delimiter occurs in the value"):
        actions.format_output("x", "a\nEOF\nb", delimiter="EOF")


@pytest.mark.parametrize("name", ["", "a b", "x\ny", "x<<EOF", "1abc", "a=b"])
def test_bad_output_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="output name"):
        actions.format_output(name, "v")


def test_set_output_prints_to_stdout_outside_actions(local: None) -> None:
    buf = io.StringIO()
    actions.set_output("champion", "darwin/a1", stream=buf)
    assert buf.getvalue() == "champion=darwin/a1\n"
    buf = io.StringIO()
    actions.set_output("report", "a\nb", stream=buf)
    assert parse_output_file(buf.getvalue()) == {"report": "a\nb"}


# ----------------------------------------------------------------------------- summary


def test_append_summary_appends_with_newlines(in_gha: Path) -> None:
    assert actions.append_summary("# Generation 3")
    assert actions.append_summary("| a | b |\n")
    assert (in_gha / "summary.md").read_text(encoding="utf-8") == "# Generation 3\n| a | b |\n"


def test_append_summary_is_capped_below_the_limit(in_gha: Path) -> None:
    actions.append_summary("é" * (actions.SUMMARY_LIMIT_BYTES // 2 + 10))
    size = (in_gha / "summary.md").stat().st_size
    text = (in_gha / "summary.md").read_text(encoding="utf-8")  # still valid UTF-8
    assert size <= 1024 * 1024
    assert text.rstrip().endswith("*(summary truncated: GitHub shows at most 1 MiB)*")


def test_append_summary_without_a_summary_file(local: None) -> None:
    assert actions.append_summary("anything") is False


# ----------------------------------------------------------------------------- annotations


def test_escaping_follows_the_runner_rules() -> None:
    assert actions.escape_data("100%\r\nnext") == "100%25%0D%0Anext"
    assert actions.escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


@pytest.mark.parametrize("level", ["error", "warning", "notice"])
def test_annotations_in_actions(in_gha: Path, level: str) -> None:
    buf = io.StringIO()
    getattr(actions, f"annotate_{level}")(
        "loss is nan\n::set-output name=x::y", file="seed/t,r:ain.py", line=12, stream=buf
    )
    (line,) = buf.getvalue().splitlines()
    assert (
        line == f"::{level} file=seed/t%2Cr%3Aain.py,line=12::loss is nan%0A::set-output name=x::y"
    )
    # The whole annotation is one command; the embedded set-output is part of its message.
    assert commands_outside_stop_blocks(buf.getvalue()) == [line]


def test_annotation_without_properties_and_with_title(in_gha: Path) -> None:
    buf = io.StringIO()
    actions.annotate_error("boom", stream=buf)
    actions.annotate_warning("slow", title="MFU: low, check", stream=buf)
    assert buf.getvalue().splitlines() == [
        "::error::boom",
        "::warning title=MFU%3A low%2C check::slow",
    ]


def test_annotations_are_plain_text_outside_actions(local: None) -> None:
    buf = io.StringIO()
    actions.annotate_error("boom", file="seed/train.py", line=3, stream=buf)
    actions.annotate_notice("done", stream=buf)
    assert buf.getvalue() == "error: seed/train.py:3: boom\nnotice: done\n"


# ----------------------------------------------------------------------------- mask, group


def test_mask_registers_each_line(in_gha: Path) -> None:
    buf = io.StringIO()
    actions.mask("sk-abc\nsecond%line\n", stream=buf)
    assert buf.getvalue().splitlines() == ["::add-mask::sk-abc", "::add-mask::second%25line"]


def test_mask_is_silent_outside_actions(local: None) -> None:
    buf = io.StringIO()
    actions.mask("sk-abc", stream=buf)
    assert buf.getvalue() == ""


def test_group_closes_even_on_error(in_gha: Path) -> None:
    buf = io.StringIO()
    with pytest.raises(RuntimeError), actions.group("Evaluate a1", stream=buf):
        buf.write("training\n")
        raise RuntimeError("x")
    assert buf.getvalue().splitlines() == ["::group::Evaluate a1", "training", "::endgroup::"]


# ----------------------------------------------------------------------------- untrusted text


def test_untrusted_text_ends_up_inside_a_stop_commands_block(in_gha: Path) -> None:
    buf = io.StringIO()
    actions.annotate_notice("before", stream=buf)
    actions.untrusted_block(INJECTION, stream=buf)
    actions.annotate_notice("after", stream=buf)
    log = buf.getvalue()
    lines = log.splitlines()
    start = lines.index(next(x for x in lines if x.startswith("::stop-commands::")))
    token = lines[start].removeprefix("::stop-commands::")
    end = lines.index(f"::{token}::")
    # Every line of the LLM text sits between the stop and resume markers, verbatim.
    assert lines[start + 1 : end] == INJECTION.splitlines()
    assert len(token) >= 32 and token not in INJECTION
    # A runner executes only our own two notices, none of the injected commands.
    assert commands_outside_stop_blocks(log) == ["::notice::before", "::notice::after"]


def test_untrusted_block_token_avoids_the_text(
    in_gha: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    draws = iter(["f" * 32, "0" * 32])
    monkeypatch.setattr(actions.secrets, "token_hex", lambda n: next(draws))
    text = f"::darwin-{'f' * 32}::\n::error::escaped"
    buf = io.StringIO()
    actions.untrusted_block(text, stream=buf)
    assert buf.getvalue().splitlines()[0] == f"::stop-commands::darwin-{'0' * 32}"
    assert commands_outside_stop_blocks(buf.getvalue()) == []


def test_untrusted_block_without_trailing_newline_still_resumes(in_gha: Path) -> None:
    buf = io.StringIO()
    actions.untrusted_block("::error::no newline", stream=buf)
    lines = buf.getvalue().splitlines()
    assert lines[1] == "::error::no newline"
    assert re.fullmatch(r"::darwin-[0-9a-f]{32}::", lines[2])


def test_stop_commands_resumes_after_an_exception(in_gha: Path) -> None:
    buf = io.StringIO()
    with pytest.raises(OSError), actions.stop_commands(stream=buf) as token:
        buf.write("::error::partial\n")
        raise OSError("pipe closed")
    assert buf.getvalue().splitlines()[-1] == f"::{token}::"
    actions.annotate_error("visible", stream=buf)
    assert commands_outside_stop_blocks(buf.getvalue()) == ["::error::visible"]


def test_untrusted_block_is_plain_outside_actions(local: None) -> None:
    buf = io.StringIO()
    actions.untrusted_block("hello\n", stream=buf)
    assert buf.getvalue() == "hello\n"
