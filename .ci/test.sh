#!/usr/bin/env bash
# Runs every hubkit test on a fresh machine: installs what the tests need
# (Go modules, the Node.js device SDK, RabbitMQ with AMQP 1.0), starts the
# AMQP broker, runs vet and the race-enabled test suite, stops the broker.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== go modules"
go mod download

echo "== C compiler (go test -race needs cgo)"
if ! command -v gcc >/dev/null || [ "$(go env CGO_ENABLED)" != 1 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev
  export CGO_ENABLED=1
fi

echo "== Node.js device SDK (for end-to-end tests with the official Azure IoT SDK)"
if [ -f internal/nodesdk/package-lock.json ]; then
  (cd internal/nodesdk && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "== AMQP 1.0 broker"
if [ -f .ci/rabbitmq.sh ]; then
  bash .ci/rabbitmq.sh start
  trap 'bash .ci/rabbitmq.sh stop' EXIT
  export AMQP_TEST_URL=${AMQP_TEST_URL:-amqp://guest:guest@127.0.0.1:${RMQ_PORT:-5672}}
fi

echo "== go.mod tidy, gofmt, go vet"
go mod tidy -diff
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then echo "not gofmt'ed: $unformatted" >&2; exit 1; fi
go vet ./...

echo "== go test -race"
go test -race -timeout 25m ./...
