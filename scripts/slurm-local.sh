#!/usr/bin/env bash
# Starts and stops a real single-node Slurm cluster on this (Debian) machine, for the project's tests and
# for trying `llm-market slurm --submit` locally. Facts it relies on: shared/notes/slurm.md.
#
#   scripts/slurm-local.sh install   # apt-get the Debian packages (slurmctld slurmd slurm-client munge)
#   scripts/slurm-local.sh up        # start munged (if not running), slurmctld and slurmd; wait until idle
#   scripts/slurm-local.sh down      # cancel our jobs, stop only the daemons this script started (by pid)
#   scripts/slurm-local.sh env       # print the export line for SLURM_CONF
#
# State, configuration, logs and pid files live in $LLM_MARKET_SLURM_DIR (default /tmp/llm-market-slurm).
set -euo pipefail

DIR=${LLM_MARKET_SLURM_DIR:-/tmp/llm-market-slurm}
CONF=$DIR/slurm.conf
export SLURM_CONF=$CONF

log() { echo "slurm-local: $*" >&2; }

alive() { # pid: running and not a zombie (PID 1 here reaps late)
  local pid=$1
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] && ! awk '{exit !($3=="Z")}' "/proc/$pid/stat"
}

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null && command -v munged >/dev/null; then
    return 0
  fi
  log "installing slurmctld slurmd slurm-client munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
}

up() {
  install_packages
  mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
  # munge: reuse a running munged, else start one and remember its pid.
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    install -d -o munge -g munge -m 0755 /run/munge
    [ -f /etc/munge/munge.key ] || { log "no /etc/munge/munge.key"; exit 1; }
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    cat /run/munge/munged.pid > "$DIR/munged.pid"
    log "started munged (pid $(cat "$DIR/munged.pid"))"
  fi
  local mem
  mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
  cat > "$CONF" <<CONF
ClusterName=llm-market
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
DependencyParameters=kill_invalid_depend
ReturnToService=2
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 RealMemory=${mem:-1000}
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
  if alive "$(cat "$DIR/slurmctld.pid" 2>/dev/null || true)"; then
    log "slurmctld already running"
  else
    slurmctld -f "$CONF"
  fi
  if ! alive "$(cat "$DIR/slurmd.pid" 2>/dev/null || true)"; then
    slurmd -f "$CONF" -N localhost
  fi
  for _ in $(seq 150); do
    state=$(sinfo -h -o %t 2>/dev/null | head -n1 || true)
    if [ "$state" = "idle" ]; then
      log "cluster up (SLURM_CONF=$CONF)"
      return 0
    fi
    sleep 0.2
  done
  log "the node did not become idle; logs in $DIR/log"; sinfo >&2 || true
  exit 1
}

stop_pid() {
  local file=$1 name=$2 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if alive "$pid"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -9 "$pid" 2>/dev/null || true
    log "stopped $name (pid $pid)"
  fi
  rm -f "$file"
}

down() {
  if [ -f "$CONF" ]; then
    scancel --user=root >/dev/null 2>&1 || true
  fi
  stop_pid "$DIR/slurmd.pid" slurmd
  stop_pid "$DIR/slurmctld.pid" slurmctld
  stop_pid "$DIR/munged.pid" munged
}

case "${1:-}" in
  install) install_packages ;;
  up) up ;;
  down) down ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 install|up|down|env" >&2; exit 2 ;;
esac
