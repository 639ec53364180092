#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for tests/test_slurm.py and CI.
#
#   .ci/slurm.sh install   apt-get install slurmctld slurmd slurm-client munge (Debian/Ubuntu, root)
#   .ci/slurm.sh start     write the config, start munged, slurmctld and slurmd (no systemd needed),
#                          wait until `sinfo` shows the node idle; does nothing if already up
#   .ci/slurm.sh stop      kill the daemons this script started, by the PIDs in their pid files
#   .ci/slurm.sh status    print what is running
#
# The node is `hostname -s` with the CPUs and memory `slurmd -C` reports, cons_tres with
# CR_Core_Memory, DefMemPerCPU=1000 and two fake GPUs (gres backed by character devices made with
# mknod: slurmd only counts a GPU that has a device file). See /work/shared/notes or docs/slurm.md.
# Needs root. Environment: SLURM_START_TIMEOUT (seconds to wait for the idle node, default 60).
set -euo pipefail

CONF_DIR=/etc/slurm
STATE_DIR=/var/spool/slurmctld
SLURMD_DIR=/var/spool/slurmd
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm
MUNGE_RUN=/run/munge
MUNGE_PID=$MUNGE_RUN/munged.pid
CTLD_PID=$RUN_DIR/slurmctld.pid
SLURMD_PID=$RUN_DIR/slurmd.pid
# Written by this script: the config lives here only while we own it.
MARKER="# written by genzoo .ci/slurm.sh"

die() { echo "slurm.sh: error: $*" >&2; exit 1; }
say() { echo "slurm.sh: $*" >&2; }

need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root (it writes $CONF_DIR and starts daemons)"; }

alive() {  # alive PIDFILE: the pid in the file is a running process
    [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

cmd_install() {
    need_root
    if command -v sbatch >/dev/null && command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v munged >/dev/null; then
        say "already installed ($(slurmd -V))"
        return 0
    fi
    command -v apt-get >/dev/null || die "apt-get not found: install slurmctld, slurmd, slurm-client and munge by hand"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge \
        || die "apt-get install slurmctld slurmd slurm-client munge failed"
    say "installed $(slurmd -V)"
}

write_config() {
    local host cpus mem sockets cores threads real
    host=$(hostname -s)
    # slurmd -C: NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105
    local hw; hw=$(slurmd -C | head -1) || die "slurmd -C failed"
    field() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$hw"; }
    cpus=$(field CPUs); sockets=$(field SocketsPerBoard); cores=$(field CoresPerSocket)
    threads=$(field ThreadsPerCore); real=$(field RealMemory)
    [[ -n $cpus && -n $real ]] || die "could not parse 'slurmd -C': $hw"
    mem=$(( real * 9 / 10 ))  # a little below what the machine has, or the node goes INVAL

    if [[ -f $CONF_DIR/slurm.conf ]] && ! grep -qF "$MARKER" "$CONF_DIR/slurm.conf"; then
        die "$CONF_DIR/slurm.conf exists and was not written by this script; refusing to overwrite it"
    fi
    mkdir -p "$CONF_DIR"
    cat >"$CONF_DIR/slurm.conf" <<EOF
$MARKER: a one-node test cluster.
ClusterName=genzoo
SlurmctldHost=$host
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SLURMD_DIR
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups in a container: track processes through /proc, bind tasks with sched_setaffinity.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default a job with no --mem takes the whole node.
DefMemPerCPU=1000
# Finished jobs stay visible to squeue for an hour: the Snakemake plugin polls with squeue, and the
# tests list every job of a run after it ends (a 2-core CI run takes over 5 minutes, the default).
MinJobAge=3600
ReturnToService=2
KillWait=10
GresTypes=gpu
NodeName=$host CPUs=$cpus Sockets=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$mem Gres=gpu:2 State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$CONF_DIR/gres.conf" <<EOF
$MARKER: two fake GPUs (character devices; CUDA is not involved).
NodeName=$host Name=gpu File=/dev/fakegpu[0-1]
EOF
    for n in 0 1; do
        [[ -c /dev/fakegpu$n ]] || mknod -m 666 /dev/fakegpu$n c 1 3 \
            || die "mknod /dev/fakegpu$n failed (needs root and a /dev that allows device nodes)"
    done
}

prepare_dirs() {
    mkdir -p "$MUNGE_RUN" "$RUN_DIR" "$STATE_DIR" "$SLURMD_DIR" "$LOG_DIR" /var/log/munge /var/lib/munge
    chown munge:munge "$MUNGE_RUN" /var/log/munge /var/lib/munge
    chmod 0755 "$MUNGE_RUN"
    chown slurm:slurm "$RUN_DIR" "$STATE_DIR" "$LOG_DIR"
    if [[ ! -s /etc/munge/munge.key ]]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    chown munge:munge /etc/munge /etc/munge/munge.key
    chmod 0700 /etc/munge
    chmod 0400 /etc/munge/munge.key
}

wait_idle() {
    local host=$1 deadline=$(( SECONDS + ${SLURM_START_TIMEOUT:-60} )) state=""
    while (( SECONDS < deadline )); do
        state=$(sinfo -h -n "$host" -o %T 2>/dev/null | head -1 || true)
        case $state in
            idle|mixed|allocated) say "node $host is $state"; return 0 ;;
            *drain*|inval*|down*)
                scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
        esac
        sleep 1
    done
    echo "--- sinfo:" >&2; sinfo -N -l >&2 || true
    echo "--- slurmctld.log (tail):" >&2; tail -n 20 "$LOG_DIR/slurmctld.log" >&2 || true
    echo "--- slurmd.log (tail):" >&2; tail -n 20 "$LOG_DIR/slurmd.log" >&2 || true
    die "node $host not idle after ${SLURM_START_TIMEOUT:-60} s (state: '${state:-none}')"
}

