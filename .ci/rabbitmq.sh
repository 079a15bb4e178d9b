#!/usr/bin/env bash
# rabbitmq.sh {install|start|stop|status|ctl ARGS...}
# Idempotent, systemd-free RabbitMQ 3.10 (Debian 12) with the AMQP 1.0 plugin,
# bound to 127.0.0.1 only, all state under $RMQ_DIR, owned by the calling user (root in CI).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RMQ_DIR=${RMQ_DIR:-$ROOT/.rabbitmq}         # config, data, logs, pid files (ignored by git: see configure)
RMQ_PORT=${RMQ_PORT:-5672}                   # AMQP 0-9-1 + AMQP 1.0 (same port)
RMQ_DIST_PORT=${RMQ_DIST_PORT:-25672}        # Erlang distribution (CLI tools)
RMQ_EPMD_PORT=${RMQ_EPMD_PORT:-4369}         # Erlang port mapper
RMQ_NODE=${RMQ_NODE:-rabbit@localhost}
RMQ_START_TIMEOUT=${RMQ_START_TIMEOUT:-60}
# RMQ_DEFINITIONS=/abs/path/defs.json  queues/policies/users imported at every boot; defaults to
#   .ci/rmq-definitions.json (durable queues hub-durable and hub-quorum); set it empty for none.
#   A node that imports definitions on first boot does NOT create guest: the file holds the user.
RMQ_DEFINITIONS=${RMQ_DEFINITIONS-$ROOT/.ci/rmq-definitions.json}
RMQ_BIN=/usr/lib/rabbitmq/bin                # the real scripts; /usr/sbin/* su to user 'rabbitmq'
# RMQ_TLS_PORT with RMQ_TLS_CERT, RMQ_TLS_KEY, RMQ_TLS_CA (absolute PEM paths readable by the calling
#   user) add an amqps listener on 127.0.0.1:$RMQ_TLS_PORT. Clients need not present a certificate;
#   one they present must chain to RMQ_TLS_CA. Unset: no TLS listener. Set only some: start fails.

rmq_env() {
  export HOME="$RMQ_DIR"                     # .erlang.cookie lives here (server and CLI share it)
  export RABBITMQ_CONF_ENV_FILE="$RMQ_DIR/rabbitmq-env.conf"
  export RABBITMQ_CONFIG_FILE="$RMQ_DIR/rabbitmq.conf"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$RMQ_DIR/enabled_plugins"
  export RABBITMQ_MNESIA_BASE="$RMQ_DIR/mnesia"
  export RABBITMQ_LOG_BASE="$RMQ_DIR/log"
  export RABBITMQ_PID_FILE="$RMQ_DIR/beam.pid"
  export RABBITMQ_NODENAME="$RMQ_NODE"
  export RABBITMQ_DIST_PORT="$RMQ_DIST_PORT"
  export ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT="$RMQ_EPMD_PORT"
  # distribution on loopback only; use our epmd, never spawn 'epmd -daemon' (it would outlive us)
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false"
  export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false"
}

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

