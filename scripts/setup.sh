#!/usr/bin/env bash
# Installs what the tests and the local cluster need on a fresh Debian machine (run as root or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
# Debian packages used by tests: real etcdctl/etcd to compare against, curl for the HTTP API.
need=()
command -v curl >/dev/null || need+=(curl)
command -v etcdctl >/dev/null || need+=(etcd-client)
# A real etcd 3.4 member next to Berth for python-etcd's auth tests (test/python-etcd-auth.test.ts), run by Debian's
# python3 with Debian's urllib3 and dnspython (python-etcd's own dependencies; nothing comes from pip).
command -v etcd >/dev/null || need+=(etcd-server)
# Debian's etcd-discovery (the discovery.etcd.io service) for `berth node --discovery` (test/discovery.test.ts, and on its own machine in test/multi-host.test.ts).
[ -x /usr/bin/discovery.etcd.io ] || need+=(etcd-discovery)
[ -x /usr/bin/python3 ] || need+=(python3)
/usr/bin/python3 -c 'import urllib3' 2>/dev/null || need+=(python3-urllib3)
/usr/bin/python3 -c 'import dns.resolver' 2>/dev/null || need+=(python3-dnspython)
# A private Docker engine and a local busybox image for the [Container] unit tests (test/agent-docker.test.ts).
command -v dockerd >/dev/null || [ -x /usr/sbin/dockerd ] || need+=(docker.io)
[ -x /bin/busybox ] || command -v busybox >/dev/null || need+=(busybox-static)
# A private OpenSSH server (and ssh-keygen, ssh-keyscan, ssh-agent) for the --tunnel tests (test/tunnel.test.ts).
[ -x /usr/sbin/sshd ] && command -v ssh-keyscan >/dev/null || need+=(openssh-server)
# A real terminal for the console tests (test/console.test.ts).
command -v tmux >/dev/null || need+=(tmux)
# libfaketime sets one member's clock a day ahead (test/clock-skew.test.ts).
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || need+=(libfaketime)
# systemd-analyze checks the deployment's unit file (test/deploy.test.ts).
command -v systemd-analyze >/dev/null || need+=(systemd)
# systemd-notify and socat send sd_notify messages to Type=notify units (test/service-notify.test.ts).
command -v systemd-notify >/dev/null || need+=(systemd)
command -v socat >/dev/null || need+=(socat)
if [ ${#need[@]} -gt 0 ]; then
  # etcd-server's and etcd-discovery's postinsts would start system-wide services (etcd on :2379, the discovery
  # service on :8087) through their init scripts; a policy-rc.d that says no (the usual one in containers) keeps them
  # from doing so, and is removed again if this script added it.
  policy=/usr/sbin/policy-rc.d added=""
  if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee $policy >/dev/null && $SUDO chmod +x $policy && added=1
  fi
  trap '[ -n "$added" ] && $SUDO rm -f $policy' EXIT
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# npm packages, including bun (its postinstall fetches nothing: the binary ships in an npm package).
# A node_modules that is a symlink (a git worktree sharing another checkout's install) is left alone: npm ci would
# empty the directory it points to, under every checkout that shares it, and a fresh worktree's package-lock.json
# is always newer than the shared install.
if [ -L node_modules ]; then
  :
elif [ ! -x node_modules/.bin/bun ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
node_modules/.bin/bun --version >/dev/null 2>&1 || node node_modules/bun/install.js
