#!/usr/bin/env bash
# Real-Slurm test of the cluster profile (workflow/profiles/slurm); `make test-slurm` runs it.
#
# On a Debian machine, as root, this script
#   1. installs Slurm, munge and the accounting database from Debian packages (slurmctld, slurmd,
#      slurm-client, slurmdbd, munge, mariadb-server) if they are missing, without letting the
#      packages start any service;
#   2. starts a private single-node cluster on this machine only: munged, mariadbd, slurmdbd,
#      slurmctld and slurmd, each in the foreground as a child of this script (PIDs recorded),
#      on free ports, with configs, key, sockets, state, logs and database in one temporary
#      directory. Outside it only /etc/slurm/slurm.conf is touched: a link to the test's
#      slurm.conf while the test runs (see step 2 below for why); a machine that has its own
#      /etc/slurm/slurm.conf is refused;
#   3. waits until `sinfo` shows the node idle, then runs the tiny study config/test.yaml through
#      `--workflow-profile workflow/profiles/slurm`, unedited (only the first status check comes
#      after 5 s instead of the plugin's 40 s), and at the same time the same config locally
#      (`--cores 2`, no profile), each in a fresh directory;
#   4. checks (a) that every Snakemake job but the local target `all` was submitted with sbatch
#      and COMPLETED in Slurm: Snakemake's log, `sacct` (slurmdbd), the slurmctld log and the
#      job-completion log must name the same jobs; (b) that every result file equals the local
#      run's: tables (Parquet, CSV) exactly, JSON exactly, other files byte for byte, except
#      recorded wall times and memory (`seconds`, `train_seconds`, `wall_seconds`,
#      `sampler_seconds`, `shift_seconds`, `max_rss_mb`) and the manifest's hash of history.csv (which holds
#      those times); model.zip by its entries the same way; Markdown files (renderings of the
#      compared tables, with their wall times) only for being non-empty;
#   5. on exit (also on failure or Ctrl-C) cancels leftover jobs, stops the daemons it started
#      by their PIDs, removes the link and the temporary directory (FLOWPRIOR_SLURM_KEEP=1
#      keeps the directory for debugging).
#
# Accounting: sacct is served by slurmdbd with a throw-away MariaDB. That costs ~17 s of
# installing and ~5 s of start-up, and it tests the plugin on its default status path
# (`sacct`), the one real clusters use; without slurmdbd, Slurm 22.05's sacct has no data.
# The packages stay installed; the summary prints the command that removes them.
#
# Needs: root, Debian (tested on 12 "bookworm": Slurm 22.05.8), apt access to the Debian
# mirrors, `snakemake` with snakemake-executor-plugin-slurm on PATH (the Makefile puts .venv/bin
# first), and memory for the profile's largest request. Exits non-zero on any failure.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)
CLUSTER=flowpriortest
T_START=$SECONDS

log() { printf '[slurm-test %3ds] %s\n' "$((SECONDS - T_START))" "$*"; }
die() {
    printf '[slurm-test] FAILED: %s\n' "$*" >&2
    exit 1
}

# --- preconditions ---------------------------------------------------------------------------
[[ $(id -u) -eq 0 ]] || die "run as root (it installs packages and starts Slurm daemons)"
[[ -r /etc/debian_version ]] || die "needs a Debian system (apt packages)"
SNAKEMAKE_BIN="$(command -v snakemake)" || die "snakemake is not on PATH (use make test-slurm)"
PY="$(dirname "$SNAKEMAKE_BIN")/python"
[[ -x $PY ]] || die "no python next to $SNAKEMAKE_BIN"
plugin_version() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }
PLUGIN_VERSION="$(plugin_version snakemake-executor-plugin-slurm)" ||
    die "snakemake-executor-plugin-slurm is not installed next to $SNAKEMAKE_BIN"
JOBSTEP_VERSION="$(plugin_version snakemake-executor-plugin-slurm-jobstep)"
SNAKEMAKE_VERSION="$("$PY" -m snakemake --version)"