install() {
  if dpkg-query -W -f='${Status}' rabbitmq-server 2>/dev/null | grep -q 'ok installed'; then return 0; fi
  local made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then   # keep the package's postinst from starting a system-wide broker
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=300 rabbitmq-server
  [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
  return 0
}

configure() {
  mkdir -p "$RMQ_DIR/log" "$RMQ_DIR/mnesia"
  echo '*' > "$RMQ_DIR/.gitignore"             # keep broker state out of git without touching the repo's .gitignore
  : > "$RMQ_DIR/rabbitmq-env.conf"            # do not read /etc/rabbitmq/rabbitmq-env.conf
  echo '[rabbitmq_amqp1_0].' > "$RMQ_DIR/enabled_plugins"
  cat > "$RMQ_DIR/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$RMQ_PORT
loopback_users.guest = true
log.console = false
log.file.level = info
# SASL ANONYMOUS connections act as this user:
amqp1_0.default_user = guest
amqp1_0.default_vhost = /
EOF
  # optional: pre-declare durable/quorum queues, policies, users at boot (JSON definitions)
  if [ -n "${RMQ_DEFINITIONS:-}" ]; then echo "load_definitions = $RMQ_DEFINITIONS" >> "$RMQ_DIR/rabbitmq.conf"; fi
  # optional: an amqps listener
  if tls_enabled; then cat >> "$RMQ_DIR/rabbitmq.conf" <<EOF
listeners.ssl.default = 127.0.0.1:$RMQ_TLS_PORT
ssl_options.certfile = $RMQ_TLS_CERT
ssl_options.keyfile = $RMQ_TLS_KEY
ssl_options.cacertfile = $RMQ_TLS_CA
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false
EOF
  fi
}

# tls_enabled reports whether all four RMQ_TLS_* variables are set, and fails
# when only some are, or when a file is unreadable.
tls_enabled() {
  local v set=0
  for v in RMQ_TLS_PORT RMQ_TLS_CERT RMQ_TLS_KEY RMQ_TLS_CA; do [ -n "${!v:-}" ] && set=$((set + 1)); done
  [ "$set" = 0 ] && return 1
  if [ "$set" != 4 ]; then
    echo "rabbitmq.sh: set all of RMQ_TLS_PORT, RMQ_TLS_CERT, RMQ_TLS_KEY, RMQ_TLS_CA, or none" >&2; exit 2
  fi
  for v in RMQ_TLS_CERT RMQ_TLS_KEY RMQ_TLS_CA; do
    [ -r "${!v}" ] || { echo "rabbitmq.sh: $v=${!v} is not a readable file" >&2; exit 2; }
  done
}

start() {
  install
  rmq_env
  if alive "$RMQ_DIR/server.pid"; then echo "rabbitmq already running (pid $(cat "$RMQ_DIR/server.pid"))"; return 0; fi
  if [ -n "${RMQ_FRESH:-}" ]; then rm -rf "$RMQ_DIR/mnesia"; fi   # RMQ_FRESH=1: start with no queues/messages
  configure
  # our own epmd, bound to loopback, so that nothing daemonizes out of our control
  if ! alive "$RMQ_DIR/epmd.pid"; then
    setsid epmd -address 127.0.0.1 -port "$RMQ_EPMD_PORT" >"$RMQ_DIR/log/epmd.out" 2>&1 < /dev/null &
    echo $! > "$RMQ_DIR/epmd.pid"
  fi
  for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$RMQ_EPMD_PORT") 2>/dev/null && break; sleep 0.1; done
  local t0; t0=$(date +%s%N)
  setsid "$RMQ_BIN/rabbitmq-server" >"$RMQ_DIR/log/server.out" 2>&1 < /dev/null &
  echo $! > "$RMQ_DIR/server.pid"
  # 'wait' returns once the pid file exists AND the rabbit app has fully booted (plugins included)
  if ! timeout "$((RMQ_START_TIMEOUT + 5))" "$RMQ_BIN/rabbitmqctl" -q wait --timeout "$RMQ_START_TIMEOUT" "$RABBITMQ_PID_FILE" >/dev/null; then
    echo "rabbitmq failed to start; last log lines:" >&2
    tail -n 40 "$RMQ_DIR/log/server.out" "$RMQ_DIR"/log/*.log >&2 || true
    stop; return 1
  fi
  echo "rabbitmq ready on 127.0.0.1:$RMQ_PORT${RMQ_TLS_PORT:+ (amqps on 127.0.0.1:$RMQ_TLS_PORT)} in $(( ($(date +%s%N) - t0) / 1000000 )) ms (pid $(cat "$RMQ_DIR/server.pid"))"
}

stop() {
  rmq_env
  local f pid
  for f in server epmd; do
    alive "$RMQ_DIR/$f.pid" || { rm -f "$RMQ_DIR/$f.pid"; continue; }
    pid=$(cat "$RMQ_DIR/$f.pid")
    kill -TERM "$pid"                          # rabbitmq-server script forwards TERM to beam (clean shutdown)
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    rm -f "$RMQ_DIR/$f.pid"
  done
  # beam is a child of the script; if the script was KILLed, end beam by its own pid file
  if alive "$RABBITMQ_PID_FILE"; then kill -KILL "$(cat "$RABBITMQ_PID_FILE")"; fi
  rm -f "$RABBITMQ_PID_FILE"
}

status() { rmq_env; "$RMQ_BIN/rabbitmqctl" -q status >/dev/null && echo running; }
ctl() { rmq_env; "$RMQ_BIN/rabbitmqctl" "$@"; }   # e.g. rabbitmq.sh ctl list_queues name messages

cmd=${1:-start}; shift || true
"$cmd" "$@"
