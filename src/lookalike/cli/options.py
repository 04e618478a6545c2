"""Options shared by several commands, declared once with their bounds and help."""

from __future__ import annotations

import typer

from ..actions.keeper import DEFAULT_RULES, KEEP_RULES
from ..arguments import MAX_LIMIT, MAX_WORKERS  # noqa: F401  (re-exported for commands)
from ..report.health import BOUNDS as HEALTH_BOUNDS
from ..runners.actors import MAX_GPUS
from ..runners.shards import SHARD_FILES as SHARD_FILES_DEFAULT
from ..search.dupes import MAX_RADIUS

MAX_DISTANCE = typer.Option(
    None, "--max-distance", "-d", min=0, max=MAX_RADIUS, metavar="BITS",
    help=f"Largest Hamming distance of a hash match (0 to {MAX_RADIUS}; default: calibrated, "
         "or the method's own).")
WORKERS = typer.Option(None, "--workers", "-j", min=1, max=MAX_WORKERS, metavar="N",
                       help="Processes (default: cores).")
RUNNER = typer.Option("local", "--runner", metavar="local|ray",
                      help="Who does the per-picture work: local (a process pool, the "
                      "default) or ray (a Ray cluster, in shards kept as Parquet beside the "
                      "index; needs the 'ray' extra).")
SEARCH_RUNNER = typer.Option("local", "--runner", metavar="local|ray",
                             help="Who runs the hash self-join: local (this process, the "
                             "default) or ray (a Ray cluster, bucket by bucket; the same "
                             "pairs and groups; needs the 'ray' extra).")
RAY_ADDRESS = typer.Option(None, "--ray-address", metavar="ADDR",
                           help="With --runner ray: the cluster to join (host:port, or auto "
                           "for RAY_ADDRESS; default: start or join a local Ray instance).")
SHARD_FILES = typer.Option(SHARD_FILES_DEFAULT, "--shard-files", min=1, max=1 << 20,
                           metavar="N", help="With --runner ray: files per shard (the unit "
                           "of retry and resume).")
SHARD_DIR = typer.Option(None, "--shard-dir", metavar="DIR",
                         help="With --runner ray: where the tasks write their shards, a folder "
                         "every node and this machine see, or a URL (s3://bucket/shards; the "
                         "'remote' extra) (default: shards/ beside the index).")
SHARDS_ONLY = typer.Option(False, "--shards-only",
                           help="With --runner ray: leave the computed shards in their Parquet "
                           "files, not merged into the index (no file is marked vanished).")
RAY_GPUS = typer.Option(None, "--ray-gpus", min=0, max=MAX_GPUS, metavar="N",
                        help="With --runner ray and a model method (--mode thorough): sign "
                        "shards on N of the cluster's GPUs, one model actor each, beside the "
                        "CPU tasks (default: every GPU the cluster has; 0: CPU tasks only, "
                        "the model loaded once per worker process).")


HEALTH = typer.Option(
    [], "--health", metavar="CHECK=VALUE",
    help="Change a health check's threshold (repeatable): "
    + ", ".join(f"{name} {low:g}..{high:g}" for name, (low, high) in HEALTH_BOUNDS.items())
    + " (outlier: a percentile of the distances; defaults: README 'Dataset health').")


def limit(help_text: str, default: int = 20) -> typer.models.OptionInfo:
    """`--limit`: matches listed per picture, 1 to MAX_LIMIT."""
    return typer.Option(default, "--limit", min=1, max=MAX_LIMIT, metavar="N", help=help_text)


# Which file of a group is kept (actions/keeper.py): `plan` uses them, and `dupes` shows the
# same keeper, so both take the same options.
KEEP = typer.Option(",".join(DEFAULT_RULES), "--keep", metavar="RULES",
                    help="Keep rules in order: " + ", ".join(KEEP_RULES) + ".")
PREFER_PATH = typer.Option([], "--prefer-path", metavar="DIR",
                           help="Keep files under DIR first (repeatable).")
REFERENCE = typer.Option([], "--reference", metavar="DIR",
                         help="Files under DIR are always kept and never touched (repeatable).")
NO_MARKS = typer.Option(False, "--no-marks", help="Ignore the keep and quarantine marks made "
                        "in the web UI (they come before the keep rules).")

# Exit codes of bulk runs (README, "Exit codes"): a scan or ingest that finished exits 0 and
# lists what it could not use; --strict turns any such file or row into exit 3.
STRICT = typer.Option(False, "--strict", help="Exit with 3 when any file or row could not be "
                      "used (without it, a run that finished exits 0 and lists them).")
