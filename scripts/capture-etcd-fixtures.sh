#!/usr/bin/env bash
# Re-captures what a real etcd 3.4 answers, into test/fixtures/ (run as root: bash scripts/capture-etcd-fixtures.sh).
#
# test/http-samples.test.ts and test/etcdctl.test.ts replay these files against Berth; npm test only reads them.
# This script installs Debian's etcd-server and etcd-client when missing, starts real etcd members on 127.0.0.1
# with --enable-v2=true in temporary data dirs, runs every case below in order and writes:
#   etcd-v2-samples.txt                `curl -si` answers of a 3-member cluster (b1 leads), one block per case
#   etcdctl-v2-traces.txt              etcdctl v2 runs against that same cluster, after the curl cases
#   etcd-v2-samples-single-member.txt  `curl -si` answers of a single member (s1)
#   etcdctl-v2-samples.txt             etcdctl v2 output and exit code per command, against a fresh single member
#   etcd-v2-auth-samples.txt           `curl -si` answers of /v2/auth and Basic auth on keys, a fresh single member
#   etcdctl-v2-auth-samples.txt        etcdctl v2 user/role/auth output and exit codes, a fresh single member
# A new case goes where its file's order wants it; the tests pick up every block of a file.
#
# Where a case depends on timing, the script waits for the state the case needs instead of trusting a sleep: a
# case's `sleep 1` before triggering a watch stands for "until etcd has registered the watcher" (await_watcher),
# a read on a follower waits until the follower has applied the write, and a stats sample comes right after a
# write (etcd omits its append rates when the last append is over a second old). TTL expiries keep their sleeps,
# which leave at least 1.5 s over the TTL.
#
# CAPTURE_ONLY=auth re-captures only the two v2 auth files (the others stay as they are).
#
# The members are stopped by PID and the temporary dirs removed on exit, including on failure; the fixtures are
# replaced only when every case ran.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT="$REPO/test/fixtures"
export ETCDCTL_API=2
exec 3>&2 # the caller's stderr, for messages from inside captured commands

# Also from inside a case's subshell: the whole capture stops (and cleans up) rather than record a broken case.
die() {
  echo "capture-etcd-fixtures: $*" >&3
  kill -TERM $$
  exit 1
}

# ---- Installing etcd -------------------------------------------------------------------------------------

install_etcd() {
  local need=()
  command -v etcd >/dev/null || need+=(etcd-server)
  command -v etcdctl >/dev/null || need+=(etcd-client)
  command -v curl >/dev/null || need+=(curl)
  [ ${#need[@]} -eq 0 ] && return
  [ "$(id -u)" -eq 0 ] || die "needs root to install ${need[*]} (apt-get)"
  # etcd-server's postinst would start a system-wide etcd on :2379 through its init script; a policy-rc.d that
  # says no (the usual one in containers) keeps it from doing so, and is removed again if this script added it.
  local policy=/usr/sbin/policy-rc.d added=""
  if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' >$policy && chmod +x $policy && added=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null || {
    [ -n "$added" ] && rm -f $policy
    die "apt-get install ${need[*]} failed"
  }
  [ -n "$added" ] && rm -f $policy
  return 0
}

# ---- Starting and stopping members -----------------------------------------------------------------------

TMP=""
PIDS=()
CLIENT_PORTS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
  [ -n "$TMP" ] && rm -rf "$TMP"
  TMP=""
}
trap cleanup EXIT
trap 'exit 1' INT TERM

url() { echo "http://127.0.0.1:$1"; }

# start_cluster NAME:CLIENT_PORT:PEER_PORT...: a fresh cluster of those members, ready once every member is
# healthy, the cluster version is decided and every member has published its name (all of which the v2 store
# records as writes, so the cases' indexes do not depend on how fast the members came up).
start_cluster() {
  TMP=$(mktemp -d /tmp/etcd-capture.XXXXXX)
  CLIENT_PORTS=()
  local initial="" m name client peer
  for m in "$@"; do
    IFS=: read -r name client peer <<<"$m"
    initial+="${initial:+,}$name=$(url "$peer")"
    curl -s -o /dev/null "$(url "$client")" && die "port $client is already in use"
  done
  for m in "$@"; do
    IFS=: read -r name client peer <<<"$m"
    etcd --name "$name" --data-dir "$TMP/$name" --enable-v2=true \
      --listen-client-urls "$(url "$client")" --advertise-client-urls "$(url "$client")" \
      --listen-peer-urls "$(url "$peer")" --initial-advertise-peer-urls "$(url "$peer")" \
      --initial-cluster "$initial" --initial-cluster-state new >"$TMP/$name.log" 2>&1 &
    PIDS+=($!)
    CLIENT_PORTS+=("$client")
  done
  for m in "$@"; do
    IFS=: read -r name client peer <<<"$m"
    retry 300 "member $name healthy" healthy "$client"
    retry 300 "cluster version decided on $name" version_decided "$client"
    retry 300 "member $name published" published "$client" "$name"
  done
}
healthy() { [[ $(curl -s "$(url "$1")/health") == *'"health":"true"'* ]]; }
version_decided() { [[ $(curl -s "$(url "$1")/version") == *'"etcdcluster":"'[0-9]* ]]; }
published() { [[ $(curl -s "$(url "$1")/v2/members") == *"\"name\":\"$2\""* ]]; }

# retry TIMES WHAT COMMAND...: runs COMMAND (a function too) every 0.1 s until it succeeds.
retry() {
  local times=$1 what=$2
  shift 2
  for _ in $(seq "$times"); do "$@" && return 0; sleep 0.1; done
  die "gave up waiting: $what"
}

state_of() { curl -s "$(url "$1")/v2/stats/self" | grep -o '"state":"State[A-Za-z]*"' | cut -d'"' -f4; }
id_of() { curl -s "$(url "$1")/v2/stats/self" | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4; }

