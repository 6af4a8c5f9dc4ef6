"""Several replicas of the playground behind HAProxy, sharing one run store: for a class larger than one process serves.

    sudo apt-get install haproxy                       # Debian/Ubuntu's package (2.6 here)
    python deploy/serve.py --replicas 2 --port 8000 --runs-dir /srv/dgm-runs

starts ``--replicas`` app processes on loopback ports from ``--first-port``, each with its share of the cores
(``--workers``: this machine's cores divided among them) and the same ``--runs-dir``; waits until each answers its
health check (``/dgm-alive``); then HAProxy on ``--port`` in front of them (``deploy/haproxy.cfg.in``: cookie
stickiness, health checks every second, a browser whose replica fails sent to another). A replica that exits is
started again after ``RESTART_AFTER_S`` (its browsers are served by the others meanwhile). Ctrl-C or SIGTERM stops
HAProxy, then each replica cleanly (every run saved where it is).

On several machines, run ``python app.py --host 0.0.0.0 --port 7861 --workers <cores> --runs-dir <shared>`` on each,
with the run store on a disk they all mount (NFS or similar: files are written whole and renamed, and follow codes
are merged under ``flock``), and list them in the ``servers`` of ``haproxy.cfg.in`` (README, "Using many machines").
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).resolve().parent / "haproxy.cfg.in"
ALIVE = "/dgm-alive"  # app.page.reconnect.ALIVE_PATH: who the replica is, answered before its warm-up ends
RESTART_AFTER_S = 5.0
COOKIE_PREFIX = "r"  # the replica a browser sticks to, as its DGMREPLICA cookie names it: r1, r2, …


def haproxy_config(port: int, replica_ports: list[int], bind: str = "*") -> str:
    """HAProxy's configuration for replicas on these loopback ports, listening on ``bind``:``port``."""
    servers = "\n".join(
        f"    server {COOKIE_PREFIX}{n} 127.0.0.1:{replica} cookie {COOKIE_PREFIX}{n}"
        for n, replica in enumerate(replica_ports, 1)
    )
    return TEMPLATE.read_text().format(bind=bind, port=port, servers=servers)


def workers_each(replicas: int, cores: int | None = None) -> int:
    """Training processes per replica: the machine's cores shared among the replicas, at least one each."""
    return max(1, (cores or os.cpu_count() or 1) // replicas)


def start_replica(
    port: int, workers: int, runs_dir: Path, device: str = "auto", log: Path | None = None
) -> subprocess.Popen:
    """``python app.py`` on a loopback port; what it says (its start-up steps, "ready:" once warm) goes to ``log``."""
    command = [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    command += ["--runs-dir", str(runs_dir), "--device", device]
    said = subprocess.DEVNULL if log is None else log.open("a")
    return subprocess.Popen(command, cwd=ROOT, stdout=said, stderr=subprocess.STDOUT if log else None)


def wait_alive(port: int, timeout_s: float = 180.0) -> str:
    """Wait until the replica on ``port`` answers its health check; returns its identity."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{ALIVE}", timeout=2) as answer:
                return answer.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the replica on port {port} did not answer within {timeout_s:.0f} s") from None
            time.sleep(0.5)


def start_haproxy(config: str) -> tuple[subprocess.Popen, Path]:
    """HAProxy in the foreground (-db) on ``config``, checked first (-c); returns it and its configuration file (its
    warnings and log go to ``haproxy.log`` beside it)."""
    path = Path(tempfile.mkdtemp(prefix="dgm-haproxy-")) / "haproxy.cfg"
    path.write_text(config)
    subprocess.run(["haproxy", "-c", "-q", "-f", str(path)], check=True)
    said = path.with_name("haproxy.log")
    with said.open("w") as log:
        haproxy = subprocess.Popen(["haproxy", "-db", "-f", str(path)], stdout=log, stderr=subprocess.STDOUT)
    time.sleep(1.0)
    if haproxy.poll() is not None:  # e.g. a port taken, or more connections asked for than the system allows
        raise RuntimeError(f"HAProxy did not start: {said.read_text(errors='replace')[-2000:]}")
    return haproxy, path


def stop(process: subprocess.Popen, timeout_s: float = 60.0) -> None:
    """SIGTERM, then SIGKILL if it has not ended (an app saves every run on SIGTERM first)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--port", type=int, default=8000, help="where HAProxy listens")
    parser.add_argument("--bind", default="*", help="HAProxy's address (default: every interface)")
    parser.add_argument("--first-port", type=int, default=7861, help="the replicas listen on loopback from here")
    parser.add_argument("--workers", type=int, default=None, help="training processes per replica (default: shared)")
    parser.add_argument("--runs-dir", type=Path, required=True, help="the run store every replica shares")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    ports = [args.first_port + n for n in range(args.replicas)]
    workers = args.workers or workers_each(args.replicas)
    replicas = {port: start_replica(port, workers, args.runs_dir, args.device) for port in ports}
    for port in ports:
        print(f"replica on :{port} is {wait_alive(port)} ({workers} training processes)", flush=True)
    haproxy, config = start_haproxy(haproxy_config(args.port, ports, args.bind))
    print(f"HAProxy on :{args.port} in front of {len(ports)} replicas ({config}); runs in {args.runs_dir}", flush=True)

    stopping = False

    def on_signal(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        while not stopping and haproxy.poll() is None:
            for port, process in replicas.items():
                if process.poll() is not None:  # HAProxy sends its browsers elsewhere meanwhile
                    print(f"replica on :{port} exited ({process.returncode}); starting it again", flush=True)
                    time.sleep(RESTART_AFTER_S)
                    replicas[port] = start_replica(port, workers, args.runs_dir, args.device)
            time.sleep(1.0)
    finally:
        stop(haproxy, 10)
        for process in replicas.values():
            stop(process)


if __name__ == "__main__":
    main()
