#!/usr/bin/env bash
# Installs the system packages Sfera needs (RabbitMQ, PostgreSQL, Chromium for the browser test) when missing.
# Idempotent: when every binary is present it does nothing and costs nothing.
set -euo pipefail

missing=()
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing+=(rabbitmq-server)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
# Headless Chromium with a fake camera joins a call in the browser test (issue #7).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# A real TURN server (turnserver) for the test that a relay-only WebRTC peer gets through it (issue #12).
command -v turnserver >/dev/null 2>&1 || missing+=(coturn)
# Prometheus and promtool: alert/recording rules checked and unit-tested, and a real Prometheus scrapes the
# e2e platform in tests/e2e/test_prometheus_live.py (issue #18); `make observe` starts one beside `make run`.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)

[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "Installing system packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# Debian's maintainer scripts may try to start the system-wide services; we run
# private instances instead, so a refusal to start them is harmless.
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
