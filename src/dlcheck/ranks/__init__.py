"""Scale-out core: run one dlcheck command as every rank of a torchrun / SLURM / manual launch.

Importing this package imports no torch: :func:`detect_launch` and the pure merge functions are
stdlib-only; :func:`session` imports ``torch.distributed`` when it is entered.

Wiring a command (every rank runs the same code; only rank 0 renders)::

    launch = detect_launch()               # None → the ordinary single-process path
    if launch is not None:
        release = quiet_c10d_logs_for_join()  # before anything imports torch; release()
                                              # after joining and at the end
        with session(launch, timeout_s=timeout_from_env()) as ctx, ctx.root_only_stdout():
            mine = ctx.capture(do_local_work)          # never raises (except Ctrl-C)
            rows = ctx.gather(mine, stage="results")   # list on rank 0, None elsewhere
            local = ...                                # this rank's own exit code
            if ctx.is_root:
                ...merge rows (dlcheck.ranks.cluster / .throughput), local = max(local, ...)
            code = ctx.agree_exit(local)               # the worst, on every rank
            if ctx.is_root:
                render or emit_json(...)
        return code
    # RankFailure / DlcheckError raised from the block → handle_errors → exit 1 (130 if a rank
    # was interrupted); KeyboardInterrupt propagates.

Lockstep sweeps (profile): rank 0 ``broadcast``s the plan (or each next setting of an adaptive
search), every rank calls ``barrier(stage=f"setting {i}")`` before measuring so all loaders run
at the same time, then results are gathered. Pass ``wait_s`` to exchanges that follow long work.
"""

from __future__ import annotations

from dlcheck.exitcodes import normalize_exit, worst_exit
from dlcheck.ranks.launch import LaunchInfo, detect_launch, expand_nodelist, slurm_port
from dlcheck.ranks.session import (
    DEFAULT_TIMEOUT_S,
    TIMEOUT_VAR,
    DistSession,
    LauncherStopped,
    Peer,
    RankFailure,
    error_record,
    quiet_c10d_logs,
    quiet_c10d_logs_for_join,
    session,
    stdout_to_stderr,
    timeout_from_env,
)

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "TIMEOUT_VAR",
    "DistSession",
    "LaunchInfo",
    "LauncherStopped",
    "Peer",
    "RankFailure",
    "detect_launch",
    "error_record",
    "expand_nodelist",
    "normalize_exit",
    "quiet_c10d_logs",
    "quiet_c10d_logs_for_join",
    "session",
    "slurm_port",
    "stdout_to_stderr",
    "timeout_from_env",
    "worst_exit",
]
