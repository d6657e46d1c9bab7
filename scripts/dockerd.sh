#!/bin/sh
# Starts a Docker daemon for caravan's tests when none answers, and stops only that one.
#
#   scripts/dockerd.sh start   # no-op when `docker version` answers; else starts dockerd
#                              # (vfs storage, its own data-root, exec-root and pidfile) on the
#                              # default socket and waits until it answers
#   scripts/dockerd.sh stop    # stops the daemon `start` started, if any; never another one
#
# Needs root and Debian's docker.io (scripts/setup.sh installs it). Environment:
#   CARAVAN_DOCKERD_ROOT   state directory (default /var/lib/caravan-dockerd)
#   CARAVAN_DOCKERD_WAIT   seconds to wait for the daemon (default 60)
#   DOCKER_HOST            the socket to check and serve (default unix:///var/run/docker.sock)
#   CARAVAN_DOCKERD_ARGS   extra dockerd arguments (e.g. `--bridge=none --iptables=false`)
set -eu

state="${CARAVAN_DOCKERD_ROOT:-/var/lib/caravan-dockerd}"
pidfile="$state/dockerd.pid"
log="$state/dockerd.log"
wait_secs="${CARAVAN_DOCKERD_WAIT:-60}"
host="${DOCKER_HOST:-unix:///var/run/docker.sock}"

answers() {
    docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

ours_running() {
    [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

start() {
    if answers; then
        echo "dockerd.sh: a Docker daemon answers ($(docker version --format '{{.Server.Version}}')); not starting one"
        return 0
    fi
    if ! command -v dockerd >/dev/null 2>&1; then
        echo "dockerd.sh: dockerd is not installed: apt-get install -y docker.io" >&2
        return 1
    fi
    mkdir -p "$state/data" "$state/exec"
    if ours_running; then
        echo "dockerd.sh: our dockerd (pid $(cat "$pidfile")) runs but does not answer yet"
    else
        rm -f "$pidfile"
        # Setsid: the daemon outlives this script and the caller's process group.
        setsid dockerd \
            --storage-driver=vfs \
            --data-root "$state/data" \
            --exec-root "$state/exec" \
            --pidfile "$pidfile" \
            --host "$host" \
            ${CARAVAN_DOCKERD_ARGS:-} \
            >"$log" 2>&1 </dev/null &
    fi
    waited=0
    while ! answers; do
        if [ "$waited" -ge "$wait_secs" ]; then
            echo "dockerd.sh: dockerd did not answer within ${wait_secs}s; its log ($log):" >&2
            tail -n 30 "$log" >&2 || true
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    echo "dockerd.sh: started dockerd $(docker version --format '{{.Server.Version}}') (pid $(cat "$pidfile" 2>/dev/null || echo '?'))"
}

stop() {
    if ! ours_running; then
        echo "dockerd.sh: no dockerd of ours runs"
        rm -f "$pidfile"
        return 0
    fi
    pid="$(cat "$pidfile")"
    kill -TERM "$pid"
    waited=0
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$waited" -ge 30 ]; then
            echo "dockerd.sh: dockerd (pid $pid) still runs 30s after SIGTERM: SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 1
        waited=$((waited + 1))
    done
    rm -f "$pidfile"
    echo "dockerd.sh: stopped dockerd (pid $pid)"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *)
        echo "usage: $0 start|stop" >&2
        exit 2
        ;;
esac
