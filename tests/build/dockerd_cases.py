"""The Dockerfiles of the differential test: built once by a real dockerd 20.10 (classic builder) to record the
image configs in fixtures/dockerd/, and by dockyard in test_build_differential.py, which compares the two."""

from __future__ import annotations

CASES: dict[str, dict[str, str]] = {
    "whole_line_args": {  # WORKDIR/USER keep the rest of the line as their one argument (docker's parser)
        "Dockerfile": """FROM busybox
WORKDIR /srv/a b --not-a-flag
USER app user
STOPSIGNAL SIGTERM
""",
    },
    "metadata": {
        "Dockerfile": """FROM busybox
MAINTAINER someone <someone@example.com>
ENV A=1 B="two words" C=three\\ four
ENV LEGACY value with spaces
ENV D=${A}-${UNSET:-dflt}
LABEL org.example.a=1 "org.example.b"="quoted value"
EXPOSE 80 443/tcp 53/udp 8000-8002
VOLUME /data ["/logs", "/cache"]
USER 1000:1000
WORKDIR /srv
WORKDIR app
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=3s --start-period=1s --retries=4 CMD test -d /srv
ONBUILD RUN echo onbuild
CMD echo $A
""",
    },
    "exec_forms": {
        "Dockerfile": """FROM busybox
SHELL ["/bin/sh", "-ec"]
ENTRYPOINT ["/bin/echo", "entry"]
CMD ["arg1", "arg2"]
HEALTHCHECK CMD ["/bin/true"]
""",
    },
    "shell_entrypoint": {
        "Dockerfile": """FROM busybox
CMD ["from-cmd"]
ENTRYPOINT echo hello
""",
    },
    "healthcheck_none": {
        "Dockerfile": """FROM busybox
HEALTHCHECK CMD true
HEALTHCHECK NONE
""",
    },
    "run_and_args": {
        "Dockerfile": """ARG BASE=busybox
FROM $BASE
ARG WHO=world
ARG EMPTY
RUN echo "hello $WHO" > /hello
ENV WHO=env-wins
RUN echo $WHO > /who
""",
    },
    "copy": {
        "Dockerfile": """FROM busybox
WORKDIR /app
COPY a.txt ./
COPY dir /app/dir/
COPY a.txt b.txt /multi/
""",
        "a.txt": "a\n",
        "b.txt": "b\n",
        "dir/c.txt": "c\n",
    },
}

# what the comparison looks at in the image config's ``config`` section
CONFIG_KEYS = ("Cmd", "Entrypoint", "Env", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels",
               "Healthcheck", "StopSignal", "OnBuild", "Shell")