NODE="$(hostname -s)"
NCPU="$(nproc)"
MEM_MB="$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)"
REAL_MEM=$((MEM_MB * 9 / 10)) # below the total, or slurmd drains the node (Low RealMemory)
PROFILE_MAX_MEM="$("$PY" - "$REPO/workflow/profiles/slurm/config.yaml" <<'EOF'
import sys
import yaml

profile = yaml.safe_load(open(sys.argv[1]))
blocks = [profile.get("default-resources") or {}, *(profile.get("set-resources") or {}).values()]
print(max(int(b.get("mem_mb", 0)) for b in blocks))
EOF
)"
[[ $PROFILE_MAX_MEM -le $REAL_MEM ]] ||
    die "the profile asks for up to $PROFILE_MAX_MEM MB per job; this machine offers $REAL_MEM MB"

TMP="$(mktemp -d /tmp/flowprior-slurm.XXXXXX)"
ETC="$TMP/etc"
mkdir -p "$ETC" "$TMP"/{log,run,state,spool,munge,db,work}
chmod 700 "$TMP/munge"
export SLURM_CONF="$ETC/slurm.conf"

# --- cleanup: everything this script started, by PID -----------------------------------------
DAEMONS=() # "name:pid", in start order
POLICY_RC_CREATED=0
DEFAULT_CONF=/etc/slurm/slurm.conf
DEFAULT_CONF_CREATED=0

