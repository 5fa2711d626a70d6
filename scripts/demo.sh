#!/usr/bin/env bash
# Set up, start the dockyard daemon, make a busybox image, and run a container serving a web page.
#   ./scripts/demo.sh        start everything and fetch the page
#   ./scripts/demo.sh stop   remove the container and stop the daemon
set -euo pipefail
cd "$(dirname "$0")/.."
SOCK=/run/dockyard.sock
DY=(.venv/bin/dockyard -H "unix://$SOCK")
PORT=${DEMO_PORT:-8080}

if [ "${1:-}" = "stop" ]; then
  "${DY[@]}" rm -f dockyard-demo >/dev/null 2>&1 || true
  if [ -f /run/dockyard.pid ]; then kill "$(cat /run/dockyard.pid)" 2>/dev/null || true; fi
  for _ in $(seq 50); do [ -S "$SOCK" ] || break; sleep 0.1; done
  echo "demo stopped"
  exit 0
fi

./scripts/setup.sh
if ! "${DY[@]}" version >/dev/null 2>&1; then
  echo "starting the daemon (log: /var/log/dockyard.log)"
  setsid .venv/bin/dockyard daemon --pidfile /run/dockyard.pid -H "unix://$SOCK" >/var/log/dockyard.log 2>&1 < /dev/null &
  for _ in $(seq 100); do "${DY[@]}" version >/dev/null 2>&1 && break; sleep 0.1; done
fi
"${DY[@]}" version
"${DY[@]}" image inspect busybox >/dev/null 2>&1 || "${DY[@]}" image bootstrap busybox
"${DY[@]}" rm -f dockyard-demo >/dev/null 2>&1 || true
"${DY[@]}" run -d --name dockyard-demo -p "127.0.0.1:$PORT:80" busybox \
  sh -c 'mkdir -p /www && echo "<h1>Hello from a dockyard container</h1>" > /www/index.html && exec httpd -f -p 80 -h /www'
"${DY[@]}" ps
for _ in $(seq 50); do
  if page=$(.venv/bin/python -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$PORT/', timeout=2).read().decode())" 2>/dev/null); then
    echo "GET http://127.0.0.1:$PORT/ →"
    echo "$page"
    echo "The container keeps serving; './scripts/demo.sh stop' removes it and stops the daemon."
    exit 0
  fi
  sleep 0.1
done
echo "the page did not answer" >&2
exit 1
