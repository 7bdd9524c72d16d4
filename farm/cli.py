"""The ``farm`` console script.

Subcommands:

* ``farm status [--store DIR] [--json]``: measurements per search space, device,
  runtime and batch size (ok / unstable / failed, distinct archs, median latency,
  median relative CI half-width), per device the share of measured rows carrying
  each telemetry field, the last campaign, and every unfinished campaign (killed or
  interrupted) with the counts of its stored rows and the command that resumes it;
* ``farm check --store DIR [--repair] [--json]``: damaged or foreign files in a store,
  quarantined with ``--repair`` (:mod:`farm.store_check`);
* ``farm measure ...``: the same as ``python measure.py ...``;
* ``farm devices [--inventory FILE] [--json]``: probe every device through its Ray actor;
* ``farm import FILE|DIR --store DIR``: a Parquet table, or a store folder merged by ``measurement_id``;
* ``farm pull CLUSTER_YAML [--store DIR] [--remote-store PATH]``: the head's store brought home
  (``ray rsync-down``) and merged (:mod:`farm.pull`);
* ``farm encode --space S [--all | --archs FILE | --sample N] [--store DIR] [--proxies a,b]``:
  zero-cost proxies per arch as Ray tasks, into the store's ``_encodings`` table (:mod:`farm.encode`).

``farm --version`` prints the version; every option's ``--help`` shows its default.

Example:
    >>> parser = build_parser()
    >>> parser.parse_args(["status", "--store", "m"]).store
    'm'
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from farm import __version__
from farm.cli_help import apply_help_conventions
from farm.errors import UserError, exit_on_user_error

#: Modules that add subcommands with ``register(subparsers)``, in the order ``--help`` lists them.
SUBCOMMAND_MODULES: tuple[str, ...] = ("farm.store_check",)
#: Optional modules that add subcommands the same way (skipped when they cannot be imported).
PLUGIN_MODULES: tuple[str, ...] = ("farm.importer", "farm.pull", "farm.encode")


def status_table(store_root: str | Path) -> pd.DataFrame:
    """One row per (search_space, device, runtime, batch_size), i.e. per prediction target.

    Columns: counts per status, distinct archs measured ok, median latency of the ok rows,
    median relative half-width of the measured rows' intervals (``median_rel_ci``; NaN for rows
    written before intervals were stored).
    """
    from farm.store import Store

    keys = ["search_space", "device", "runtime", "batch_size"]
    frame = Store(store_root).read(
        columns=[*keys, "device_kind", "arch", "status", "latency_ms", "ci_low_ms", "ci_high_ms"]
    )
    columns = [*keys, "device_kind", "ok", "unstable", "failed", "archs_ok", "median_ms", "median_rel_ci"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    groups = []
    for (space, device, runtime, batch_size), part in frame.groupby(keys, sort=True):
        ok = part[part["status"] == "ok"]
        measured = part[part["status"] != "failed"]
        relative_ci = (measured["ci_high_ms"] - measured["ci_low_ms"]) / 2 / measured["latency_ms"]
        groups.append(
            {
                "search_space": space,
                "device": device,
                "runtime": runtime,
                "batch_size": int(batch_size),
                "device_kind": ",".join(sorted(part["device_kind"].unique())),
                "ok": int((part["status"] == "ok").sum()),
                "unstable": int((part["status"] == "unstable").sum()),
                "failed": int((part["status"] == "failed").sum()),
                "archs_ok": int(ok["arch"].nunique()),
                "median_ms": float(ok["latency_ms"].median()) if len(ok) else float("nan"),
                "median_rel_ci": float(relative_ci.median()) if relative_ci.notna().any() else float("nan"),
            }
        )
    return pd.DataFrame(groups, columns=columns)


TELEMETRY_COLUMNS: tuple[str, ...] = (
    "temperature_start_c",
    "temperature_end_c",
    "cpu_freq_start_mhz",
    "cpu_freq_end_mhz",
    "governor",
)


def telemetry_table(store_root: str | Path) -> pd.DataFrame:
    """Per device: measured rows (ok or unstable) and the share of them that carry each telemetry column.

    Example:
        >>> import tempfile
        >>> list(telemetry_table(tempfile.mkdtemp()).columns)[:2]
        ['device', 'measured']
    """
    from farm.store import Store

    frame = Store(store_root).read(columns=["device", "status", *TELEMETRY_COLUMNS])
    measured = frame[frame["status"] != "failed"]
    rows = [
        {"device": device, "measured": len(part), **{c: float(part[c].notna().mean()) for c in TELEMETRY_COLUMNS}}
        for device, part in measured.groupby("device", sort=True)
    ]
    return pd.DataFrame(rows, columns=["device", "measured", *TELEMETRY_COLUMNS])


def status(args: argparse.Namespace) -> int:
    from farm.store import Store, StoreError
    from farm.summary import campaign_views, load_records

    root = Path(args.store)
    if root.exists() and not root.is_dir():
        raise UserError(f"--store {args.store}: is a file, not a store folder; pass the folder measure.py wrote")
    if not root.is_dir():
        raise UserError(f"--store {args.store}: no such folder; measure first (python measure.py) or pass --store")
    try:
        table = status_table(root)
        telemetry = telemetry_table(root)
        campaign_rows = Store(root).read(columns=["campaign_id", "device", "status"])
    except StoreError as exc:
        raise UserError(str(exc)) from None
    records = load_records(root)
    views = campaign_views(records, campaign_rows)
    last = views[-1] if views else None
    unfinished = [view for view in views if view.unfinished]
    if args.json:
        payload: dict[str, Any] = {
            "store": str(root),
            "measurements": json.loads(table.to_json(orient="records")),
            "telemetry": json.loads(telemetry.to_json(orient="records")),
            "last_campaign": last.to_dict() if last else None,
            "campaigns": len(records),
            "unfinished_campaigns": [view.to_dict() for view in unfinished],
        }
        json.dump(payload, sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
        return 0
    print(f"store {root}: {int(table[['ok', 'unstable', 'failed']].to_numpy().sum()) if len(table) else 0} rows")
    if len(table):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-"))
        if (table["device_kind"].str.contains("replay")).any():
            print("(device_kind replay: simulated devices replaying a recorded table, not measurements)")
        if len(telemetry):
            print("\ntelemetry: share of measured rows that carry each field")
            print(telemetry.to_string(index=False, formatters={c: "{:.0%}".format for c in TELEMETRY_COLUMNS}))
    else:
        print("no measurements yet")
    if last is None:
        print("no campaign recorded")
    else:
        when = last.record.finished_at or "never finished (killed or still running)"
        print(f"\nlast campaign ({len(records)} in total), finished: {when}; {last.state_line()}")
        print(last.record.render())
        print(f"stored: {last.counts_line()}")
    if unfinished:
        print(f"\nunfinished campaigns ({len(unfinished)}), counts from their stored rows:")
        for view in unfinished:
            record = view.record
            print(f"{record.campaign_id}: {view.state_line()}; started {record.started_at or '?'}, "
                  f"{record.search_space}, {record.archs} archs")
            print(f"  {view.counts_line()}")
            print(f"  {view.resume_hint()}")
    return 0


def devices(args: argparse.Namespace) -> int:
    """Probe every inventory device through its Ray actor and print what it says about itself."""
    from farm import inventory as inventories
    from farm.measure_command import device_names
    from farm.probe import probe_devices

    inventory = inventories.load(args.inventory)
    selected = inventory.select(device_names(args.devices))
    results = probe_devices(selected, address=args.address)
    if args.json:
        json.dump(results, sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
    else:
        for line in format_probe_table(results):
            print(line)
    return 0 if all(r["reachable"] for r in results) else 1


def format_probe_table(results: Sequence[dict[str, Any]]) -> list[str]:
    lines = [f"{'device':<22} {'kind':<7} {'reachable':<9} {'cores':>5} {'governor':<12} {'temp C':>6}  runtimes / error"]
    for r in results:
        facts = r.get("facts") or {}
        governors = sorted(set((facts.get("governor") or {}).values()))
        temps = (facts.get("temperatures_c") or {}).values()
        temp = f"{max(temps):.1f}" if temps else "-"
        detail = r["error"] or ", ".join(f"{k} {v}" for k, v in sorted((facts.get("runtime_versions") or {}).items()))
        lines.append(
            f"{r['device']:<22} {r['kind']:<7} {'yes' if r['reachable'] else 'NO':<9} {facts.get('cores') or '-':>5} "
            f"{','.join(governors) or '-':<12} {temp:>6}  {detail}"
        )
    return lines


#: Adds subcommands to the ``farm`` parser (``loop.cli`` adds ``add-device`` and ``report`` this way).
Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], Any]


def build_parser(extra: Sequence[Registrar] = ()) -> argparse.ArgumentParser:
    """The ``farm`` parser; each of ``extra`` registers more subcommands on it."""
    parser = argparse.ArgumentParser(prog="farm", description="latfarm: the latency measurement farm")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    status_parser = sub.add_parser("status", help="measurements per device and space, and the last campaign")
    status_parser.add_argument("--store", default="measurements", help="Parquet store folder")
    status_parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    status_parser.set_defaults(handler=status)

    from farm.measure_command import add_arguments, run

    measure_parser = sub.add_parser("measure", help="run a measurement campaign (same as measure.py)")
    add_arguments(measure_parser)
    measure_parser.set_defaults(handler=run)

    devices_parser = sub.add_parser("devices", help="probe every device of the inventory")
    devices_parser.add_argument("--inventory", default="inventory.yaml", help="device inventory YAML file")
    devices_parser.add_argument("--devices", action="append", metavar="NAME[,NAME]",
                                help="probe only these devices (repeat or comma-separate; default: all)")
    devices_parser.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    devices_parser.add_argument("--json", action="store_true", help="print JSON: one object per device")
    devices_parser.set_defaults(handler=devices)

    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).register(sub)
    for module_name in PLUGIN_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        module.register(sub)
    for register in extra:
        register(sub)
    apply_help_conventions(parser, version=__version__)
    return parser


@exit_on_user_error
def main(argv: Sequence[str] | None = None, parser: argparse.ArgumentParser | None = None) -> int:
    """Entry point of ``python -m farm.cli``; the ``farm`` console script passes its own ``parser`` (``loop.cli``)."""
    args = (parser or build_parser()).parse_args(argv)
    handler = getattr(args, "handler", None) or getattr(args, "func", None)
    if handler is None:
        raise UserError(f"farm {args.command}: subcommand has no handler")
    return int(handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
