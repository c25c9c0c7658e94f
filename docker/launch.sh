#!/bin/sh
# Submit the federation to the SuperLink and stream the ServerApp's log until it ends.
# Runs inside the compose network (service 'launcher'); the operator of a real
# consortium runs the same three steps on their own machine, with TLS.
set -eu
app="$(mktemp -d)"
fedharmonize deploy app "$app"
mkdir -p "$FLWR_HOME"
cat > "$FLWR_HOME/config.toml" <<CONFIG
[superlink]
default = "consortium"

[superlink.consortium]
address = "${SUPERLINK_ADDRESS:-superlink:9092}"
insecure = true  # the private compose network only; see README.md for TLS
CONFIG
exec flwr run "$app" consortium --run-config "${RUN_CONFIG:-/config/run-config.toml}" --stream