cmd_start() {
    need_root
    for bin in munged slurmctld slurmd sinfo sbatch; do
        command -v "$bin" >/dev/null || die "$bin not found: run '.ci/slurm.sh install' first"
    done
    local host; host=$(hostname -s)
    if alive "$MUNGE_PID" && alive "$CTLD_PID" && alive "$SLURMD_PID"; then
        say "already running"
        wait_idle "$host"
        return 0
    fi
    write_config
    prepare_dirs
    if ! alive "$MUNGE_PID"; then
        runuser -u munge -- /usr/sbin/munged --pid-file="$MUNGE_PID" \
            || die "munged failed to start (see /var/log/munge/munged.log)"
    fi
    munge -n | unmunge >/dev/null || die "munge does not work (munge -n | unmunge failed)"
    if ! alive "$CTLD_PID"; then
        slurmctld || die "slurmctld failed to start (see $LOG_DIR/slurmctld.log)"
    fi
    if ! alive "$SLURMD_PID"; then
        slurmd || die "slurmd failed to start (see $LOG_DIR/slurmd.log)"
    fi
    wait_idle "$host"
    sinfo -o "%P %N %T %c %m %G" >&2
}

stop_one() {  # stop_one NAME PIDFILE
    local name=$1 pidfile=$2 pid
    if ! alive "$pidfile"; then
        rm -f "$pidfile"
        return 0
    fi
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        say "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    say "stopped $name (pid $pid)"
}

cmd_stop() {
    need_root
    stop_one slurmd "$SLURMD_PID"
    stop_one slurmctld "$CTLD_PID"
    stop_one munged "$MUNGE_PID"
}

cmd_status() {
    local name pidfile rc=0
    for name in munged:$MUNGE_PID slurmctld:$CTLD_PID slurmd:$SLURMD_PID; do
        pidfile=${name#*:}
        if alive "$pidfile"; then echo "${name%%:*}: running (pid $(cat "$pidfile"))"
        else echo "${name%%:*}: not running"; rc=1; fi
    done
    (( rc == 0 )) && sinfo -o "%P %N %T %c %m %G"
    return $rc
}

case ${1:-} in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
