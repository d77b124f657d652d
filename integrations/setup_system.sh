#!/bin/sh
# Install the Debian packages the network lab needs (nft for SYN-drop sets, iptables for the
# NFQUEUE target; nft's own `queue` statement is missing from this kernel) and tayga, the
# user-space NAT64 translator of the lab's opt-in NAT64 part. Idempotent and quiet: when every
# tool is already present this returns at once without touching apt.
set -eu

missing=""
command -v nft >/dev/null 2>&1 || missing="$missing nftables"
command -v iptables >/dev/null 2>&1 || missing="$missing iptables"
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
# tayga lives in /usr/sbin, which a non-root PATH may lack.
tayga=""
command -v tayga >/dev/null 2>&1 || [ -x /usr/sbin/tayga ] || tayga=" tayga"

if [ -z "$missing$tayga" ]; then
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    if [ -z "$missing" ]; then
        # Only the optional NAT64 part is missing: its tests skip with a reason.
        echo "setup_system.sh: need root to install tayga (NAT64 lab tests will skip)" >&2
        exit 0
    fi
    echo "setup_system.sh: need root to install:$missing$tayga" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
# tayga's package starts a tayga service in the host's namespace on install (its own TUN
# device, NAT44 rules): the lab must never route anything from the host. A policy-rc.d that
# denies every start keeps the service down; one that already exists is left alone.
policy=/usr/sbin/policy-rc.d
own_policy=""
if [ -n "$tayga" ] && [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
fi
trap 'rm -f "$log"; [ -z "$own_policy" ] || rm -f "$policy"' EXIT
# Only refresh the package lists when something actually has to be installed.
# apt's chatter (e.g. "debconf: delaying package configuration") is shown only on failure.
if ! { apt-get update -qq && \
       # shellcheck disable=SC2086  # word splitting of the package list is intended
       apt-get install -y -qq --no-install-recommends $missing$tayga; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup_system.sh: failed to install:$missing$tayga" >&2
    exit 1
fi
echo "setup_system.sh: installed$missing$tayga"
