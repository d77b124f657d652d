#!/bin/sh
# Install the Debian packages the network lab needs (nft for SYN-drop sets, iptables for the
# NFQUEUE target; nft's own `queue` statement is missing from this kernel). Idempotent and quiet:
# when both tools are already present this returns at once without touching apt.
set -eu

missing=""
command -v nft >/dev/null 2>&1 || missing="$missing nftables"
command -v iptables >/dev/null 2>&1 || missing="$missing iptables"
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"

if [ -z "$missing" ]; then
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "setup_system.sh: need root to install:$missing" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Only refresh the package lists when something actually has to be installed.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# apt's chatter (e.g. "debconf: delaying package configuration") is shown only on failure.
if ! { apt-get update -qq && \
       # shellcheck disable=SC2086  # word splitting of the package list is intended
       apt-get install -y -qq --no-install-recommends $missing; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup_system.sh: failed to install:$missing" >&2
    exit 1
fi
echo "setup_system.sh: installed$missing"