stop_pid() { # name pid: SIGTERM, wait up to 30 s, then SIGKILL
    local name=$1 pid=$2 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do
        kill -0 "$pid" 2>/dev/null || {
            wait "$pid" 2>/dev/null || true
            log "stopped $name (PID $pid)"
            return 0
        }
        sleep 0.5
    done
    log "$name (PID $pid) ignored SIGTERM: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

daemon_alive() { # name: started by this script and still running
    local entry
    for entry in "${DAEMONS[@]}"; do
        [[ ${entry%%:*} == "$1" ]] && kill -0 "${entry##*:}" 2>/dev/null && return 0
    done
    return 1
}

our_processes() { # PIDs of the test cluster's job steps (their environment names it)
    local p pid self=$BASHPID ppid
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [[ $pid == "$$" || $pid == "$self" ]] && continue
        ppid=$(awk '{print $4}' "$p/stat" 2>/dev/null) || continue
        [[ $ppid == "$self" ]] && continue
        if { tr '\0' '\n' <"$p/environ"; } 2>/dev/null |
            grep -qx -e "SLURM_CONF=$SLURM_CONF" -e "SLURM_CLUSTER_NAME=$CLUSTER"; then
            echo "$pid"
        fi
    done
}

cleanup() {
    local rc=$? i entry pid name leftovers
    trap - EXIT INT TERM
    set +e
    if [[ $rc -ne 0 ]]; then
        for f in "$TMP"/log/*.log; do
            [[ -s $f ]] && printf '\n--- last lines of %s\n' "$f" && tail -n 15 "$f"
        done
    fi
    if [[ ${#DAEMONS[@]} -gt 0 ]]; then
        log "cleanup: cancelling leftover jobs and stopping the daemons this script started"
        if daemon_alive slurmctld; then
            mapfile -t jobs < <(squeue -h -o %i 2>/dev/null)
            if [[ ${#jobs[@]} -gt 0 ]]; then
                scancel "${jobs[@]}"
                for ((i = 0; i < 60; i++)); do
                    [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break
                    sleep 0.5
                done
            fi
        fi
        # reverse start order: slurmd, slurmctld, slurmdbd, mariadbd, munged
        for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
            entry=${DAEMONS[i]}
            stop_pid "${entry%%:*}" "${entry##*:}"
        done
        leftovers=$(our_processes)
        if [[ -n $leftovers ]]; then
            log "cleanup: job processes left by the test cluster: $(echo $leftovers): SIGKILL"
            kill -KILL $leftovers 2>/dev/null
            [[ $rc -eq 0 ]] && rc=1
        fi
    fi
    if [[ $POLICY_RC_CREATED -eq 1 ]]; then
        rm -f /usr/sbin/policy-rc.d
    fi
    if [[ $DEFAULT_CONF_CREATED -eq 1 ]]; then
        rm -f "$DEFAULT_CONF"
    fi
    if [[ ${FLOWPRIOR_SLURM_KEEP:-0} == 1 ]]; then
        log "kept $TMP (FLOWPRIOR_SLURM_KEEP=1)"
    else
        rm -rf "$TMP"
    fi
    if [[ $rc -eq 0 ]]; then
        log "PASSED"
    else
        log "FAILED (exit status $rc)"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_daemon() { # name logfile command...: run in the foreground as our child, record its PID
    local name=$1 logfile=$2
    shift 2
    "$@" >"$logfile" 2>&1 &
    DAEMONS+=("$name:$!")
    log "started $name (PID $!)"
}

wait_for() { # description timeout_s command...: poll every 0.5 s (each try at most 10 s)
    local what=$1 deadline=$((SECONDS + $2))
    shift 2
    while ((SECONDS < deadline)); do
        if declare -F "$1" >/dev/null; then # a function of this script: times its own calls
            "$@" >/dev/null 2>&1 && return 0
        else
            timeout 10 "$@" >/dev/null 2>&1 && return 0
        fi
        local entry
        for entry in "${DAEMONS[@]}"; do
            kill -0 "${entry##*:}" 2>/dev/null || die "${entry%%:*} exited while waiting for $what"
        done
        sleep 0.5
    done
    die "timed out waiting for $what"
}

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- 1. install ------------------------------------------------------------------------------
T0=$SECONDS
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$pkg")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing ${missing[*]}"
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        # keep the packages' maintainer scripts from starting services
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        POLICY_RC_CREATED=1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >"$TMP/log/apt-install.txt" 2>&1 ||
        {
            tail -n 30 "$TMP/log/apt-install.txt"
            die "apt-get install failed"
        }
    if [[ $POLICY_RC_CREATED -eq 1 ]]; then
        rm -f /usr/sbin/policy-rc.d
        POLICY_RC_CREATED=0
    fi
    INSTALLED_NOW="${missing[*]}"
else
    INSTALLED_NOW="(none: all were installed)"
fi
T_INSTALL=$((SECONDS - T0))
log "packages ready in ${T_INSTALL}s"

# --- 2. configuration and daemons ------------------------------------------------------------
T0=$SECONDS
# Why the link: the job steps need the configuration at Slurm's default path: snakemake-executor-plugin-
# slurm-jobstep (0.6.1) removes SLURM_CONF (like every SLURM_* variable but the job's identity)
# from the environment of the `srun` it runs inside each job, and srun then fails with "Could
# not establish a configuration source". So /etc/slurm/slurm.conf is a link to this test's
# file while the test runs; a machine with a Slurm configuration of its own is not used.
if [[ -L $DEFAULT_CONF && ! -e $DEFAULT_CONF &&
    $(readlink "$DEFAULT_CONF") == /tmp/flowprior-slurm.*/etc/slurm.conf ]]; then
    log "removing $DEFAULT_CONF, a dangling link left by an interrupted run"
    rm -f "$DEFAULT_CONF"
fi
[[ ! -e $DEFAULT_CONF && ! -L $DEFAULT_CONF ]] ||
    die "$DEFAULT_CONF exists: this machine has a Slurm configuration; run the test elsewhere"
mkdir -p "$(dirname "$DEFAULT_CONF")"
ln -s "$SLURM_CONF" "$DEFAULT_CONF"
DEFAULT_CONF_CREATED=1
CTLD_PORT=$(free_port)
SLURMD_PORT=$(free_port)
DBD_PORT=$(free_port)
DB_PORT=$(free_port)
DB_PASS=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
MUNGE_SOCKET="$TMP/munge/munge.socket"

