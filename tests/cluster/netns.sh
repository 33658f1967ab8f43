#!/bin/bash
# The cluster tests' hosts, built from network namespaces (issue 19's acceptance harness).
#
#   netns.sh up RUN_ID        hub namespace tb<ID>-hub with a bridge br0, and one namespace per host,
#                             tb<ID>-<host>, each with lo up and eth0, a veth whose other end
#                             (v-<host>) is a port of br0 in the hub; 10.77.0.0/24:
#                               redis .2, cam .3, probe .5, w1 .11, w2 .12, w3 .13, w4 .14
#   netns.sh down RUN_ID      ends what still runs in those namespaces (by PID), deletes them; idempotent
#   netns.sh cut RUN_ID HOST  sets HOST's veth end in the hub down (its packets stop both ways;
#                             open TCP connections stall, nothing is reset)
#   netns.sh mend RUN_ID HOST sets it up again
#   netns.sh exec RUN_ID HOST CMD...   runs CMD in HOST's namespace
#   netns.sh ns RUN_ID HOST   prints the namespace's name;  netns.sh addr HOST: the address
#   netns.sh reach RUN_ID HOST ADDR [PORT]   "reachable" (exit 0) when ADDR answers TCP from HOST in 2 s
#   netns.sh status RUN_ID    the namespaces of the run, the hub's ports and their state
#
# Only `ip netns` / `ip -n` are used: the veths are created inside the hub namespace with their peer
# moved straight into the host's namespace, so the host's own network is never touched, and
# parallel runs (different ids) have nothing in common. RUN_ID: 1-6 of [a-z0-9].
set -u

HOSTS="redis cam probe w1 w2 w3 w4"

addr_of() {
    case "$1" in
        redis) echo 10.77.0.2 ;;
        cam) echo 10.77.0.3 ;;
        probe) echo 10.77.0.5 ;;
        w1) echo 10.77.0.11 ;;
        w2) echo 10.77.0.12 ;;
        w3) echo 10.77.0.13 ;;
        w4) echo 10.77.0.14 ;;
        *) echo "unknown host: $1 (hosts: $HOSTS)" >&2; return 1 ;;
    esac
}

check_id() {
    if ! [[ "$1" =~ ^[a-z0-9]{1,6}$ ]]; then
        echo "RUN_ID must be 1-6 characters of [a-z0-9], not '$1'" >&2
        exit 2
    fi
}

# reach NS ADDR [PORT]: 0 when ADDR answers from NS within 2 s (connected, or refused: port 1 is closed).
reach() {
    local out
    out=$(ip netns exec "$1" timeout 2 bash -c "exec 3<>/dev/tcp/$2/${3:-1}" 2>&1) && return 0
    [[ "$out" == *"refused"* ]]
}

ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

do_down() {
    local id=$1 ns pids status=0
    for ns in $(ip netns list | awk '{print $1}' | grep "^tb${id}-"); do
        pids=$(ip netns pids "$ns" 2>/dev/null)
        if [ -n "$pids" ]; then
            echo "netns.sh: ending what still runs in $ns: $(echo $pids)" >&2
            kill -TERM $pids 2>/dev/null
            for _ in 1 2 3 4 5 6 7 8 9 10; do
                pids=$(ip netns pids "$ns" 2>/dev/null)
                [ -z "$pids" ] && break
                sleep 0.2
            done
            [ -n "$pids" ] && kill -KILL $pids 2>/dev/null && sleep 0.2
        fi
        ip netns del "$ns" 2>/dev/null || { echo "netns.sh: cannot delete $ns" >&2; status=1; }
    done
    return $status
}

do_up() {
    local id=$1 host ns
    local hub="tb${id}-hub"
    do_down "$id"
    set -e
    ip netns add "$hub"
    ip -n "$hub" link set lo up
    ip -n "$hub" link add br0 type bridge stp_state 0 forward_delay 0
    ip -n "$hub" link set br0 up
    for host in $HOSTS; do
        ns="tb${id}-${host}"
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip -n "$hub" link add "v-${host}" type veth peer name eth0 netns "$ns"
        ip -n "$hub" link set "v-${host}" master br0
        ip -n "$hub" link set "v-${host}" up
        ip -n "$ns" addr add "$(addr_of "$host")/24" dev eth0
        ip -n "$ns" link set eth0 up
    done
    set +e
    # Every port forwarding before we return: each host reaches redis' address (no ping here: a TCP
    # connect to a closed port answered "refused" proves the way there and back).
    for host in $HOSTS; do
        [ "$host" = redis ] && continue
        reach "tb${id}-${host}" 10.77.0.2 ||
            { echo "netns.sh: $host cannot reach 10.77.0.2" >&2; return 1; }
    done
    echo "up: tb${id}-{hub,$(echo $HOSTS | tr ' ' ,)}"
}

cmd=${1:-}
case "$cmd" in
    up) check_id "${2:?RUN_ID}"; do_up "$2" ;;
    down) check_id "${2:?RUN_ID}"; do_down "$2" ;;
    cut | mend)
        check_id "${2:?RUN_ID}"; addr_of "${3:?HOST}" >/dev/null || exit 2
        state=$([ "$cmd" = cut ] && echo down || echo up)
        ip -n "tb$2-hub" link set "v-$3" "$state" ;;
    exec)
        check_id "${2:?RUN_ID}"; addr_of "${3:?HOST}" >/dev/null || exit 2
        ns="tb$2-$3"; shift 3; exec ip netns exec "$ns" "$@" ;;
    ns) check_id "${2:?RUN_ID}"; addr_of "${3:?HOST}" >/dev/null || exit 2; echo "tb$2-$3" ;;
    addr) addr_of "${2:?HOST}" ;;
    reach)
        check_id "${2:?RUN_ID}"; addr_of "${3:?HOST}" >/dev/null || exit 2
        reach "tb$2-$3" "${4:?ADDR}" "${5:-1}" && echo reachable || { echo unreachable; exit 1; } ;;
    status)
        check_id "${2:?RUN_ID}"
        ip netns list | awk '{print $1}' | grep "^tb$2-"
        ns_exists "tb$2-hub" && ip -n "tb$2-hub" -br link show master br0 ;;
    *)
        sed -n '2,20p' "$0" >&2
        exit 2 ;;
esac
