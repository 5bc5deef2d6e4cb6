#!/usr/bin/env bash
# Runs a command with no network at all where the machine allows it (root and unshare):
# a fresh network namespace has only a loopback link, so any connection attempt fails.
# This is how `make demo` and `make test` show that they need nothing from the network.
set -euo pipefail
if [ "${IMAGINE_ASSIST_ALLOW_NETWORK:-0}" != 1 ] && command -v unshare >/dev/null 2>&1 \
   && unshare -n true 2>/dev/null; then
  export IMAGINE_ASSIST_NETWORK_NAMESPACE=isolated
  # The gateway tests serve on 127.0.0.1, and a new namespace starts with loopback down.
  exec unshare -n sh -c 'ip link set lo up 2>/dev/null || true; exec "$@"' sh "$@"
fi
echo "offline.sh: cannot isolate the network here (needs root and unshare); running as is" >&2
exec "$@"