mungekey --create --keyfile="$TMP/munge/munge.key" >/dev/null
chmod 400 "$TMP/munge/munge.key"
start_daemon munged "$TMP/log/munged.out" munged --foreground --force --num-threads=10 \
    --key-file="$TMP/munge/munge.key" --socket="$MUNGE_SOCKET" \
    --pid-file="$TMP/run/munged.pid" --log-file="$TMP/log/munged.log" \
    --seed-file="$TMP/munge/munged.seed"
wait_for "munged" 20 bash -c "munge -n -S '$MUNGE_SOCKET' | unmunge -S '$MUNGE_SOCKET'"

mariadb-install-db --no-defaults --datadir="$TMP/db" --user=root --skip-test-db \
    --skip-name-resolve >"$TMP/log/mariadb-install.log" 2>&1 ||
    die "mariadb-install-db failed (see above)"
start_daemon mariadbd "$TMP/log/mariadbd.out" mariadbd --no-defaults --user=root \
    --datadir="$TMP/db" --socket="$TMP/run/mysqld.sock" --pid-file="$TMP/run/mysqld.pid" \
    --port="$DB_PORT" --bind-address=127.0.0.1 --skip-name-resolve \
    --log-error="$TMP/log/mariadbd.log" \
    --innodb-buffer-pool-size=1024M --innodb-lock-wait-timeout=900
wait_for "mariadbd" 60 mariadb-admin --no-defaults --socket="$TMP/run/mysqld.sock" ping
mariadb --no-defaults --socket="$TMP/run/mysqld.sock" -u root -e "
    CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"

cat >"$ETC/slurmdbd.conf" <<EOF
# written by tests/cluster/run_slurm_test.sh (temporary)
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=$NODE
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
LogFile=$TMP/log/slurmdbd.log
PidFile=$TMP/run/slurmdbd.pid
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
chmod 600 "$ETC/slurmdbd.conf"

cat >"$ETC/slurm.conf" <<EOF
# written by tests/cluster/run_slurm_test.sh (temporary): one node, this machine
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$TMP/state
SlurmdSpoolDir=$TMP/spool
SlurmctldPidFile=$TMP/run/slurmctld.pid
SlurmdPidFile=$TMP/run/slurmd.pid
SlurmctldLogFile=$TMP/log/slurmctld.log
SlurmdLogFile=$TMP/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups needed: plain process tracking, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# accounting (sacct) through slurmdbd, plus a plain job-completion log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
# for slurmdbd connections the munge socket is given here, not by AuthInfo
AccountingStoragePass=$MUNGE_SOCKET
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/filetxt
JobCompLoc=$TMP/log/jobcomp.txt
MinJobAge=300
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$NCPU RealMemory=$REAL_MEM State=UNKNOWN
PartitionName=test Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF

start_daemon slurmdbd "$TMP/log/slurmdbd.out" slurmdbd -D
wait_for "slurmdbd" 60 sacctmgr -n list cluster
sacctmgr -i add cluster "$CLUSTER" >/dev/null
start_daemon slurmctld "$TMP/log/slurmctld.out" slurmctld -D -i
wait_for "slurmctld" 60 scontrol ping
start_daemon slurmd "$TMP/log/slurmd.out" slurmd -D -N "$NODE"
node_idle() { [[ $(timeout 10 sinfo -h -N -n "$NODE" -o %t) == idle ]]; }
wait_for "node $NODE idle in sinfo" 60 node_idle
SLURM_VERSION="$(sinfo --version)"
T_DAEMONS=$((SECONDS - T0))
log "$SLURM_VERSION: node idle after ${T_DAEMONS}s"
sinfo -N -l

# --- 3. the workflow: through Slurm, then locally ---------------------------------------------
export OMP_WAIT_POLICY=PASSIVE
STUDY=(--snakefile "$REPO/Snakefile" --configfile "$REPO/config/test.yaml"
    --replace-workflow-config)
SLURM_WD="$TMP/work/slurm"
LOCAL_WD="$TMP/work/local"
for wd in "$SLURM_WD" "$LOCAL_WD"; do
    mkdir -p "$wd/config"
    # the parameter tables the config names, relative to the directory Snakemake runs in
    [[ -d $REPO/config/parameters ]] && cp -r "$REPO/config/parameters" "$wd/config/"