# make_leader PORT: moves leadership to that member (the samples name b1 as leader and b2 as a follower).
make_leader() {
  local want=$1 leader
  retry 100 "a leader" has_leader
  leader=$(leader_port)
  if [ "$leader" != "$want" ]; then
    echo "moving leadership from :$leader to :$want" >&2
    ETCDCTL_API=3 etcdctl --endpoints "$(url "$leader")" move-leader "$(id_of "$want")" >/dev/null
  fi
  retry 100 "member :$want leading" leads "$want"
}
has_leader() { leader_port >/dev/null; }
leads() { [ "$(leader_port)" = "$1" ]; }
leader_port() {
  local port
  for port in "${CLIENT_PORTS[@]}"; do [ "$(state_of "$port")" = StateLeader ] && echo "$port" && return 0; done
  return 1
}

# ---- Waiting for the state a case needs ------------------------------------------------------------------

watchers() {
  local sum=0 port n
  for port in "${CLIENT_PORTS[@]}"; do
    n=$(curl -s "$(url "$port")/v2/stats/store" | grep -o '"watchers":[0-9]*' | cut -d: -f2) || n=0
    sum=$((sum + ${n:-0}))
  done
  echo "$sum"
}
# Before a watch case: no watcher left from an earlier one (etcd drops a closed client's watcher soon after).
no_watchers() { retry 100 "no watchers left" none_watching; }
none_watching() { [ "$(watchers)" -eq 0 ]; }
# Stands for a watch case's `sleep 1`: returns once some member has registered the watch.
await_watcher() {
  for _ in $(seq 100); do [ "$(watchers)" -gt 0 ] && return 0; sleep 0.1; done
  die "gave up waiting for a watcher"
}
# await_value PORT KEY VALUE: the member at PORT has applied the write that set KEY to VALUE.
await_value() { retry 100 "$2=$3 on :$1" has_value "$@"; }
has_value() { [[ $(curl -s "$(url "$1")/v2/keys/$2") == *"\"value\":\"$3\""* ]]; }
# A write just before a stats sample, to a hidden key no later case lists.
recent_traffic() { curl -s -X PUT "$(url 23791)/v2/keys/_stats_probe" -d value=1 >/dev/null; }

# ---- The case formats ------------------------------------------------------------------------------------

LINE="=================================================================="
DASHES="------------------------------------------------------------------"

# run_into FILE COMMAND: appends what COMMAND prints (stdout and stderr); sets RC to its exit code. Not in a
# subshell, so a case can leave variables for the next one; a case that starts a client in the background waits
# for that one by PID (a bare `wait` would wait for the etcd members too).
run_into() {
  set +e
  eval "$2" >>"$1" 2>&1
  RC=$?
  set -e
}

# http_case TITLE COMMAND [RUN]: a block of etcd-v2-samples.txt. RUN, when given, is what is executed: COMMAND
# plus the waits that make it robust, or with the triggering PUT's answer kept.
http_case() {
  local f="$TMP_OUT/etcd-v2-samples.txt"
  printf '%s\n### %s\n$ %s\n%s\n' "$LINE" "$1" "$2" "$DASHES" >>"$f"
  run_into "$f" "${3:-$2}"
  echo >>"$f"
}

# single_case COMMAND [SHOWN]: a block of etcd-v2-samples-single-member.txt. The file shows commands without
# their shell quotes (the test quotes them again), unless SHOWN says otherwise.
single_case() {
  local f="$TMP_OUT/etcd-v2-samples-single-member.txt"
  printf '### %s\n' "${2:-${1//\'/}}" >>"$f"
  run_into "$f" "$1"
  printf '\n\n' >>"$f"
}

# ctl_case ARGS [RUN]: a block of etcdctl-v2-samples.txt, `etcdctl ARGS` against the single member.
ctl_case() {
  local f="$TMP_OUT/etcdctl-v2-samples.txt"
  printf '### etcdctl %s\n' "$1" >>"$f"
  run_into "$f" "${2:-etcdctl --endpoints $(url 33791) $1}"
  printf '[exit %s]\n\n' "$RC" >>"$f"
}

# trace_case COMMAND [RUN]: a block of etcdctl-v2-traces.txt.
trace_case() {
  local f="$TMP_OUT/etcdctl-v2-traces.txt"
  printf '%s\n$ %s\n---\n' "$LINE" "$1" >>"$f"
  run_into "$f" "${2:-$1}"
  printf '[exit %s]\n' "$RC" >>"$f"
}

# auth_case TITLE COMMAND: a block of etcd-v2-auth-samples.txt (the etcd-v2-samples.txt format).
auth_case() {
  local f="$TMP_OUT/etcd-v2-auth-samples.txt"
  printf '%s\n### %s\n$ %s\n%s\n' "$LINE" "$1" "$2" "$DASHES" >>"$f"
  run_into "$f" "$2"
  echo >>"$f"
}

# auth_ctl_case ARGS [STDIN]: a block of etcdctl-v2-auth-samples.txt, `etcdctl ARGS` against the single member,
# with STDIN (a password etcdctl asks for) piped in when given.
auth_ctl_case() {
  local f="$TMP_OUT/etcdctl-v2-auth-samples.txt"
  printf '### etcdctl %s\n' "$1" >>"$f"
  [ -n "${2:-}" ] && printf '<<< %s\n' "$2" >>"$f"
  run_into "$f" "echo '${2:-}' | etcdctl --endpoints $(url 33791) $1"
  printf '[exit %s]\n\n' "$RC" >>"$f"
}

# ---- The cases -------------------------------------------------------------------------------------------

