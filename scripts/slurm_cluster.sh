#!/usr/bin/env bash
# A single-node SLURM cluster on this Debian machine, for the tests marked `slurm` (make test-slurm).
#
#   scripts/slurm_cluster.sh up       install (apt-get, as root) and start munge, MariaDB, slurmdbd,
#                                     slurmctld and slurmd in the background; wait until a job runs
#   scripts/slurm_cluster.sh down     stop the daemons `up` started (and only those)
#   scripts/slurm_cluster.sh status   the daemons' PIDs and `sinfo`
#
# One node named after `hostname -s` with this machine's CPUs and most of its memory, in a partition
# `debug` (the default). Accounting (slurmdbd on MariaDB) is on, because submitit polls `sacct` for
# the state of every job. proctrack/linuxproc and task/none: no cgroups needed (containers, VMs).
# The daemons' PIDs and logs go to $SLURM_CLUSTER_DIR (default /tmp/practicum-slurm); `down` stops
# the PIDs recorded there. Config files this script did not write are never overwritten.
set -euo pipefail

STATE=${SLURM_CLUSTER_DIR:-/tmp/practicum-slurm}
CONF_DIR=/etc/slurm
MARK="# written by practicum scripts/slurm_cluster.sh"
NODE=$(hostname -s)
PACKAGES=(slurm-wlm munge slurmdbd mariadb-server)

say() { echo "slurm_cluster: $*"; }
die() { echo "slurm_cluster: error: $*" >&2; exit 1; }

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmdbd >/dev/null && command -v munged >/dev/null \
        && command -v mariadbd >/dev/null; then
        return
    fi
    [ "$(id -u)" = 0 ] || die "installing ${PACKAGES[*]} needs root (apt-get); run as root or install them first"
    command -v apt-get >/dev/null || die "no apt-get: install ${PACKAGES[*]} with this system's package manager"
    say "installing ${PACKAGES[*]} (about a minute)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${PACKAGES[@]}" >"$STATE/apt.log" 2>&1 \
        || { apt-get update -q >>"$STATE/apt.log" 2>&1 && apt-get install -y -q "${PACKAGES[@]}" >>"$STATE/apt.log" 2>&1; } \
        || die "apt-get install ${PACKAGES[*]} failed: see $STATE/apt.log"
}

# write FILE from stdin unless another file is there (one this script did not write)
write_conf() {
    local file=$1 mode=$2 text
    text=$(cat)
    if [ -f "$file" ] && ! grep -qF "$MARK" "$file"; then
        die "$file exists and was not written by this script: move it away to use this test cluster"
    fi
    printf '%s\n%s\n' "$MARK" "$text" >"$file"
    chmod "$mode" "$file"
}

configure() {
    local cpus mem
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 85 / 100 ))
    mkdir -p "$CONF_DIR" /var/spool/slurmctld /var/spool/slurmd /run/munge /run/mysqld
    write_conf "$CONF_DIR/slurm.conf" 644 <<EOF
ClusterName=practicum
SlurmctldHost=$NODE
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=10
MinJobAge=30
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
NodeName=$NODE CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    write_conf "$CONF_DIR/slurmdbd.conf" 600 <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$STATE/slurmdbd.pid
LogFile=$STATE/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=practicum
StorageLoc=slurm_acct_db
EOF
}

# start a daemon in its own session, detached; record its PID
start() {
    local name=$1; shift
    if [ -f "$STATE/$name.started" ] && kill -0 "$(cat "$STATE/$name.started")" 2>/dev/null; then
        return
    fi
    setsid "$@" >>"$STATE/$name.out" 2>&1 </dev/null &
    echo $! >"$STATE/$name.started"
}

wait_for() {
    local what=$1 seconds=$2; shift 2
    for _ in $(seq "$seconds"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    die "$what did not come up in ${seconds}s: see the logs in $STATE"
}

up() {
    mkdir -p "$STATE"
    install_packages
    configure
    [ -f /etc/munge/munge.key ] || { command -v mungekey >/dev/null && mungekey --create; } \
        || create-munge-key -f
    chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
    start munged runuser -u munge -- munged --foreground
    wait_for munge 20 munge -n
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >"$STATE/mariadb-install.log" 2>&1
    chown mysql:mysql /run/mysqld
    start mariadb mariadbd --user=mysql --socket=/run/mysqld/mysqld.sock
    wait_for MariaDB 60 mariadb -e "select 1"
    mariadb -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'practicum';
                GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
    start slurmdbd slurmdbd -D
    wait_for slurmdbd 60 sacctmgr -n list cluster
    sacctmgr -i add cluster practicum >/dev/null 2>&1 || true
    start slurmctld slurmctld -D -i
    start slurmd slurmd -D
    wait_for "the node" 60 bash -c "sinfo -h -N -o '%T' | grep -qE '^(idle|mixed|allocated)'"
    wait_for "a first job" 60 srun -N1 -n1 -t 1 true
    say "up: node $NODE, partition debug ($(sinfo -h -o '%c CPUs, %m MB')); logs in $STATE"
}

down() {
    local name pid
    for name in slurmd slurmctld slurmdbd mariadb munged; do
        [ -f "$STATE/$name.started" ] || continue
        pid=$(cat "$STATE/$name.started")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
            kill -KILL -- "-$pid" 2>/dev/null || true
        fi
        rm -f "$STATE/$name.started"
    done
    say "down"
}

status() {
    local name
    for name in munged mariadb slurmdbd slurmctld slurmd; do
        if [ -f "$STATE/$name.started" ] && kill -0 "$(cat "$STATE/$name.started")" 2>/dev/null; then
            echo "$name: running (pid $(cat "$STATE/$name.started"))"
        else
            echo "$name: not running"
        fi
    done
    sinfo 2>/dev/null || true
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
