#!/usr/bin/env bash
# Installs a Berth node on this machine: the binary, the systemd unit, /etc/berth/node.env and the cluster secret,
# then enables and starts it (what the Vagrantfile runs on each VM; by hand on any systemd machine, as root).
#
#   install.sh --name core-01 --peer-ip 172.17.8.101 \
#     --initial-cluster core-01=172.17.8.101:7001,core-02=172.17.8.102:7001,core-03=172.17.8.103:7001 \
#     --secret-file ./cluster-secret [--metadata region=eu,disk=ssd] [--binary dist/berth] [--root DIR] [--no-start]
#   install.sh --name core-01 --peer-ip 172.17.8.101 --secret-file ./cluster-secret \
#     --discovery http://172.17.8.1:8087/TOKEN | --cloud-config ./user-data
#
# One of --initial-cluster, --discovery (a token URL from `berth discovery new`) or --cloud-config (#cloud-config
# user-data, installed as /etc/berth/user-data: its berth: section may name the discovery URL, metadata and cluster
# units) says how the cluster is found. What node.env sets wins over the user-data's berth: section.
#
# The peer port (7001) listens on --peer-ip, where only members proving the cluster secret are answered; the
# client (4001) and HTTP (2379) ports stay on loopback: reach them from elsewhere with `berth --tunnel`.
# --root installs under DIR instead of / (and implies --no-start).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
name="" peer_ip="" initial="" discovery="" cloud_config="" secret_file="" metadata="" binary="$here/../dist/berth"
root="" start=1
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name="$2"; shift 2 ;;
    --peer-ip) peer_ip="$2"; shift 2 ;;
    --initial-cluster) initial="$2"; shift 2 ;;
    --discovery) discovery="$2"; shift 2 ;;
    --cloud-config) cloud_config="$2"; shift 2 ;;
    --secret-file) secret_file="$2"; shift 2 ;;
    --metadata) metadata="$2"; shift 2 ;;
    --binary) binary="$2"; shift 2 ;;
    --root) root="$2"; start=0; shift 2 ;;
    --no-start) start=0; shift ;;
    *) echo "install.sh: unknown argument $1 (see the comment at the top)" >&2; exit 2 ;;
  esac
done
for v in name peer_ip secret_file; do
  [ -n "${!v}" ] || { echo "install.sh: --${v//_/-} is required" >&2; exit 2; }
done
[ -n "$initial$discovery$cloud_config" ] ||
  { echo "install.sh: --initial-cluster, --discovery or --cloud-config is required" >&2; exit 2; }
[ -z "$initial" ] || [ -z "$discovery" ] ||
  { echo "install.sh: --initial-cluster and --discovery exclude each other" >&2; exit 2; }
if [ -n "$cloud_config" ]; then
  # Checked before anything is installed: a mistake is reported with its line, here rather than at boot.
  "$binary" cloud-config validate "$cloud_config" >/dev/null || exit 2
fi
[ -x "$binary" ] || { echo "install.sh: $binary is not an executable (npm run build)" >&2; exit 2; }
[ -s "$secret_file" ] || { echo "install.sh: $secret_file is missing or empty" >&2; exit 2; }

install -D -m 0755 "$binary" "$root/usr/local/bin/berth"
install -D -m 0644 "$here/berth-node.service" "$root/etc/systemd/system/berth-node.service"
install -D -m 0600 "$secret_file" "$root/etc/berth/cluster-secret"
[ -z "$cloud_config" ] || install -D -m 0600 "$cloud_config" "$root/etc/berth/user-data"
umask 077
cat > "$root/etc/berth/node.env" <<ENV
# Settings of \`berth node\` on this machine (BERTH_* variables; see \`berth node --help\`).
BERTH_NAME=$name
BERTH_DATA_DIR=/var/lib/berth
BERTH_PEER_ADDR=$peer_ip:7001
BERTH_CLIENT_ADDR=127.0.0.1:4001
BERTH_HTTP_ADDR=127.0.0.1:2379
BERTH_CLUSTER_SECRET_FILE=/etc/berth/cluster-secret
BERTH_PUBLIC_IP=$peer_ip
ENV
# Only the settings given here: node.env then reads as what this machine sets beside its user-data.
{
  [ -z "$initial" ] || echo "BERTH_INITIAL_CLUSTER=$initial"
  [ -z "$discovery" ] || echo "BERTH_DISCOVERY=$discovery"
  [ -z "$cloud_config" ] || echo "BERTH_CLOUD_CONFIG=/etc/berth/user-data"
  [ -z "$metadata" ] || echo "BERTH_METADATA=$metadata"
} >> "$root/etc/berth/node.env"

# Members of the group `berth` are admin through the node's socket (/run/berth/berth.sock), as the docker group is
# with Docker's: add operators with `usermod -aG berth USER`. (Not under --root: a staging tree has no groups.)
if [ -z "$root" ] && ! getent group berth >/dev/null; then
  groupadd --system berth
  echo "created the group berth: its members may run units through the node (usermod -aG berth USER)"
fi

if [ "$start" = 1 ]; then
  systemctl daemon-reload
  systemctl enable --now berth-node.service
  echo "berth-node started on $name ($peer_ip); \`journalctl -u berth-node\` shows its log"
else
  echo "installed under ${root:-/} (not started)"
fi