three_members() {
  local f="$TMP_OUT/etcd-v2-samples.txt" port states="" n=1
  for port in 23791 23792 23793; do states+="b$n $(state_of $port) "; n=$((n + 1)); done
  {
    echo "# etcd $VERSION v2 API raw responses, captured $(date -u -Iseconds) with curl $CURL_VERSION"
    echo "# 3-member cluster on 127.0.0.1: clients :23791 (b1) :23792 (b2) :23793 (b3), --enable-v2=true, fresh data dirs."
    echo "# Leader at capture time: $states"
    echo "# Bodies are exactly as sent (etcd v2 ends each JSON body with a newline)."
  } >"$f"
  local B=http://127.0.0.1:23791
  http_case "PUT create (201 Created, action=set, no prevNode)" "curl -si -L -X PUT $B/v2/keys/message -d value=hello"
  http_case "GET key" "curl -si -L $B/v2/keys/message"
  http_case "PUT overwrite (200 OK, action=set, prevNode present)" "curl -si -L -X PUT $B/v2/keys/message -d value=hello2"
  http_case "GET via a follower (b2) (served locally, non-quorum)" "curl -si -L http://127.0.0.1:23792/v2/keys/message" \
    "await_value 23792 message hello2; curl -si -L http://127.0.0.1:23792/v2/keys/message"
  http_case "GET ?quorum=true via follower" "curl -si -L 'http://127.0.0.1:23792/v2/keys/message?quorum=true'"
  http_case "Key not found (404, errorCode 100)" "curl -si -L $B/v2/keys/nonexistent"
  http_case "CAS failure: prevValue mismatch (412, errorCode 101)" "curl -si -L -X PUT '$B/v2/keys/message?prevValue=wrong' -d value=new"
  http_case "CAS success: prevValue match (200, action=compareAndSwap)" "curl -si -L -X PUT '$B/v2/keys/message?prevValue=hello2' -d value=hello3"
  http_case "CAS failure: prevIndex mismatch (412, errorCode 101)" "curl -si -L -X PUT '$B/v2/keys/message?prevIndex=1' -d value=new"
  http_case "prevExist=false on existing key (412, errorCode 105 Key already exists)" "curl -si -L -X PUT '$B/v2/keys/message?prevExist=false' -d value=new"
  http_case "prevExist=true on missing key (404, errorCode 100)" "curl -si -L -X PUT '$B/v2/keys/missing?prevExist=true' -d value=new"
  http_case "prevExist=false create (201, action=create)" "curl -si -L -X PUT '$B/v2/keys/created?prevExist=false' -d value=c1"
  http_case "prevExist=true update (200, action=update)" "curl -si -L -X PUT '$B/v2/keys/created?prevExist=true' -d value=c2"
  # The watch's answer, then the PUT's own answer; WATCH_INDEX is the event's index, for the next case.
  http_case "GET ?wait=true (long poll); a second client then does PUT message value=world" \
    "curl -si -L '$B/v2/keys/message?wait=true' &  sleep 1; curl -s -X PUT $B/v2/keys/message -d value=world >/dev/null; wait" \
    "no_watchers; curl -si -L '$B/v2/keys/message?wait=true' & W=\$!; await_watcher; TRIGGER=\$(curl -s -X PUT $B/v2/keys/message -d value=world); wait \$W
     printf '\n### (the PUT response that triggered it:)\n%s\n' \"\$TRIGGER\"
     WATCH_INDEX=\$(grep -o '\"modifiedIndex\":[0-9]*' <<<\"\$TRIGGER\" | head -1 | cut -d: -f2)"
  http_case "GET ?wait=true&waitIndex=<past index> returns the historical event immediately" "curl -si -L '$B/v2/keys/message?wait=true&waitIndex=$WATCH_INDEX'"
  http_case "GET ?wait=true&waitIndex=1 (event history keeps the last 1000 events; index 1 is still inside it here, so the first event on this key at or after index 1 is returned at once. An index older than the history gives 400 errorCode 401 \"The event in requested index is outdated and cleared\")" \
    "curl -si -L '$B/v2/keys/message?wait=true&waitIndex=1'"
  http_case "PUT dir=true creates a directory" "curl -si -L -X PUT $B/v2/keys/dir -d dir=true"
  http_case "PUT keys into dir" "curl -si -L -X PUT $B/v2/keys/dir/b -d value=2; curl -si -L -X PUT $B/v2/keys/dir/a -d value=1; curl -si -L -X PUT $B/v2/keys/dir/sub/c -d value=3"
  http_case "GET dir (non-recursive)" "curl -si -L $B/v2/keys/dir"
  http_case "GET ?recursive=true&sorted=true" "curl -si -L '$B/v2/keys/dir?recursive=true&sorted=true'"
  http_case "GET root ?recursive=true&sorted=true" "curl -si -L '$B/v2/keys/?recursive=true&sorted=true'"
  http_case "Set value on a directory (403, errorCode 102 Not a file)" "curl -si -L -X PUT $B/v2/keys/dir -d value=x"
  http_case "Create key under a file (observed: 400 Bad Request, errorCode 104 Not a directory)" "curl -si -L -X PUT $B/v2/keys/message/child -d value=x"
  http_case "DELETE dir without dir=true (403, errorCode 102)" "curl -si -L -X DELETE $B/v2/keys/dir"
  http_case "DELETE non-empty dir with dir=true (403, errorCode 108 Directory not empty)" "curl -si -L -X DELETE '$B/v2/keys/dir?dir=true'"
  http_case "DELETE dir recursive=true" "curl -si -L -X DELETE '$B/v2/keys/dir?recursive=true'"
  http_case "POST in-order key #1 (201, action=create, key=/queue/<index>)" "curl -si -L -X POST $B/v2/keys/queue -d value=Job1"
  http_case "POST in-order key #2" "curl -si -L -X POST $B/v2/keys/queue -d value=Job2"
  http_case "GET in-order dir sorted" "curl -si -L '$B/v2/keys/queue?recursive=true&sorted=true'"
  http_case "PUT with ttl=5 (expiration + ttl fields)" "curl -si -L -X PUT $B/v2/keys/tmp -d value=t -d ttl=5"
  http_case "PUT refresh=true&prevExist=true with ttl (no value, action=update, no watch event)" "curl -si -L -X PUT '$B/v2/keys/tmp?refresh=true&prevExist=true' -d ttl=5"
  http_case "GET after 7 s: expired key (404)" "sleep 7; curl -si -L $B/v2/keys/tmp"
  http_case "DELETE key (200, action=delete)" "curl -si -L -X PUT $B/v2/keys/todel -d value=d >/dev/null; curl -si -L -X DELETE $B/v2/keys/todel"
  http_case "Compare-and-delete failure (412, errorCode 101)" "curl -si -L -X PUT $B/v2/keys/cad -d value=one >/dev/null; curl -si -L -X DELETE '$B/v2/keys/cad?prevValue=two'"
  http_case "Compare-and-delete success (200, action=compareAndDelete)" "curl -si -L -X DELETE '$B/v2/keys/cad?prevValue=one'"
  http_case "DELETE missing key (404)" "curl -si -L -X DELETE $B/v2/keys/nokey"
  http_case "PUT with no value field (sets empty string)" "curl -si -L -X PUT $B/v2/keys/emptyval"
  http_case "Bad ttl (400, errorCode 202)" "curl -si -L -X PUT $B/v2/keys/badttl -d value=x -d ttl=abc"
  http_case "GET /version" "curl -si $B/version"
  http_case "GET /health" "curl -si $B/health"
  http_case "GET /v2/members" "curl -si $B/v2/members"
  local leader_self='for p in 23791 23792 23793; do curl -s http://127.0.0.1:$p/v2/stats/self | grep -q StateLeader && curl -si http://127.0.0.1:$p/v2/stats/self; done'
  local leader_stats='for p in 23791 23792 23793; do curl -s http://127.0.0.1:$p/v2/stats/self | grep -q StateLeader && curl -si http://127.0.0.1:$p/v2/stats/leader; done'
  local follower_stats='for p in 23791 23792 23793; do curl -s http://127.0.0.1:$p/v2/stats/self | grep -q StateFollower && { curl -si http://127.0.0.1:$p/v2/stats/leader; break; }; done'
  http_case "GET /v2/stats/self (leader)" "$leader_self" "recent_traffic; $leader_self"
  http_case "GET /v2/stats/self (follower b2)" "curl -si http://127.0.0.1:23792/v2/stats/self" \
    "recent_traffic; await_value 23792 _stats_probe 1; curl -si http://127.0.0.1:23792/v2/stats/self"
  http_case "GET /v2/stats/leader (on leader)" "$leader_stats" "recent_traffic; $leader_stats"
  http_case "GET /v2/stats/leader on a follower (403 not current leader)" "$follower_stats" "recent_traffic; $follower_stats"
  http_case "GET /v2/stats/store" "curl -si $B/v2/stats/store"
  http_case "GET /v2/machines" "curl -si $B/v2/machines"
  http_case "Unsupported method (405)" "curl -si -X PATCH $B/v2/keys/message"
}

# etcdctl against the same 3 members, after the curl cases (so `ls` shows their keys).
three_member_traces() {
  local f="$TMP_OUT/etcdctl-v2-traces.txt" E="etcdctl --endpoints http://127.0.0.1:23791"
  echo "# etcdctl $VERSION with ETCDCTL_API=2 against http://127.0.0.1:23791, $(date -u -Iseconds)" >"$f"
  trace_case "$E set /key1 value1"
  trace_case "$E get /key1"
  trace_case "$E -o extended get /key1"
  trace_case "$E -o json get /key1"
  trace_case "$E set /dir2/key2 value2"
  trace_case "$E ls --recursive"
  trace_case "$E ls --recursive -p /"
  trace_case "$E mk /key3 value3 --ttl 5"
  trace_case "$E mk /key3 value3 --ttl 5   # again: already exists"
  trace_case "$E -o extended get /key3"
  trace_case "sleep 6.5; $E get /key3   # after ttl"
  trace_case "$E mkdir /dir3"
  trace_case "$E mkdir /dir3   # again"
  trace_case "$E ls /"
  trace_case "$E set /dir3/x 1; $E rmdir /dir3   # not empty"
  trace_case "$E rm /dir3/x; $E rmdir /dir3"
  trace_case "$E rm /key1"
  trace_case "$E rm /key1   # again: not found"
  trace_case "$E set /swap old; $E set --swap-with-value wrong /swap new   # CAS fail"
  trace_case "$E set --swap-with-value old /swap new; $E get /swap"
  trace_case "$E rm --recursive /dir2"
  # The watch cases: `sleep 1` before the first write means "once the watch is registered" (await_watcher).
  local watch cmd
  watch="( timeout 3 $E watch /wkey & sleep 1; $E set /wkey w1 >/dev/null; wait )"
  trace_case "$watch   # watch prints new value and exits" "no_watchers; ${watch/sleep 1/await_watcher}"
  watch="( timeout 4 $E watch --forever /wdir --recursive & sleep 1; $E set /wdir/a 1 >/dev/null; $E set /wdir/b 2 >/dev/null; sleep 1; kill %1 2>/dev/null; wait )"
  trace_case "$watch" "no_watchers; ${watch/sleep 1/await_watcher}"
  cmd="'echo exec-watch fired: \$ETCD_WATCH_ACTION \$ETCD_WATCH_KEY=\$ETCD_WATCH_VALUE index=\$ETCD_WATCH_MODIFIED_INDEX'"
  watch="( timeout 3 $E exec-watch /ekey -- sh -c $cmd & sleep 1; $E set /ekey e1 >/dev/null; sleep 1; wait )"
  trace_case "$watch   # exit 124 = killed by timeout, expected" "no_watchers; ${watch/sleep 1/await_watcher}"
  trace_case "$E member list"
  trace_case "$E cluster-health"
  trace_case "$E --debug get /swap   # shows the HTTP request etcdctl v2 sends"
  trace_case "$E --debug set /dbg v --ttl 10"
  cat >>"$f" <<'EOF'

############ ADDENDUM (corrected invocations). The two watch/exec-watch runs above printed nothing because of etcdctl v2
############ argument parsing (urfave/cli): flags placed after the key are ignored, and exec-watch without any flag takes
############ the LAST argument as the key. Corrected forms:
EOF
  watch="( timeout 3 $E watch --forever --recursive /wdir2 & sleep 1; $E set /wdir2/a 1 >/dev/null; $E set /wdir2/b 2 >/dev/null; sleep 1; wait )"
  trace_case "$watch" "no_watchers; ${watch/sleep 1/await_watcher}"
  watch="( timeout 3 $E exec-watch --recursive /edir2 -- sh -c $cmd & sleep 1; $E set /edir2/z e2 >/dev/null; sleep 1; wait )"
  trace_case "$watch" "no_watchers; ${watch/sleep 1/await_watcher}"
  cmd="'echo exec-watch fired: \$ETCD_WATCH_ACTION \$ETCD_WATCH_KEY=\$ETCD_WATCH_VALUE'"
  watch="( timeout 3 $E exec-watch sh -c $cmd -- /ekey2 & sleep 1; $E set /ekey2 e3 >/dev/null; sleep 1; wait )"
  trace_case "$watch" "no_watchers; ${watch/sleep 1/await_watcher}"
}

single_member() {
  local f="$TMP_OUT/etcd-v2-samples-single-member.txt" S=http://127.0.0.1:33791
  {
    echo "# Raw responses of etcd $VERSION (Debian etcd-server, --enable-v2=true, one member on loopback) to the v2 keys API."
    echo "# Each block: the command, then the exact response with headers. Indexes, dates and ids differ run to run."
    echo
  } >"$f"
  single_case "curl -si -X PUT $S/v2/keys/message -d 'value=Hello world'"
  single_case "curl -si $S/v2/keys/message"
  single_case "curl -si -X PUT $S/v2/keys/message -d 'value=Hello etcd'"
  single_case "curl -si -X DELETE $S/v2/keys/message"
  single_case "curl -si $S/v2/keys/missing"
  single_case "curl -si -X PUT $S/v2/keys/foo -d value=bar -d ttl=5"
  single_case "curl -si -X PUT $S/v2/keys/foo -d ttl=20 -d refresh=true -d prevExist=true"
  single_case "curl -si -X PUT '$S/v2/keys/foo?prevExist=false' -d value=three"
  single_case "curl -si -X PUT '$S/v2/keys/foo?prevValue=two' -d value=three"
  single_case "curl -si -X PUT '$S/v2/keys/foo?prevIndex=1' -d value=three"
  single_case "curl -si -X DELETE '$S/v2/keys/foo?prevValue=bar'"
  single_case "curl -si -X PUT $S/v2/keys/dir -d dir=true"
  single_case "curl -si -X PUT $S/v2/keys/dir/a -d value=1"
  single_case "curl -si -X PUT $S/v2/keys/dir/sub/b -d value=2"
  single_case "curl -si -X PUT $S/v2/keys/dir/_hidden -d value=h"
  single_case "curl -si '$S/v2/keys/dir?recursive=true&sorted=true'"
  single_case "curl -si $S/v2/keys/dir"
  single_case "curl -si -X POST $S/v2/keys/queue -d value=Job1"
  single_case "curl -si -X POST $S/v2/keys/queue -d value=Job2"
  single_case "curl -si '$S/v2/keys/queue?recursive=true&sorted=true'"
  single_case "curl -si -X DELETE '$S/v2/keys/dir?dir=true'"
  single_case "curl -si -X PUT $S/v2/keys/dir/a -d dir=true"
  single_case "curl -si -X PUT $S/v2/keys/dir -d value=x"
  single_case "curl -si -X DELETE '$S/v2/keys/dir?recursive=true'"
  single_case "curl -si -X PUT $S/v2/keys/ttldir -d dir=true -d ttl=30"
  single_case "curl -si -X PUT $S/v2/keys/ -d value=x"
  single_case "curl -si -X PUT $S/v2/keys/bad -d value=x -d ttl=abc"
  single_case "curl -si '$S/v2/keys/message?wait=true&waitIndex=1'"
  single_case "curl -si '$S/v2/keys/foo?quorum=true'"
  single_case "curl -si -X PATCH $S/v2/keys/foo"
  single_case "curl -si $S/v2/members"
  single_case "curl -si $S/version"
  single_case "curl -si $S/health"
  single_case "curl -si $S/v2/stats/self"
  single_case "curl -si $S/v2/stats/store"
  single_case "curl -si $S/v2/stats/leader"
  single_case "no_watchers; curl -si '$S/v2/keys/watched?wait=true' & W=\$!; await_watcher; curl -s -X PUT $S/v2/keys/watched -d value=changed >/dev/null; wait \$W" \
    "curl -si \"$S/v2/keys/watched?wait=true\" (then a PUT value=changed from another client)"
}

# etcdctl on a fresh single member: `ls` must show only what these commands create.
single_member_etcdctl() {
  local f="$TMP_OUT/etcdctl-v2-samples.txt" S=http://127.0.0.1:33791
  {
    echo "# Output and exit code of etcdctl $VERSION in v2 mode (ETCDCTL_API=2) against etcd $VERSION, one member on loopback."
    echo
  } >"$f"
  ctl_case "set /key1 value1"
  ctl_case "get /key1"
  ctl_case "get /nokey"
  ctl_case "mk /key1 again"
  ctl_case "mk /key3 value3 --ttl 15"
  ctl_case "get /key3"
  ctl_case "ls"
  ctl_case "ls --recursive"
  ctl_case "mkdir /d1"
  ctl_case "mkdir /d1"
  ctl_case "set /d1/a 1"
  ctl_case "set /d1/b/c 2"
  ctl_case "ls /d1 --recursive --sort -p"
  ctl_case "update /key1 v2"
  ctl_case "update /nokey v"
  ctl_case "set /key1 v3 --swap-with-value wrong"
  ctl_case "set /key1 v3 --swap-with-value v2"
  ctl_case "set /key1 v4 --swap-with-index 1"
  ctl_case "rm /d1"
  ctl_case "rmdir /d1"
  ctl_case "rm /d1 --recursive"
  ctl_case "setdir /d2"
  ctl_case "updatedir /d2 --ttl 30"
  ctl_case "rm /key1"
  ctl_case "rm /key1"
  ctl_case "member list"
  ctl_case "cluster-health"
  ctl_case "-o json get /key3"
  ctl_case "-o extended get /key3"
  ctl_case "watch /w   (then: set /w hello)" \
    "no_watchers; etcdctl --endpoints $S watch /w & W=\$!; await_watcher; etcdctl --endpoints $S set /w hello >/dev/null; wait \$W"
}

# The v2 auth API on a fresh single member: users, roles, enable/disable, root and guest, Basic auth on keys.
# Request bodies are JSON without spaces (the replay splits the command line on blanks outside quotes).
single_member_auth() {
  local f="$TMP_OUT/etcd-v2-auth-samples.txt" A=http://127.0.0.1:33791
  local J="-H 'Content-Type: application/json'" R="-u root:rootpw" U="-u alice:alicepw"
  {
    echo "# etcd $VERSION v2 auth API raw responses, captured $(date -u -Iseconds) with curl $CURL_VERSION"
    echo "# One member on 127.0.0.1: client :33791 (s1), --enable-v2=true, fresh data dir. Cases run in order."
  } >"$f"
  auth_case "auth state at first (disabled)" "curl -si $A/v2/auth/enable"
  auth_case "no users yet" "curl -si $A/v2/auth/users"
  auth_case "roles: only root" "curl -si $A/v2/auth/roles"
  auth_case "enable without a root user (409)" "curl -si -X PUT $A/v2/auth/enable"
  auth_case "create root" "curl -si -X PUT $A/v2/auth/users/root $J -d '{\"user\":\"root\",\"password\":\"rootpw\"}'"
  auth_case "get root (root role attached)" "curl -si $A/v2/auth/users/root"
  auth_case "empty password (400)" "curl -si -X PUT $A/v2/auth/users/alice $J -d '{\"user\":\"alice\",\"password\":\"\"}'"
  auth_case "name differs from the URL (400)" "curl -si -X PUT $A/v2/auth/users/alice $J -d '{\"user\":\"bob\",\"password\":\"x\"}'"
  auth_case "invalid JSON (400)" "curl -si -X PUT $A/v2/auth/users/alice $J -d '{\"user\":'"
  auth_case "create alice" "curl -si -X PUT $A/v2/auth/users/alice $J -d '{\"user\":\"alice\",\"password\":\"alicepw\"}'"
  auth_case "get alice (no roles)" "curl -si $A/v2/auth/users/alice"
  auth_case "unchanged user (400)" "curl -si -X PUT $A/v2/auth/users/alice $J -d '{\"user\":\"alice\"}'"
  auth_case "get a missing user (404)" "curl -si $A/v2/auth/users/nobody"
  auth_case "create role writer with permissions" "curl -si -X PUT $A/v2/auth/roles/writer $J -d '{\"role\":\"writer\",\"permissions\":{\"kv\":{\"read\":[\"/app/*\"],\"write\":[\"/app/*\"]}}}'"
  auth_case "create writer again (409)" "curl -si -X PUT $A/v2/auth/roles/writer $J -d '{\"role\":\"writer\"}'"
  auth_case "create role reader without permissions" "curl -si -X PUT $A/v2/auth/roles/reader $J -d '{\"role\":\"reader\"}'"
  auth_case "get reader" "curl -si $A/v2/auth/roles/reader"
  auth_case "grant reader read /pub/* and /exact" "curl -si -X PUT $A/v2/auth/roles/reader $J -d '{\"role\":\"reader\",\"grant\":{\"kv\":{\"read\":[\"/pub/*\",\"/exact\"]}}}'"
  auth_case "grant a duplicate permission (409)" "curl -si -X PUT $A/v2/auth/roles/reader $J -d '{\"role\":\"reader\",\"grant\":{\"kv\":{\"read\":[\"/pub/*\"]}}}'"
  auth_case "revoke a permission never granted (ignored: unchanged, 400)" "curl -si -X PUT $A/v2/auth/roles/reader $J -d '{\"role\":\"reader\",\"revoke\":{\"kv\":{\"write\":[\"/nothing\"]}}}'"
  auth_case "grant write /exact" "curl -si -X PUT $A/v2/auth/roles/reader $J -d '{\"role\":\"reader\",\"grant\":{\"kv\":{\"write\":[\"/exact\"]}}}'"
  auth_case "revoke write /exact" "curl -si -X PUT $A/v2/auth/roles/reader $J -d '{\"role\":\"reader\",\"revoke\":{\"kv\":{\"write\":[\"/exact\"]}}}'"
  auth_case "permissions and grant together (400)" "curl -si -X PUT $A/v2/auth/roles/reader $J -d '{\"role\":\"reader\",\"permissions\":{\"kv\":{\"read\":[\"/a\"]}},\"grant\":{\"kv\":{\"read\":[\"/b\"]}}}'"
  auth_case "update a missing role (404)" "curl -si -X PUT $A/v2/auth/roles/nosuch $J -d '{\"role\":\"nosuch\",\"grant\":{\"kv\":{\"read\":[\"/b\"]}}}'"
  auth_case "role name differs from the URL (400)" "curl -si -X PUT $A/v2/auth/roles/reader $J -d '{\"role\":\"other\"}'"
  auth_case "create role root (403)" "curl -si -X PUT $A/v2/auth/roles/root $J -d '{\"role\":\"root\"}'"
  auth_case "grant to role root (403)" "curl -si -X PUT $A/v2/auth/roles/root $J -d '{\"role\":\"root\",\"grant\":{\"kv\":{\"read\":[\"/b\"]}}}'"
  auth_case "delete role root (403)" "curl -si -X DELETE $A/v2/auth/roles/root"
  auth_case "get role root" "curl -si $A/v2/auth/roles/root"
  auth_case "get a missing role (404)" "curl -si $A/v2/auth/roles/nosuch"
  auth_case "grant alice writer and reader" "curl -si -X PUT $A/v2/auth/users/alice $J -d '{\"user\":\"alice\",\"grant\":[\"writer\",\"reader\"]}'"
  auth_case "grant alice writer again (409)" "curl -si -X PUT $A/v2/auth/users/alice $J -d '{\"user\":\"alice\",\"grant\":[\"writer\"]}'"
  auth_case "revoke a role alice does not have (409)" "curl -si -X PUT $A/v2/auth/users/alice $J -d '{\"user\":\"alice\",\"revoke\":[\"nosuch\"]}'"
  auth_case "roles and grant together (400)" "curl -si -X PUT $A/v2/auth/users/alice $J -d '{\"user\":\"alice\",\"roles\":[\"writer\"],\"grant\":[\"reader\"]}'"
  auth_case "update a missing user (404)" "curl -si -X PUT $A/v2/auth/users/nobody $J -d '{\"user\":\"nobody\",\"grant\":[\"writer\"]}'"
  auth_case "create bob with roles" "curl -si -X PUT $A/v2/auth/users/bob $J -d '{\"user\":\"bob\",\"password\":\"bobpw\",\"roles\":[\"reader\"]}'"
  auth_case "create bob again with roles (409)" "curl -si -X PUT $A/v2/auth/users/bob $J -d '{\"user\":\"bob\",\"password\":\"bobpw\",\"roles\":[\"reader\"]}'"
  auth_case "change bob's password" "curl -si -X PUT $A/v2/auth/users/bob $J -d '{\"user\":\"bob\",\"password\":\"bobpw2\"}'"
  auth_case "get alice (roles expanded)" "curl -si $A/v2/auth/users/alice"
  auth_case "list users" "curl -si $A/v2/auth/users"
  auth_case "list roles (no guest yet)" "curl -si $A/v2/auth/roles"
  auth_case "enable" "curl -si -X PUT $A/v2/auth/enable"
  auth_case "enable again as root (409)" "curl -si -X PUT $R $A/v2/auth/enable"
  auth_case "auth state, anonymous (GET needs no root)" "curl -si $A/v2/auth/enable"
  auth_case "guest role created with /* read and write" "curl -si $R $A/v2/auth/roles/guest"
  auth_case "list roles as root" "curl -si $R $A/v2/auth/roles"
  auth_case "list users anonymous (401)" "curl -si $A/v2/auth/users"
  auth_case "list users with a wrong password (401)" "curl -si -u root:wrong $A/v2/auth/users"
  auth_case "list users as a user without the root role (401)" "curl -si $U $A/v2/auth/users"
  auth_case "a malformed Authorization header (401)" "curl -si -H 'Authorization: Basic !!!' $A/v2/auth/users"
  auth_case "get alice as root" "curl -si $R $A/v2/auth/users/alice"
  auth_case "delete root while enabled (403)" "curl -si -X DELETE $R $A/v2/auth/users/root"
  auth_case "guest writes a key (guest role has /*)" "curl -si -X PUT $A/v2/keys/open -d value=1"
  auth_case "guest reads it" "curl -si $A/v2/keys/open"
  auth_case "revoke guest's /* read and write" "curl -si -X PUT $R $A/v2/auth/roles/guest $J -d '{\"role\":\"guest\",\"revoke\":{\"kv\":{\"read\":[\"/*\"],\"write\":[\"/*\"]}}}'"
  auth_case "guest read refused (401, errorCode 110)" "curl -si $A/v2/keys/open"
  auth_case "guest write refused (401)" "curl -si -X PUT $A/v2/keys/open -d value=2"
  auth_case "guest recursive read of / refused (401)" "curl -si '$A/v2/keys/?recursive=true'"
  auth_case "wrong password on a key (401)" "curl -si -u alice:nope $A/v2/keys/open"
  auth_case "unknown user on a key (401)" "curl -si -u mallory:x $A/v2/keys/open"
  auth_case "alice writes under /app/ (writer)" "curl -si -X PUT $U $A/v2/keys/app/x -d value=1"
  auth_case "alice reads it" "curl -si $U $A/v2/keys/app/x"
  auth_case "alice reads /app/ recursively" "curl -si $U '$A/v2/keys/app/?recursive=true'"
  auth_case "alice reads /app recursively (the pattern /app/* does not cover /app: 401)" "curl -si $U '$A/v2/keys/app?recursive=true'"
  auth_case "alice writes outside her prefixes (401)" "curl -si -X PUT $U $A/v2/keys/open -d value=3"
  auth_case "alice reads /pub/a (reader: allowed, not found)" "curl -si $U $A/v2/keys/pub/a"
  auth_case "alice writes /pub/a (read only: 401)" "curl -si -X PUT $U $A/v2/keys/pub/a -d value=1"
  auth_case "alice reads /exact (exact pattern)" "curl -si $U $A/v2/keys/exact"
  auth_case "alice reads /exact/below (exact pattern does not cover it: 401)" "curl -si $U $A/v2/keys/exact/below"
  auth_case "alice deletes /app recursively (the pattern /app/* does not cover /app: 401)" "curl -si -X DELETE $U '$A/v2/keys/app?recursive=true'"
  auth_case "alice deletes /app/x" "curl -si -X DELETE $U $A/v2/keys/app/x"
  auth_case "root reads anything" "curl -si $R $A/v2/keys/open"
  auth_case "bob's old password (401)" "curl -si -u bob:bobpw $A/v2/keys/pub/a"
  auth_case "bob's new password" "curl -si -u bob:bobpw2 $A/v2/keys/pub/a"
  auth_case "alice watches /app/w (allowed: headers come at once), then root writes it" \
    "no_watchers; curl -si $U '$A/v2/keys/app/w?wait=true' & W=\$!; await_watcher; curl -s -X PUT $R $A/v2/keys/app/w -d value=w >/dev/null; wait \$W"
  auth_case "guest watch refused (401)" "curl -si '$A/v2/keys/open?wait=true'"
  auth_case "members read anonymous (GET needs no root)" "curl -si $A/v2/members"
  auth_case "members write anonymous (401)" "curl -si -X POST $A/v2/members $J -d '{\"peerURLs\":[\"http://127.0.0.1:1\"]}'"
  auth_case "members write as alice (401)" "curl -si -X DELETE $U $A/v2/members/1234"
  auth_case "stats need no credentials" "curl -si $A/v2/stats/store"
  auth_case "disable anonymous (401)" "curl -si -X DELETE $A/v2/auth/enable"
  auth_case "disable as alice (401)" "curl -si -X DELETE $U $A/v2/auth/enable"
  auth_case "disable as root" "curl -si -X DELETE $R $A/v2/auth/enable"
  auth_case "disable again (409)" "curl -si -X DELETE $A/v2/auth/enable"
  auth_case "guest role stays after disabling" "curl -si $A/v2/auth/roles/guest"
  auth_case "anonymous key read works again" "curl -si $A/v2/keys/open"
  auth_case "a wrong password on a key while disabled (ignored)" "curl -si -u alice:nope $A/v2/keys/open"
  auth_case "delete alice" "curl -si -X DELETE $A/v2/auth/users/alice"
  auth_case "delete alice again (404)" "curl -si -X DELETE $A/v2/auth/users/alice"
  auth_case "delete role reader" "curl -si -X DELETE $A/v2/auth/roles/reader"
  auth_case "delete a missing role (404)" "curl -si -X DELETE $A/v2/auth/roles/reader"
  auth_case "bob keeps a role that no longer exists" "curl -si $A/v2/auth/users"
  auth_case "delete root while disabled" "curl -si -X DELETE $A/v2/auth/users/root"
  auth_case "POST on users (405)" "curl -si -X POST $A/v2/auth/users"
  auth_case "PATCH on enable (405)" "curl -si -X PATCH $A/v2/auth/enable"
  auth_case "a nested user path (400)" "curl -si $A/v2/auth/users/a/b"
  auth_case "users/ with a trailing slash (the list)" "curl -si $A/v2/auth/users/"
  auth_case "an unknown auth path (404)" "curl -si $A/v2/auth/other"
}

# etcdctl user/role/auth on a fresh single member.
single_member_auth_etcdctl() {
  local f="$TMP_OUT/etcdctl-v2-auth-samples.txt"
  echo "# Output and exit code of etcdctl $VERSION (ETCDCTL_API=2) user/role/auth against etcd $VERSION, one member on loopback." >"$f"
  echo >>"$f"
  auth_ctl_case "user list"
  auth_ctl_case "auth enable"
  auth_ctl_case "user add root:rootpw"
  auth_ctl_case "user add root:rootpw"
  auth_ctl_case "user add carol:carolpw"
  auth_ctl_case "user add dave" davepw
  auth_ctl_case "user passwd dave" davepw2
  auth_ctl_case "role add ops"
  auth_ctl_case "role add ops"
  auth_ctl_case "role add root"
  auth_ctl_case "role grant --path /ops/* --readwrite ops"
  auth_ctl_case "role grant --path /pub/* --read ops"
  auth_ctl_case "role grant --path /pub/* --read ops"
  auth_ctl_case "role grant --path /x ops"
  auth_ctl_case "role get ops"
  auth_ctl_case "role list"
  auth_ctl_case "user grant --roles ops carol"
  auth_ctl_case "user grant --roles ops dave"
  auth_ctl_case "user grant --roles nosuch carol"
  auth_ctl_case "user get carol"
  auth_ctl_case "user list"
  auth_ctl_case "auth enable"
  auth_ctl_case "user list"
  auth_ctl_case "--username root:rootpw user list"
  auth_ctl_case "--username root:wrong user list"
  auth_ctl_case "--username carol:carolpw set /ops/a 1"
  auth_ctl_case "--username carol:carolpw get /ops/a"
  auth_ctl_case "--username carol:carolpw set /other 1"
  auth_ctl_case "--username carol:carolpw get /pub/none"
  auth_ctl_case "--username dave:davepw get /ops/a"
  auth_ctl_case "--username dave:davepw2 get /ops/a"
  auth_ctl_case "--username root:rootpw role revoke --path /pub/* --read ops"
  auth_ctl_case "--username root:rootpw role get ops"
  auth_ctl_case "--username root:rootpw user revoke --roles ops carol"
  auth_ctl_case "--username root:rootpw user revoke --roles ops carol"
  auth_ctl_case "--username root:rootpw user get carol"
  auth_ctl_case "--username root:rootpw user remove root"
  auth_ctl_case "--username root:rootpw auth disable"
  auth_ctl_case "auth disable"
  auth_ctl_case "role remove ops"
  auth_ctl_case "role remove ops"
  auth_ctl_case "role remove root"
  auth_ctl_case "user remove carol"
  auth_ctl_case "user remove carol"
  auth_ctl_case "user get carol"
  auth_ctl_case "role list"
  auth_ctl_case "user remove dave"
  auth_ctl_case "user list"
  auth_ctl_case "user remove root"
}

# ---- Main ------------------------------------------------------------------------------------------------

install_etcd
VERSION=$(etcd --version | sed -n 's/^etcd Version: //p')
CURL_VERSION=$(curl --version | head -1 | cut -d' ' -f2)
case "$VERSION" in 3.4.*) ;; *) echo "capture-etcd-fixtures: warning: etcd $VERSION, the tests expect 3.4" >&2 ;; esac
TMP_OUT=$(mktemp -d /tmp/etcd-fixtures.XXXXXX)
trap 'cleanup; rm -rf "$TMP_OUT"' EXIT

if [ "${CAPTURE_ONLY:-}" != auth ]; then
  echo "3 members (b1 b2 b3)..." >&2
  start_cluster b1:23791:23801 b2:23792:23802 b3:23793:23803
  make_leader 23791
  three_members
  three_member_traces
  cleanup

  echo "single member (s1)..." >&2
  start_cluster s1:33791:33801
  single_member
  cleanup
  start_cluster s1:33791:33801
  single_member_etcdctl
  cleanup
fi

echo "single member, v2 auth (s1)..." >&2
start_cluster s1:33791:33801
single_member_auth
cleanup
start_cluster s1:33791:33801
single_member_auth_etcdctl
cleanup

mkdir -p "$OUT"
cp "$TMP_OUT"/*.txt "$OUT"/
echo "wrote $(cd "$TMP_OUT" && echo *.txt) to test/fixtures/" >&2