done
SACCT_START="$(date +%Y-%m-%dT%H:%M:%S)"

# The local reference runs at the same time as the Slurm run (its results do not depend on load:
# fixed seeds, thread counts from the config, no time limit reached); the Slurm run is mostly
# waiting for status checks, so overlapping them saves up to the local run's time.
log "same workflow locally, in the background: --cores 2, no profile"
T0_LOCAL=$SECONDS
(cd "$LOCAL_WD" && timeout 1200 "$PY" -m snakemake "${STUDY[@]}" --directory "$LOCAL_WD" \
    --cores 2) >"$TMP/log/snakemake-local.txt" 2>&1 &
LOCAL_PID=$!

# The profile's own status-check interval (the plugin's default: first check after 40 s, then
# +10 s while nothing finishes) is what a real cluster wants; on this one-node test cluster it
# only adds waiting to every level of the job graph, so the first check comes after 5 s here.
# What is submitted, and how, is the profile's, unchanged.
log "workflow through Slurm: --workflow-profile workflow/profiles/slurm"
T0=$SECONDS
(cd "$SLURM_WD" && timeout 1200 "$PY" -m snakemake "${STUDY[@]}" --directory "$SLURM_WD" \
    --workflow-profile "$REPO/workflow/profiles/slurm" \
    --slurm-init-seconds-before-status-checks 5) \
    >"$TMP/log/snakemake-slurm.txt" 2>&1 ||
    {
        tail -n 60 "$TMP/log/snakemake-slurm.txt"
        wait "$LOCAL_PID" || true
        die "the workflow failed under Slurm"
    }
T_SLURM=$((SECONDS - T0))
log "Slurm run done in ${T_SLURM}s"

wait "$LOCAL_PID" ||
    {
        tail -n 60 "$TMP/log/snakemake-local.txt"
        die "the local workflow run failed"
    }
T_LOCAL=$((SECONDS - T0_LOCAL))
log "local run done in ${T_LOCAL}s"

# --- 4a. every job went through sbatch --------------------------------------------------------
SM_LOG="$TMP/log/snakemake-slurm.txt"
RUN_ID="$(sed -n 's/.*SLURM run ID: \([0-9a-f-]*\).*/\1/p' "$SM_LOG" | head -n 1)"
[[ -n $RUN_ID ]] || die "no 'SLURM run ID' in Snakemake's output: was the slurm executor used?"
mapfile -t SUBMITTED < <(sed -n 's/.*has been submitted with SLURM jobid \([0-9]*\).*/\1/p' \
    "$SM_LOG" | sort -n)
