#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for tests/slurm/ (run as root):
#   bash tests/slurm/cluster.sh install  # only install slurm-wlm + munge if missing
#   bash tests/slurm/cluster.sh start    # install slurm-wlm + munge if missing, start, wait for idle
#   bash tests/slurm/cluster.sh status   # the daemons this script started, and sinfo
#   bash tests/slurm/cluster.sh stop     # stop exactly those daemons
# munged, slurmctld and slurmd run as plain daemons (no systemd, no cgroups):
# proctrack/linuxproc and task/none need nothing from the kernel that a container lacks.
# Everything lives in $SEQLAB_SLURM_DIR (default /tmp/seqlab-slurm); /etc/slurm/slurm.conf is a
# link to its slurm.conf, so sbatch and sinfo find the cluster with no SLURM_CONF set.
set -euo pipefail

DIR=${SEQLAB_SLURM_DIR:-/tmp/seqlab-slurm}
PIDS=$DIR/pids  # one file per daemon this script started: its PID
CONF=$DIR/slurm.conf
LINK=/etc/slurm/slurm.conf
PARTITION=debug
WAIT_S=${SEQLAB_SLURM_WAIT_S:-60}  # for the node to show idle
NODE=$(hostname -s)

die() {
    echo "cluster.sh: $*" >&2
    exit 1
}

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
        && return
    [[ $EUID -eq 0 ]] || die "slurm-wlm and munge are not installed, and installing them needs root"
    echo "installing slurm-wlm and munge"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

write_conf() {
    mkdir -p "$DIR"/{state,spool,log,pids}
    # this machine as slurmd sees it: CPUs, sockets, cores, threads, RealMemory (MB)
    local hardware
    hardware=$(slurmd -C | head -n 1 | sed 's/^NodeName=[^ ]* //')
    cat >"$CONF" <<EOF
# written by tests/slurm/cluster.sh for $NODE
ClusterName=seqlab
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
# no slurmdbd: sacct has nothing to read, squeue and scontrol know a job until MinJobAge after it
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=600
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
NodeName=$NODE $hardware State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    mkdir -p "$(dirname "$LINK")"
    if [[ -e $LINK || -L $LINK ]] && [[ $(readlink "$LINK") != "$CONF" ]]; then
        die "$LINK exists and is not this script's: move it away to use this test cluster"
    fi
    ln -sfn "$CONF" "$LINK"
}

ensure_munge_key() {
    [[ -s /etc/munge/munge.key ]] && return
    mkdir -p /etc/munge
    mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
}

alive() {  # alive NAME: the daemon NAME this script started is running
    local file=$PIDS/$1 pid
    [[ -f $file ]] || return 1
    pid=$(<"$file")
    [[ -d /proc/$pid && $(</proc/"$pid"/comm) == "$1" ]]
}

launch() {  # launch NAME COMMAND...: start a daemon in the foreground of its own session
    local name=$1
    shift
    alive "$name" && return
    # not a process-group leader, so setsid does not fork: $! is the daemon itself
    setsid "$@" >"$DIR/log/$name.out" 2>&1 </dev/null &
    echo $! >"$PIDS/$name"
    sleep 0.5
    alive "$name" || die "$name did not start: see $DIR/log/$name.out and $DIR/log/"
}

start() {
    install_packages
    write_conf
    ensure_munge_key
    if ! alive munged && ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        install -d -o munge -g munge -m 0755 /run/munge
        launch munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F
    fi  # a munged this script did not start is used, never stopped
    launch slurmctld slurmctld -D -i
    launch slurmd slurmd -D
    local state="" waited=0
    while ((waited < WAIT_S)); do
        state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n 1)
        [[ $state == idle || $state == mixed || $state == allocated ]] && break
        sleep 1
        waited=$((waited + 1))
    done
    if ((waited >= WAIT_S)); then
        sinfo -R 2>&1 >&2 || true
        die "node $NODE is '${state:-not known to slurmctld}' after ${WAIT_S}s, not idle: see $DIR/log/"
    fi
    echo "SLURM up: node $NODE $state, partition $PARTITION (config $CONF, logs $DIR/log)"
}

stop() {
    local name pid
    for name in slurmd slurmctld munged; do
        alive "$name" || { rm -f "$PIDS/$name"; continue; }
        pid=$(<"$PIDS/$name")
        kill -TERM "$pid"
        for _ in $(seq 50); do
            [[ -d /proc/$pid ]] || break
            sleep 0.2
        done
        [[ -d /proc/$pid ]] && kill -KILL "$pid"
        rm -f "$PIDS/$name"
        echo "stopped $name ($pid)"
    done
    [[ $(readlink "$LINK" 2>/dev/null) == "$CONF" ]] && rm -f "$LINK"
    return 0
}

status() {
    local name up=0
    for name in munged slurmctld slurmd; do
        if alive "$name"; then
            echo "$name: running ($(<"$PIDS/$name"))"
        else
            echo "$name: not started by this script"
            [[ $name == munged ]] || up=1
        fi
    done
    sinfo 2>&1 || up=1
    return $up
}

case ${1:-} in
    install) install_packages ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) die "usage: bash tests/slurm/cluster.sh install|start|stop|status" ;;
esac
