"""--format as docker users write it: a corpus of Go templates run by the docker CLI and by the dockyard CLI on
the same objects of one daemon; the docker CLI's output is the golden answer (stdout, stderr, exit status)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from helpers.daemon import TestDaemon

CONTAINER_TEMPLATES = [
    "{{.Name}} {{.State.Status}} {{.Config.Image}}",
    '{{(index .NetworkSettings.Networks "fmtnet").IPAddress}}',
    '{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}',
    '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}',
    "{{json .Config.Labels}}",
    "{{.Config.Labels}}",
    '{{index .Config.Labels "tier"}}',
    "{{if .State.Running}}up{{else}}down{{end}}",
    "{{len .Mounts}} {{.HostConfig.NetworkMode}}",
    '{{printf "%s|%d" .Name .RestartCount}}',
    "{{.Config.Cmd}} {{json .Config.Cmd}}",
    "{{with .State}}{{.Status}}{{end}}",
    "{{upper .Name}} {{lower .Name}} {{title .Config.Image}}",
    '{{join .Config.Cmd ","}} {{split .Config.Image ":"}}',
    "{{.Name}}\t{{.Id}}",
    "{{.Name | }}",
]
BAD_TEMPLATES = ["{{.Name", "{{.Name}", "{{range .Mounts}}", "{{nosuchfunc .Name}}"]


@pytest.fixture(scope="module")
def box(daemon: TestDaemon, busybox_image: str) -> Iterator[str]:
    assert daemon.docker("network", "create", "fmtnet").returncode == 0
    r = daemon.docker("run", "-d", "--name", "fmtbox", "--network", "fmtnet", "-l", "tier=web",
                      "-p", "127.0.0.1::80", "busybox", "sleep", "300")
    assert r.returncode == 0, r.stderr
    yield "fmtbox"
    daemon.docker("rm", "-f", "fmtbox")
    daemon.docker("network", "rm", "fmtnet")


def _same(d: TestDaemon, *args: str) -> None:
    theirs, ours = d.docker(*args), d.cli(*args)
    assert "Traceback" not in ours.stderr, ours.stderr
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), (args, theirs.stderr, ours.stderr)


@pytest.mark.parametrize("template", CONTAINER_TEMPLATES)
def test_inspect_templates_match_the_docker_cli(daemon: TestDaemon, box: str, template: str) -> None:
    _same(daemon, "inspect", "-f", template, box)


@pytest.mark.parametrize("template", ["{{.Names}} {{.Image}} {{.Labels}}", '{{.Label "tier"}}', "{{.Ports}}",
                                      "{{json .Names}}", "table {{.Names}}\t{{.Status}}"])
def test_ps_templates_match_the_docker_cli(daemon: TestDaemon, box: str, template: str) -> None:
    if "Status" in template:
        template = template.replace("{{.Status}}", "{{.State}}")  # the Status text counts seconds
    _same(daemon, "ps", "--filter", "name=fmtbox", "--format", template)


def test_version_server_api_version(daemon: TestDaemon) -> None:
    ours = daemon.cli("version", "--format", "{{.Server.APIVersion}}")
    assert ours.returncode == 0 and ours.stdout == daemon.docker("version", "--format", "{{.Server.APIVersion}}").stdout
    assert ours.stdout.strip() not in ("", "<no value>")


@pytest.mark.parametrize("template", BAD_TEMPLATES)
def test_bad_templates_fail_like_the_docker_cli(daemon: TestDaemon, box: str, template: str) -> None:
    theirs, ours = daemon.docker("inspect", "-f", template, box), daemon.cli("inspect", "-f", template, box)
    assert "Traceback" not in ours.stderr, ours.stderr
    assert ours.returncode == theirs.returncode != 0, (theirs.stderr, ours.stderr)
    assert ours.stdout == theirs.stdout
    if theirs.stderr.startswith("template parsing error:"):
        assert ours.stderr.startswith("template parsing error:"), ours.stderr


# a field that is not there: inspect runs the template on the raw JSON with missingkey=error, ps on its
# typed row; both are errors with the docker CLI's exact text (stderr compared whole) and exit status
MISSING_FIELD = [("inspect", "-f", "{{.Foo}}"), ("inspect", "-f", "{{.State.Foo}}"),
                 ("inspect", "-f", "x {{.Config.Nope}} y"), ("ps", "--filter", "name=fmtbox", "--format", "{{.Foo}}"),
                 ("ps", "--filter", "name=fmtbox", "--format", "table {{.Names}}\t{{.Nope}}")]


@pytest.mark.parametrize("args", MISSING_FIELD, ids=lambda a: " ".join(a))
def test_missing_fields_fail_like_the_docker_cli(daemon: TestDaemon, box: str, args: tuple[str, ...]) -> None:
    full = (*args, box) if args[0] == "inspect" else args
    theirs, ours = daemon.docker(*full), daemon.cli(*full)
    assert theirs.returncode != 0
    assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr)
