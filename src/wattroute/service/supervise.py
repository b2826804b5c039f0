"""Process supervision for several API workers: workers that die with their parent, and a
listening port that a restart can take over from a dying instance.

With ``api.workers`` > 1 the parent process (the controller) supervises uvicorn's API worker
processes. Killed with SIGKILL, the parent cannot stop them; without more, they would go on
serving, without a controller, on the port the next start needs. Hence:

* :func:`exit_with_parent`, run in each worker, makes the worker leave as soon as its parent
  is gone. On Linux the kernel tells it at once (``prctl(PR_SET_PDEATHSIG, SIGTERM)``); a
  daemon thread that polls the parent pid is the portable fallback, and forces the exit when
  the graceful one takes too long.
* :func:`bind_listener` binds the port for the new instance and, while the workers of a
  killed instance still hold it, waits a bounded time for them to let it go.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import signal
import socket
import sys
import threading
import time

from wattroute.errors import InputError

log = logging.getLogger("wattroute.service")

ENV_PARENT_PID = "WATTROUTE_PARENT_PID"
"""The pid of the process that supervises the API workers, set by it for them."""

ENV_BIND_WAIT = "WATTROUTE_BIND_WAIT_S"
"""How long (seconds) a start waits for a busy port to be released; 10 unless set."""

BIND_WAIT_S = 10.0
POLL_S = 0.5
GRACE_S = 1.0
BACKLOG = 2048

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_watching = False  # exit_with_parent ran in this process
_leaving = False  # the shutdown began
_lock = threading.Lock()


def exit_with_parent(
    parent_pid: int | None = None, poll_s: float = POLL_S, grace_s: float = GRACE_S
) -> None:
    """Make this process leave when its parent dies: SIGTERM (uvicorn's graceful shutdown,
    which closes the listening socket first), then, ``grace_s`` later, a hard exit, so that
    neither an open keep-alive connection nor a slow request keeps the process and its port.

    ``parent_pid`` defaults to :data:`ENV_PARENT_PID` from the environment (the pid the
    parent had when it started us), else the current parent. Comparing it with
    :func:`os.getppid` after arming the death signal catches a parent that died before.

    The Linux death signal is sent when the *thread* that created this process ends, not the
    process. uvicorn's supervisor (``uvicorn.supervisors.Multiprocess``) starts and restarts
    its workers from the thread that runs it, which here is the main thread of the serve
    process, alive as long as the process is; so the signal means that the parent is gone.
    The polling thread checks the same, once every ``poll_s`` seconds, on every platform.
    Calling this again in the same process does nothing.
    """
    global _watching
    if _watching:
        return
    _watching = True
    if parent_pid is None:
        from_env = os.environ.get(ENV_PARENT_PID, "")
        parent_pid = int(from_env) if from_env.isdigit() else os.getppid()
    if sys.platform == "linux":
        _arm_death_signal()
    watcher = threading.Thread(
        target=_watch, args=(parent_pid, poll_s, grace_s), name="parent-watch", daemon=True
    )
    watcher.start()
    if os.getppid() != parent_pid:  # it died before the death signal was armed
        _leave(parent_pid, grace_s)


def _arm_death_signal() -> None:
    """Ask the kernel to send SIGTERM to this process when its parent dies (Linux only)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if int(libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)) != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    except (OSError, AttributeError) as exc:  # no libc, no prctl: the polling thread remains
        log.warning("parent death signal unavailable", extra={"fields": {"error": str(exc)}})


def _watch(parent_pid: int, poll_s: float, grace_s: float) -> None:
    """Poll the parent pid; once it changed (we were re-parented), leave."""
    while os.getppid() == parent_pid:
        time.sleep(poll_s)
    _leave(parent_pid, grace_s)


def _leave(parent_pid: int, grace_s: float) -> None:
    """Shut down gracefully (SIGTERM to our main thread: a second one, after the kernel's,
    does no harm) and arm a hard exit for ``grace_s`` seconds later."""
    global _leaving
    with _lock:
        if _leaving:
            return
        _leaving = True
    log.warning(
        "the supervising process died; this API worker exits",
        extra={"fields": {"parent_pid": parent_pid, "worker_pid": os.getpid()}},
    )
    # To the main thread: Python runs signal handlers there, and a signal the kernel hands to
    # another thread would leave a main thread blocked in a system call asleep until it returns.
    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)
    timer = threading.Timer(grace_s, _hard_exit)
    timer.daemon = True
    timer.start()


def _hard_exit() -> None:
    """End the process now (still running ``grace_s`` after the graceful shutdown began)."""
    log.warning("graceful shutdown too slow; API worker exits now")
    logging.shutdown()
    os._exit(1)


def bind_wait_s() -> float:
    """The time a start waits for a busy port: :data:`ENV_BIND_WAIT`, else 10 s."""
    raw = os.environ.get(ENV_BIND_WAIT, "")
    try:
        return max(0.0, float(raw)) if raw else BIND_WAIT_S
    except ValueError:
        return BIND_WAIT_S


def bind_listener(
    host: str, port: int, wait_s: float | None = None, backlog: int = BACKLOG
) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening, to hand to uvicorn.

    While the port is in use (the workers of an instance killed a moment ago may still hold
    it), retry for up to ``wait_s`` seconds (default :func:`bind_wait_s`). Listening at once
    keeps the port ours: no second instance can bind it while this one starts up.

    Raises
    ------
    InputError
        If the port is still in use after ``wait_s``, or cannot be bound at all.
    """
    wait_s = bind_wait_s() if wait_s is None else wait_s
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + wait_s
    waiting = False
    while True:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(backlog)
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE:
                raise _unusable(host, port, exc) from exc
            if time.monotonic() >= deadline:
                raise InputError(
                    "api.port",
                    f"{host}:{port} is in use by another process (waited {wait_s:g} s for it "
                    "to be released).",
                    "stop the process that listens on it (another wattroute serve?), or "
                    "choose a free port with api.port or --port.",
                ) from exc
            if not waiting:
                waiting = True
                log.warning(
                    "port in use; waiting for the previous instance to release it",
                    extra={"fields": {"host": host, "port": port, "wait_s": wait_s}},
                )
            time.sleep(0.1)
            continue
        if waiting:
            log.info("port released", extra={"fields": {"host": host, "port": port}})
        return sock


def _unusable(host: str, port: int, exc: OSError) -> InputError:
    """The error for a host or port that cannot be bound for another reason than use."""
    field = "api.port" if exc.errno == errno.EACCES else "api.host"
    return InputError(
        field,
        f"cannot listen on {host}:{port}: {exc.strerror or exc}.",
        "give an address of this machine (api.host or --host) and a port above 1023 "
        "(api.port or --port).",
    )