N_STEPS="$(sed -n 's/^\([0-9]*\) of \1 steps (100%) done$/\1/p' "$SM_LOG" | tail -n 1)"
N_LOCAL="$(grep -c '^localrule ' "$SM_LOG" || true)"
[[ -n $N_STEPS ]] || die "Snakemake did not report 'N of N steps (100%) done'"
N_REMOTE=$((N_STEPS - N_LOCAL))
log "Snakemake: $N_STEPS jobs, $N_LOCAL local, ${#SUBMITTED[@]} submitted to Slurm"
[[ ${#SUBMITTED[@]} -eq $N_REMOTE && $N_REMOTE -gt 0 ]] ||
    die "Snakemake submitted ${#SUBMITTED[@]} jobs but ran $N_REMOTE non-local jobs"

# sacct (slurmdbd) may lag behind the job end by a few seconds
SACCT=(sacct -X -n -P --clusters "$CLUSTER" --starttime "$SACCT_START" --endtime now)
sacct_done() {
    [[ $(timeout 10 "${SACCT[@]}" --state CD --format JobID | wc -l) -ge ${#SUBMITTED[@]} ]]
}
wait_for "sacct to list ${#SUBMITTED[@]} completed jobs" 60 sacct_done
SACCT_LINES="$("${SACCT[@]}" --format 'JobID,JobName%36,Comment%50,State,ExitCode,AllocCPUS,ReqMem,Elapsed,NodeList')"
mapfile -t SACCT_IDS < <("${SACCT[@]}" --format JobID | sort -n)
mapfile -t SACCT_OURS < <("${SACCT[@]}" --name "$RUN_ID" --state CD --format 'JobID,ExitCode' |
    awk -F'|' '$2 == "0:0" {print $1}' | sort -n)
[[ ${SACCT_IDS[*]} == "${SUBMITTED[*]}" ]] ||
    die "sacct lists jobs ${SACCT_IDS[*]}, Snakemake submitted ${SUBMITTED[*]}"
[[ ${SACCT_OURS[*]} == "${SUBMITTED[*]}" ]] ||
    die "not every submitted job is COMPLETED with exit 0:0 under job name $RUN_ID in sacct"
N_COMMENTS="$("${SACCT[@]}" --format Comment%300 | sort -u | grep -c '^rule_' || true)"
[[ $N_COMMENTS -eq ${#SUBMITTED[@]} ]] ||
    die "expected ${#SUBMITTED[@]} distinct rule_<name> comments in sacct, got $N_COMMENTS"
N_CTLD_SUBMIT="$(grep -c '_slurm_rpc_submit_batch_job: JobId=' "$TMP/log/slurmctld.log" || true)"
N_JOBCOMP="$(grep -c 'JobState=COMPLETED' "$TMP/log/jobcomp.txt" || true)"
[[ $N_CTLD_SUBMIT -eq ${#SUBMITTED[@]} ]] ||
    die "slurmctld logged $N_CTLD_SUBMIT batch submissions, expected ${#SUBMITTED[@]}"
# jobs submitted from inside a job (there must be none) would show up as extra records
[[ $N_JOBCOMP -eq ${#SUBMITTED[@]} ]] ||
    die "the job-completion log has $N_JOBCOMP COMPLETED jobs, expected ${#SUBMITTED[@]}"
log "sbatch check passed: Snakemake, sacct, slurmctld log and jobcomp all count ${#SUBMITTED[@]}"

# --- 4b. same results as the local run -------------------------------------------------------
log "comparing results with the local run"
COMPARE_OUT="$("$PY" - "$SLURM_WD/results" "$LOCAL_WD/results" <<'EOF'
import io
import json
import sys
import zipfile
from pathlib import Path

import pandas as pd

# recorded wall times and memory: differ run to run (cost.csv holds them, summary.md and
# tables.md render them)
TIMES = {"seconds", "train_seconds", "wall_seconds", "sampler_seconds", "shift_seconds",
         "max_rss_mb", "train s"}
# figures that draw those wall times (the tables they plot are compared without them)
TIME_FIGURES = {"samplers.png"}
slurm, local = (Path(p) for p in sys.argv[1:3])


def without_times(obj, name):
    if isinstance(obj, dict):
        out = {k: without_times(v, name) for k, v in obj.items() if k not in TIMES}
        if name == "manifest.json" and isinstance(out.get("files"), dict):
            out["files"].pop("history.csv", None)  # hash of a file that holds wall times
        return out
    if isinstance(obj, list):
        return [without_times(v, name) for v in obj]
    return obj


def same(name, a, b):
    """(equal, how) for the contents a and b of a file called name."""
    suffix = Path(name).suffix
    if suffix in {".parquet", ".csv"}:
        read = pd.read_parquet if suffix == ".parquet" else pd.read_csv
        fa, fb = read(io.BytesIO(a)), read(io.BytesIO(b))
        times = sorted(TIMES & set(fa.columns))
        fa, fb = fa.drop(columns=times), fb.drop(columns=times)
        try:
            pd.testing.assert_frame_equal(fa, fb, check_exact=True)
        except AssertionError as err:
            first = [line for line in str(err).splitlines() if line.strip()][:3]
            return False, "tables differ: " + " | ".join(first)[:300]
        return True, f"{len(fa)} rows equal" + (f" (without {', '.join(times)})" if times else "")
    if suffix == ".json":
        ja, jb = (without_times(json.loads(x), Path(name).name) for x in (a, b))
        return ja == jb, "JSON equal (without wall times)" if ja == jb else "JSON differs"
    if suffix == ".zip":
        za, zb = zipfile.ZipFile(io.BytesIO(a)), zipfile.ZipFile(io.BytesIO(b))
        if sorted(za.namelist()) != sorted(zb.namelist()):
            return False, "different entries"
        verdicts = {n: same(n, za.read(n), zb.read(n)) for n in sorted(za.namelist())}
        bad = [n for n, (ok, _) in verdicts.items() if not ok]
        return not bad, f"entries {', '.join(sorted(verdicts))} equal" if not bad else f"{bad} differ"
    if suffix == ".md":  # a rendering of the tables compared above, wall times included
        return bool(a) and bool(b), "Markdown rendering of compared tables (both non-empty)"
    if Path(name).name in TIME_FIGURES:  # plots the wall times of samplers.csv (compared)
        return bool(a) and bool(b), "figure of compared tables with wall times (both non-empty)"
    return a == b, f"bytes equal ({len(a)} bytes)" if a == b else "bytes differ"


def files(root):
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and "benchmarks" not in p.parts and p.name != ".snakemake_timestamp"
    }


names_slurm, names_local = files(slurm), files(local)
failures = sorted(names_slurm ^ names_local)
for name in failures:
    print(f"  DIFF {name}: only in the {'Slurm' if name in names_slurm else 'local'} run")
for name in sorted(names_local & names_slurm):
    ok, how = same(name, (slurm / name).read_bytes(), (local / name).read_bytes())
    print(f"  {'ok  ' if ok else 'DIFF'} {name}: {how}")
    failures += [] if ok else [name]
if failures or not names_local:
    sys.exit(f"results differ from the local run: {failures or 'no results'}")
print(f"compared {len(names_local)} files")
EOF
)" || {
    printf '%s\n' "$COMPARE_OUT"
    die "the Slurm run's results differ from the local run's"
}
printf '%s\n' "$COMPARE_OUT"
N_COMPARED="$(sed -n 's/^compared \([0-9]*\) files$/\1/p' <<<"$COMPARE_OUT")"

# --- summary ---------------------------------------------------------------------------------
cat <<EOF

==================== real-Slurm test summary ====================
Slurm           $SLURM_VERSION (Debian $(cat /etc/debian_version)), cluster $CLUSTER, node $NODE: CPUs=$NCPU RealMemory=$REAL_MEM
Executor        snakemake-executor-plugin-slurm $PLUGIN_VERSION (+ slurm-jobstep $JOBSTEP_VERSION), Snakemake $SNAKEMAKE_VERSION
Profile         workflow/profiles/slurm, unedited, no command-line overrides
Run ID          $RUN_ID
Jobs            $N_STEPS Snakemake jobs: ${#SUBMITTED[@]} via sbatch (Slurm jobs ${SUBMITTED[0]}-${SUBMITTED[-1]}), $N_LOCAL local (rule all)
Agreement       sacct ${#SACCT_IDS[@]} COMPLETED 0:0 | slurmctld _slurm_rpc_submit_batch_job $N_CTLD_SUBMIT | jobcomp COMPLETED $N_JOBCOMP
sacct -X --clusters $CLUSTER:
JobID|JobName|Comment|State|ExitCode|AllocCPUS|ReqMem|Elapsed|NodeList
$SACCT_LINES
Results         $N_COMPARED files equal to the local run's (--cores 2, no profile); see above
Wall times      install ${T_INSTALL}s (installed now: $INSTALLED_NOW)
                daemons up ${T_DAEMONS}s, Slurm run ${T_SLURM}s, local run ${T_LOCAL}s, total $((SECONDS - T_START))s
Packages        left installed; remove with: apt-get purge ${PACKAGES[*]}
==================================================================
EOF
