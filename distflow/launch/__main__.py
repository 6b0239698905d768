"""distflow.launch: start parameter servers and workers, wire them, supervise them.

USAGE
    python -m distflow.launch [options] script.py [script args...]
    python -m distflow.launch [options] -m package.module [module args...]

    Options go before the script; everything after it is the script's.
    Every option can also come from the environment variable shown; a flag
    wins over its variable, which wins over the default. Boolean variables
    accept 1/0, true/false, yes/no, on/off; an empty variable means the
    default. Every DISTFLOW_* variable (these, the children's below and those
    a script may set) is declared once in distflow/process_env.py with its
    type, default and meaning; `python -m distflow.process_env` prints them.

    python -m distflow.launch --workers 2 --ps 1 --strategy mirrored train.py --epochs 5

OPTIONS
  flag                      environment variable           default
  --workers N               DISTFLOW_WORKERS               1 (one per node / all slots)
  --ps M                    DISTFLOW_PS                    1
  --strategy S              DISTFLOW_STRATEGY              mirrored (or async)
  --max-staleness S         DISTFLOW_MAX_STALENESS         none (async only)
  --port P                  DISTFLOW_PORT                  free ports (one machine),
                                                           29400 (several machines),
                                                           from the job id (Slurm)
  --bind ADDR               DISTFLOW_BIND                  127.0.0.1 (one machine),
                                                           0.0.0.0 (several machines)
  --max-restarts K          DISTFLOW_MAX_RESTARTS          0
  --fail-fast               DISTFLOW_FAIL_FAST             off
  --allow-lost-workers      DISTFLOW_ALLOW_LOST_WORKERS    off (exit 3 when workers were lost)
  --checkpoint-dir DIR      DISTFLOW_CHECKPOINT_DIR        none
  --checkpoint-every N      DISTFLOW_CHECKPOINT_EVERY      100 (steps)
  --heartbeat-timeout SEC   DISTFLOW_HEARTBEAT_TIMEOUT     30
  --log-dir DIR             DISTFLOW_LOG_DIR               none
  --nnodes N                DISTFLOW_NNODES                1
  --node-rank K             DISTFLOW_NODE_RANK             0
  --master-addr HOST        DISTFLOW_MASTER_ADDR           required with --nnodes > 1
  --hosts H1:S1,H2:S2       DISTFLOW_HOSTS                 none
  --hostfile FILE           DISTFLOW_HOSTFILE              none
  --keys DIR                DISTFLOW_KEYS                  none
  --insecure                DISTFLOW_INSECURE              off
  --dry-run                 DISTFLOW_DRY_RUN               off
  --run-id ID               DISTFLOW_RUN_ID                random (derived from the
                                                           cluster on several machines)
  --resume-other-run        DISTFLOW_RESUME_OTHER_RUN      off (see CHECKPOINTS OF ANOTHER RUN)
  --grace-period SEC        DISTFLOW_GRACE_PERIOD          10 (SIGTERM -> SIGKILL)
  --blas-threads N          DISTFLOW_BLAS_THREADS          1
  --standalone              DISTFLOW_STANDALONE            off (ignore Slurm/MPI/TF_CONFIG)
  --ps-command CMD          DISTFLOW_PS_COMMAND            python -u -m distflow.distribute.server
  --rendezvous-timeout SEC  DISTFLOW_RENDEZVOUS_TIMEOUT    600 (the startup deadline)
  --remote-python PATH      DISTFLOW_REMOTE_PYTHON         this interpreter's path
  --ssh CMD                 DISTFLOW_SSH                   ssh -o BatchMode=yes
  --watch-stdin             DISTFLOW_WATCH_STDIN           off (set on ssh-started launchers)
  -m, --module              the script is a module name (like python -m)
  -h, --help                print this manual

  --workers: total worker processes. Worker 0 is the chief.
  --ps: parameter servers; the parameters are sharded over them.
  --strategy mirrored: synchronous steps; async: servers apply each
      gradient on arrival, optionally bounded by --max-staleness.
  --port: servers use ports P, P+1, ..., P+M-1; on several machines the
      launchers talk to each other on P+M.
  --bind: the address servers listen on. A non-loopback address is refused
      unless --keys (CURVE encryption and a client allow-list) or --insecure
      is given.
  --max-restarts: how often a failed worker (not the chief) or server is
      restarted. DISTFLOW_RESTART tells the process which attempt it is.
  --fail-fast: any non-zero exit ends the run (no restarts, no lost workers).
  --allow-lost-workers: a run that completed without some workers exits 0
      instead of 3.
  --log-dir: besides the console, each process's output goes to
      DIR/worker-1.log, DIR/ps-0.log ... (appended; one header per start).
  --grace-period: how long stopping processes get after SIGTERM.
  --ps-command: run this instead of the parameter server (shell-split);
      it gets the same environment. Useful for tests and custom servers.
  --dry-run: print the plan (each process, its node, command and
      environment) and exit 0.
  --rendezvous-timeout: the run's one startup deadline, long enough for
      pods or jobs scheduled minutes apart. Every wait of a run's start
      follows it: a launcher reaching node 0's launcher; node 0 waiting for
      launchers that never show up (then it stops the servers); a worker's
      first contact with the servers and its wait for the chief's initial
      values; a server's first synchronous step waiting for workers that
      have not registered yet (each counted from that process's start).
  --remote-python, --ssh, --watch-stdin: see SSH below.
  --run-id, --resume-other-run: see CHECKPOINTS OF ANOTHER RUN below.

  Some option variables (DISTFLOW_BIND, DISTFLOW_MAX_STALENESS,
  DISTFLOW_CHECKPOINT_DIR, DISTFLOW_CHECKPOINT_EVERY,
  DISTFLOW_HEARTBEAT_TIMEOUT, DISTFLOW_RENDEZVOUS_TIMEOUT, DISTFLOW_KEYS,
  DISTFLOW_RUN_ID, DISTFLOW_RESUME_OTHER_RUN) are also
  variables of the children's environment, with the same meaning.

ENVIRONMENT OF EACH CHILD
  DISTFLOW_ROLE               worker or ps
  DISTFLOW_RANK               index within the role (worker 0 is the chief; ps = shard id)
  DISTFLOW_NUM_WORKERS        number of workers
  DISTFLOW_NUM_PS             number of servers
  DISTFLOW_PS_ADDRS           comma-separated tcp://host:port, index = shard id; a
                              server listens on the port of its own entry
  DISTFLOW_BIND               the host a server binds (the port comes from its entry)
  DISTFLOW_STRATEGY           mirrored or async
  DISTFLOW_MAX_STALENESS      async bound, empty for none
  DISTFLOW_RUN_ID             the run's id, equal on every machine
  DISTFLOW_RUN_NAMED          1 when --run-id was given (written into checkpoints)
  DISTFLOW_RESUME_OTHER_RUN   1 with --resume-other-run
  DISTFLOW_CHECKPOINT_DIR     absolute path, empty for none
  DISTFLOW_CHECKPOINT_EVERY   steps between server checkpoints
  DISTFLOW_HEARTBEAT_TIMEOUT  seconds of silence after which a worker is dead
  DISTFLOW_RENDEZVOUS_TIMEOUT the startup deadline (--rendezvous-timeout), seconds
  DISTFLOW_KEYS               absolute path of the CURVE key directory, empty for none
  DISTFLOW_RESTART            0 on the first start, then 1, 2, ... after restarts
  OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS   --blas-threads (1), so
                              N processes do not fight over the cores (with more
                              than one, each worker also starts a twin process per
                              extra thread for its convolution and LSTM/GRU ops)
  PYTHONUNBUFFERED=1          so output lines arrive as they are printed
  DISTFLOW_TTY=1              when the launcher's stdout is a terminal: the chief's
                              Keras progress bar is live, redrawn in place with its
                              prefix (epoch lines otherwise)
  Everything else is inherited from the launcher's environment.

CHECKPOINTS OF ANOTHER RUN
  Servers write the run id into their checkpoints, and whether the user
  named the run (--run-id). Started again with the same --checkpoint-dir, a
  run resumes, as Keras's BackupAndRestore does. A server refuses, and the
  run fails before anything is restored or written, when the newest valid
  checkpoint belongs to another run and either run was named: two named runs
  with different ids, or an unnamed run over a named run's checkpoints. Pass
  --run-id with the checkpoint's run to continue that run, --resume-other-run
  to take its state into this one, or another --checkpoint-dir to start
  fresh. Unnamed runs resume each other's checkpoints (the log says whose).

KUBERNETES SERVICE LINKS
  A Service named "distflow" makes kubelet set DISTFLOW_PORT=tcp://IP:PORT
  (and DISTFLOW_PORT_<port>_TCP..., DISTFLOW_SERVICE_HOST, ...) in every pod
  of its namespace. Such a value is not a setting: the launcher ignores it,
  warns once naming the variables, and starts. Set `enableServiceLinks:
  false` in the pod spec, or rename the Service, to be rid of them.

ONE MACHINE
  Starts the M servers, then the N workers, each in its own process group.
  Each output line is prefixed with its process ("[worker 1] ...",
  "[ps 0] ..."); stderr lines go to stderr. SIGINT and SIGTERM are forwarded
  to every child. When every worker has finished, the servers get SIGTERM
  (they checkpoint and exit), then SIGKILL after --grace-period. At the end
  a summary lists each process: state, exit code, restarts, wall time.

FAILURES AND EXIT CODE
  - The chief (worker 0) fails: the run fails.
  - Another worker fails: restarted up to --max-restarts times; after that
    the run goes on without it (state "lost" in the summary, with its exit
    code). The launcher tells the servers at once, so no step waits for it;
    a worker that vanishes without its launcher noticing (another machine)
    is dropped after --heartbeat-timeout.
  - A worker lost before its first step (the servers never got a gradient
    from it; e.g. it gave up waiting for a late server or chief) fails the
    run, even with --allow-lost-workers: the summary line says "failed
    (worker K lost before its first step)" and the exit code is that
    worker's. A run that never trained with all its workers is not complete.
  - A server fails: restarted up to --max-restarts times (it resumes from
    --checkpoint-dir); after that the run fails.
  - --fail-fast: any failure fails the run.
  When the run fails, every process is stopped (SIGTERM, grace, SIGKILL)
  and the launcher prints the failing process's name and its last lines.
  Exit code: 0 if the run completed with every worker; 3 if it completed
  but workers were lost (0 with --allow-lost-workers); 4 if another run
  holds --checkpoint-dir; otherwise the first failure's exit code (128+N if
  it died of signal N); 128+N if the launcher itself got signal N; 2 for
  invalid options.
  --checkpoint-dir is held by one run at a time: the launcher starting the
  servers writes DIR/distflow.lock (host, pid, run id) and removes it at
  the end. A second run is refused naming the holder; a lock whose
  launcher is gone (same host) is taken over.
  No child outlives the launcher, even if it is killed with SIGKILL: every
  child has PR_SET_PDEATHSIG=SIGTERM (Linux), and a watchdog process
  (distflow/launch/watchdog.py) SIGTERMs, then SIGKILLs, the process
  groups of a launcher that died.

SEVERAL MACHINES (torchrun style)
  Run the same command on every node with --nnodes N --node-rank K
  --master-addr HOST (HOST = an address of node 0 the others can reach):
  - the M servers run on node 0 and listen on --port P .. P+M-1
    (DISTFLOW_PS_ADDRS = tcp://HOST:P, ...): with these flags the launchers
    know no other node's address;
  - workers are split evenly, in order of global rank: node 0 gets ranks
    0..n0-1 (so the chief is on node 0), node 1 the next ones, and so on;
    the first W mod N nodes get one extra;
  - node 0's launcher is the coordinator on HOST:P+M. The others connect
    to it (retrying for --rendezvous-timeout), report when their workers
    have finished, and are told when to stop. Servers are stopped only
    after every worker on every node has finished; a failure anywhere
    (chief, server, --fail-fast) stops all nodes.
  Servers bind 0.0.0.0 by default here, so --keys DIR or --insecure is
  required. With --keys the launchers' channel is encrypted and
  authenticated with the same keys (the coordinator needs server.key_secret,
  the others a client key pair): a connection without an allowed key, or a
  launcher of another run, is refused and logged ("[launch] refused a
  connection to the launcher coordinator ...", at most once per 10 s).
  Without --keys anyone who can reach P+M can stop the run (docs/security.md).

SLURM (srun)
  Inside an srun step (SLURM_STEP_NODELIST and SLURM_PROCID set) and with no
  --nnodes/--hosts flag, the launcher runs as one node launcher per node:
  --nnodes = the number of hosts in SLURM_STEP_NODELIST (compressed syntax
  such as node[01-03,07],gpu5 is expanded), --node-rank = the position of
  SLURMD_NODENAME in that list (else SLURM_NODEID), --master-addr = the
  first host. Use one task per node (SLURM_STEP_NUM_TASKS or SLURM_NTASKS
  must equal the number of nodes):
      srun --ntasks-per-node=1 python -m distflow.launch --workers 8 ... train.py
  The run id is slurm-<SLURM_JOB_ID>.<SLURM_STEP_ID>. Without --port, job J
  with M servers uses ports 20000 + (J mod K)*(M+1) onwards, K = 12768 // (M+1),
  so jobs sharing a node do not collide. With several nodes each launcher's
  lines start with its node ("[node 1] [worker 3] ..."), as they share one
  job output file. See launch/distflow.sbatch.

SERVERS ACROSS NODES (Slurm, --hosts/--hostfile)
  Where every node's address is known (Slurm's node list, the host list)
  and --ps M >= the number of nodes N, the servers are spread as BytePS
  co-locates them with the workers: server i runs on node i mod N and
  listens on that node's port P+i (DISTFLOW_PS_ADDRS = tcp://node0:P,
  tcp://node1:P+1, ...), so each node sends and receives about 1/N of the
  parameter traffic. With M < N all servers run on node 0, as above. The
  launcher starting server 0 holds --checkpoint-dir's lock; server i
  writes DIR/ps-i on its own node (a shared directory keeps them together,
  and lets a server restarted on another node resume).

OPENMPI (mpirun)
  With OMPI_COMM_WORLD_RANK/_SIZE/_LOCAL_RANK set, each rank's launcher runs
  exactly one process: ranks 0..M-1 are servers 0..M-1, the others are
  workers 0..N-1 (so -np = M + N). Servers are at --master-addr ports P+i,
  so ranks 0..M-1 must run on that host (mpirun's default by-slot mapping
  puts the first ranks on the first host); on a single node --master-addr
  defaults to 127.0.0.1. Rank 0's launcher is the coordinator (P+M).

TF_CONFIG (Kubeflow TFJob, Kubernetes)
  With TF_CONFIG = {"cluster": {"chief": [...], "worker": [...], "ps": [...]},
  "task": {"type": ..., "index": ...}} each launcher runs exactly one
  process: chief -> worker 0, worker i -> worker i+1 (worker i without a
  chief), ps i -> server i listening on the port of its TF_CONFIG entry.
  A TF_CONFIG with no "ps" task (TF's multi-worker tutorial lists only
  workers) gets one server, started by the chief's launcher beside the chief
  on the chief's TF_CONFIG port + 1.
  The chief's launcher is the coordinator on the chief's TF_CONFIG address.
  See launch/kubernetes.yaml.

SSH (--hosts / --hostfile, Horovod style)
  --hosts h1:2,h2:2 (or a hostfile of "host slots=N" lines) without
  --node-rank makes this launcher start one node launcher per host, over
  ssh (--ssh) unless the host is this machine, each with
  --hosts ... --node-rank K --run-id ... --watch-stdin. Workers fill the
  hosts in order up to their slots (default --workers = all slots);
  servers run on the first host, or one per host when --ps >= the number
  of hosts (see SERVERS ACROSS NODES). The remote command is
  "cd <this directory> && exec env VARS PATH=<python's bin>:$PATH <python>
  -m distflow.launch ...": <python> is this interpreter's absolute path (a
  virtual environment's packages are then found without activating it; set
  another with --remote-python), and VARS carries this shell's DISTFLOW_* variables that
  are not launcher options (DISTFLOW_DATA, DISTFLOW_REQUEST_TIMEOUT, ...;
  the options travel as flags) and PYTHONPATH, VIRTUAL_ENV, PYTHONHOME.
  Nothing else is forwarded: the remote login keeps its own environment.
  The same paths (directory, interpreter, data) must exist on every host.
  A remote launcher stops its processes when its ssh connection closes.
  Output lines carry both prefixes: "[node 1] [worker 2] ...".

  --standalone ignores Slurm, OpenMPI and TF_CONFIG variables.
"""

import sys

from distflow.launch.cli import main

if __name__ == "__main__":
    sys.exit(main())
