"""The ``trainer`` command line (also ``python -m trainer``).

These verbs are the contract external scripts call; keep them stable. Each is a
thin layer over :mod:`trainer.workflow`, the library API the nightly job and the
add-a-device loop call directly::

    trainer pretrain --store DIR --space S --sources a,b,c [--method M] [--source-samples N] [--seed K] --out PRED [--json]
    trainer sample   --predictor PRED --n 20 [--sampler cosine|kmeans|random] [--seed K] [--candidates FILE] [--json]
    trainer transfer --predictor PRED --store DIR --target DEVICE[:RUNTIME:bN] --out PRED2 [--json]
    trainer predict  --predictor PRED2 [--target T] (--all | --archs FILE) --out (preds.parquet | preds.csv | -) [--json]
    trainer evaluate --store DIR --space S --sources ... --targets ... --samples 20 --seeds 0,1,2
                     [--method M] [--sampler random] [--json OUT] [--plots DIR]

``--task ND`` / ``--task FD`` fill ``--space``, ``--sources`` (and for
``evaluate`` ``--targets``) with HELP's NAS-Bench-201 / FBNet device split, and
``--source-samples`` with HELP's published per-source counts (900 / 4,000;
lowered to the archs the sources share where a store holds fewer).
``--store`` may be repeated (the local store and one ``farm pull`` brought
from a cluster, say): the rows of all of them are read as one store, each
measurement once by ``measurement_id``.
``--json`` prints one JSON object describing what was done on stdout; the human
lines then go to stderr. ``predict --out -`` writes CSV to stdout, an ``--out``
ending in ``.csv`` writes CSV, anything else Parquet.
``--epochs N`` and ``--hyper key=value`` (repeatable; the value is parsed as
JSON where it can be) pass hyper-parameters to the method; tests use tiny
``--epochs`` to keep the neural methods fast.

Bad input (unknown device, empty store, a store without the predictor's
space, too few target samples, a corrupt predictor directory, a bad arch
line, an arch file that is not UTF-8, an ``--out``/``--json``/``--plots``
that cannot be written) prints one line naming what is wrong and what to do,
and exits 2, before anything is trained. ``trainer --version`` prints the
version; every option's ``--help`` shows its default.

Example:
    >>> build_parser().parse_args(["sample", "--predictor", "p", "--n", "5"]).sampler
    'cosine'
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from farm.atomic import write_atomic, write_text_atomic
from farm import spaces
from farm.cli_help import apply_help_conventions
from farm.errors import UserError, exit_on_user_error
from farm.user_files import check_writable_folder, read_text
from trainer import registry, workflow
from trainer.data import load_table
from trainer.evaluate import TASKS, evaluate_method
from trainer.models import METHODS
from trainer.samplers import DEFAULT_SAMPLER, SAMPLERS

#: Archs per source that ``--task`` uses unless ``--source-samples`` says otherwise: HELP's
#: published meta-training counts (900 NAS-Bench-201 archs, 4,000 FBNet archs per device).
TASK_SOURCE_SAMPLES: dict[str, int] = {"ND": 900, "FD": 4000}


# ------------------------------------------------------------------ argument helpers
def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list of names")
    return names


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in _names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _hyper_pair(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def hyper_from(args: argparse.Namespace) -> dict[str, Any]:
    """Hyper-parameters from ``--hyper k=v`` and ``--epochs``."""
    hyper = dict(getattr(args, "hyper", None) or [])
    if getattr(args, "epochs", None) is not None:
        hyper["epochs"] = args.epochs
    return hyper


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=_positive, default=None, help="training epochs (neural methods; tiny in tests)")
    parser.add_argument("--hyper", type=_hyper_pair, action="append", metavar="KEY=VALUE",
                        help="a method hyper-parameter; repeatable")


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True, type=Path, action="append", metavar="DIR",
                        help="farm store folder to read rows from; repeat to read several as one "
                             "(their union, each measurement once by measurement_id)")
    parser.add_argument(
        "--include-unstable", action="store_true",
        help="also learn from rows the farm flagged unstable (confidence interval wider than the device's max_ci after its repeats); default: ok rows only",
    )


def _statuses(args: argparse.Namespace) -> tuple[str, ...]:
    return ("ok", "unstable") if args.include_unstable else ("ok",)


def _add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print a JSON object describing what was done on stdout (human lines go to stderr)")


def _add_task(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", choices=sorted(TASKS), help="device split preset: HELP's ND (NAS-Bench-201) or FD (FBNet), or one of the project's hard splits (ND-noGPU, ND-GPUonly, FD-nophone, FD-noGPU)")


def _apply_task(args: argparse.Namespace, with_targets: bool) -> None:
    task = TASKS.get(args.task) if getattr(args, "task", None) else None
    args.preset_samples = False
    if task is not None:
        args.space = args.space or task.space
        args.sources = args.sources or list(task.sources)
        if with_targets:
            args.targets = args.targets or list(task.targets)
        if args.source_samples is None:
            args.source_samples, args.preset_samples = TASK_SOURCE_SAMPLES[args.task], True
    missing = [flag for flag, value in (("--space", args.space), ("--sources", args.sources)) if not value]
    if with_targets and not args.targets:
        missing.append("--targets")
    if missing:
        raise UserError(f"{missing[0]} is required (or pass --task {'/'.join(sorted(TASKS))})")
    if args.space not in spaces.NAMES:
        raise UserError(f"--space: unknown search space {args.space!r}; known: {', '.join(spaces.NAMES)}")


# ------------------------------------------------------------------ verbs
def cmd_pretrain(args: argparse.Namespace) -> int:
    """Pre-train a method on source targets and save it."""
    _apply_task(args, with_targets=False)
    _refuse_stdout_dir(args.out)
    check_output("--out", args.out)
    table = load_table(args.store, args.space, statuses=_statuses(args))
    say = _human(args)
    result = workflow.pretrain(
        table, args.sources, method=args.method, source_samples=args.source_samples,
        cap_source_samples=args.preset_samples, seed=args.seed, hyper=hyper_from(args), progress=True, say=say,
    )
    workflow.save(result, args.out)
    if not result.sources:
        say(f"{result.method} learns from target samples only: saved an untrained predictor -> {args.out}")
    else:
        counts = sorted(set(result.archs_per_source.values()))
        say(f"pre-trained {result.method} on {len(result.sources)} source(s) of {result.space} "
            f"({'/'.join(map(str, counts))} archs each) in {result.seconds:.1f} s -> {args.out}")
    _print_json(args, {**result.to_dict(), "out": str(args.out)})
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """Print ``--n`` arch strings to measure on a new device (no latencies are read)."""
    manifest = registry.read_manifest(args.predictor)
    space_name = manifest["space"]
    candidates = read_arch_file(args.candidates, space_name) if args.candidates is not None else None
    chosen = workflow.sample(space_name, args.n, sampler=args.sampler, seed=args.seed, candidates=candidates,
                             method=manifest["method"])
    if args.json:
        _print_json(args, {"action": "sample", "space": space_name, "sampler": args.sampler, "seed": args.seed,
                           "n": len(chosen), "archs": chosen})
    else:
        sys.stdout.write("".join(f"{arch}\n" for arch in chosen))
    return 0


def cmd_transfer(args: argparse.Namespace) -> int:
    """Transfer a saved predictor to ``--target`` with every measured row of it in the store."""
    _refuse_stdout_dir(args.out)
    check_output("--out", args.out)
    predictor, manifest = registry.load(args.predictor)
    table = load_table(args.store, manifest["space"], statuses=_statuses(args))
    say = _human(args)
    result = workflow.transfer(predictor, table, args.target, manifest=manifest, hyper=hyper_from(args), say=say)
    workflow.save(result, args.out)
    say(f"transferred {manifest['method']} to {result.target} with {result.samples} samples in "
                 f"{result.seconds:.2f} s (fit Spearman {result.fit['spearman']:.3f}) -> {args.out}")
    if summary := result.predictor.transfer_summary(result.target):
        say(summary)
    _print_json(args, {**result.to_dict(), "predictor": str(args.predictor), "out": str(args.out)})
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict latencies of archs on one target: Parquet (default), CSV (``.csv``) or CSV on stdout (``-``)."""
    to_stdout = str(args.out) == "-"
    if to_stdout and args.json:
        raise UserError("--json and --out - both write to stdout; pass --out FILE (.parquet or .csv) with --json")
    if not to_stdout:
        check_output("--out", args.out, file=True)
    predictor, manifest = registry.load(args.predictor)
    target = workflow.predict_target(predictor, manifest, args.target, origin=str(args.predictor))
    space_name = manifest["space"]
    archs = workflow.all_archs(space_name) if args.all else read_arch_file(args.archs, space_name)
    started = time.perf_counter()
    predicted = workflow.predict(predictor, archs, target)
    elapsed = time.perf_counter() - started
    table = pa.table({"arch": pa.array(archs, pa.string()), "predicted_ms": pa.array(predicted, pa.float64())})
    fmt = "csv" if to_stdout or str(args.out).endswith(".csv") else "parquet"
    if to_stdout:
        pd.DataFrame({"arch": archs, "predicted_ms": predicted}).to_csv(sys.stdout, index=False)
    elif fmt == "csv":
        write_text_atomic(pd.DataFrame({"arch": archs, "predicted_ms": predicted}).to_csv(index=False), args.out)
    else:
        metadata = {b"latfarm.predictor": str(args.predictor).encode(), b"latfarm.target": target.encode(),
                    b"latfarm.method": str(manifest["method"]).encode()}
        write_parquet_atomic(table.replace_schema_metadata(metadata), args.out)
    _human(args, force_stderr=to_stdout)(
        f"predicted {len(archs)} archs on {target} with {manifest['method']} in {elapsed:.2f} s -> {args.out}"
    )
    _print_json(args, {
        "action": "predict", "predictor": str(args.predictor), "method": manifest["method"], "target": target,
        "archs": len(archs), "seconds": round(elapsed, 3), "out": str(args.out), "format": fmt,
        "predicted_ms": {"min": float(predicted.min()), "median": float(np.median(predicted)), "max": float(predicted.max())},
    })
    return 0


def _human(args: argparse.Namespace, force_stderr: bool = False) -> Callable[[str], None]:
    """Where a verb's human lines go: stdout, or stderr when stdout carries JSON or data."""
    stream = sys.stderr if force_stderr or getattr(args, "json", False) else sys.stdout
    return lambda line: print(line, file=stream, flush=True)


def _print_json(args: argparse.Namespace, payload: Mapping[str, Any]) -> None:
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def _refuse_stdout_dir(out: Path) -> None:
    if str(out) == "-":
        raise UserError("--out -: a predictor is a directory (manifest.json + weights), it cannot go to stdout; "
                        "pass --out DIR (add --json for a description on stdout)")


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Few-shot evaluation; prints a table, optionally writes JSON and scatter plots."""
    _apply_task(args, with_targets=True)
    if args.json is not None and str(args.json) != "-":
        check_output("--json", args.json, file=True)
    if args.plots is not None:
        check_output("--plots", args.plots)
    table = load_table(args.store, args.space, statuses=_statuses(args))
    source_samples = (workflow.capped_source_samples(table, args.sources, args.source_samples)
                      if args.preset_samples else args.source_samples)
    result = evaluate_method(
        table, args.space, args.sources, args.targets,
        samples=args.samples, seeds=args.seeds,
        method=args.method, sampler=args.sampler, source_samples=source_samples, plots_dir=args.plots,
        progress=sys.stderr.isatty(), **hyper_from(args),
    )
    to_stdout = args.json is not None and str(args.json) == "-"
    print(result.summary(), file=sys.stderr if to_stdout else sys.stdout)  # stdout stays pure JSON with --json -
    if args.json is not None:
        text = json.dumps(result.to_dict(), indent=2) + "\n"
        if to_stdout:
            sys.stdout.write(text)
        else:
            write_text_atomic(text, args.json)
    return 0


# ------------------------------------------------------------------ files
def read_arch_file(path: Path, space_name: str) -> list[str]:
    """Canonical archs from a text file (one a line; blank lines and ``#`` comments skipped) or a
    Parquet file with an ``arch`` column. A bad line raises :class:`UserError` naming it."""
    hint = "pass --archs FILE with one arch string a line (or a Parquet file with an arch column)"
    if not Path(path).is_file():
        raise UserError(f"{path}: no such file; {hint}")
    space = spaces.get(space_name)
    if str(path).endswith(".parquet"):
        try:
            lines = [(i + 2, str(a)) for i, a in enumerate(pq.read_table(path, columns=["arch"]).column("arch").to_pylist())]
        except (pa.ArrowInvalid, KeyError, OSError) as error:
            raise UserError(f"{path}: needs to be Parquet with an 'arch' column ({type(error).__name__}: "
                            f"{' '.join(str(error).split())})") from None
    else:
        lines = [(i + 1, raw.strip()) for i, raw in enumerate(read_text(path, hint=hint).splitlines())]
        lines = [(number, text) for number, text in lines if text and not text.startswith("#")]
    archs = []
    for number, text in lines:
        try:
            archs.append(space.canonical(text))
        except spaces.ArchError as error:
            raise UserError(f"{path}: line {number}: {error}") from None
    if not archs:
        raise UserError(f"{path}: holds no arch strings")
    return archs


def check_output(flag: str, path: Path, *, file: bool = False) -> None:
    """Refuse an output that cannot be written, before any work.

    ``file``: the output is a file, else a folder (a predictor directory, a plots folder). Both are
    written beside their final name and renamed, so the parent folder must be writable too.
    """
    path = Path(path)
    if file and path.is_dir():
        raise UserError(f"{flag} {path}: is a folder; pass a file name")
    if not file and path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path}: is a file; pass a folder name (it is created)")
    check_writable_folder(flag, path.parent)
    if not file and path.is_dir():
        check_writable_folder(flag, path)


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` atomically (:func:`farm.atomic.write_atomic`)."""
    write_atomic(path, lambda handle: pq.write_table(table, handle))


# ------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    """The ``trainer`` argument parser with its five verbs."""
    parser = argparse.ArgumentParser(prog="trainer", description="Few-shot latency predictors from farm stores.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    methods = sorted(METHODS)

    pretrain = verbs.add_parser("pretrain", help="pre-train a predictor on source devices")
    _add_store_options(pretrain)
    pretrain.add_argument("--space", choices=spaces.NAMES, help="search space (or --task)")
    pretrain.add_argument("--sources", type=_names, metavar="A,B,C", help="source targets to pre-train on (or --task)")
    pretrain.add_argument("--method", choices=methods, help="default: the project's best method")
    pretrain.add_argument("--source-samples", type=_positive, metavar="N",
                          help="N seeded archs per source, the same for all (default: every arch; with --task, "
                               "HELP's published 900 NB201 / 4000 FBNet)")
    pretrain.add_argument("--seed", type=int, default=0, help="seed of sampling and training")
    pretrain.add_argument("--out", required=True, type=Path, metavar="PRED",
                          help="predictor folder to write (manifest.json + weights; replaced atomically)")
    _add_json_flag(pretrain)
    _add_task(pretrain)
    _add_training_options(pretrain)
    pretrain.set_defaults(handler=cmd_pretrain)

    sample = verbs.add_parser("sample", help="name archs to measure on a new device (reads no latencies)")
    sample.add_argument("--predictor", required=True, type=Path, metavar="PRED",
                        help="predictor folder (its space and, for some samplers, its encodings)")
    sample.add_argument("--n", required=True, type=_positive, help="how many archs to name (a HELP predictor names its 10 reference archs first; they count)")
    sample.add_argument("--sampler", choices=sorted(SAMPLERS), default=DEFAULT_SAMPLER, help="how archs are chosen")
    sample.add_argument("--seed", type=int, default=0, help="sampler seed")
    sample.add_argument("--candidates", type=Path, metavar="FILE", help="choose among these archs (default: the space)")
    sample.add_argument("--json", action="store_true", help="print a JSON object with the archs list instead of lines")
    sample.set_defaults(handler=cmd_sample)

    transfer = verbs.add_parser("transfer", help="adapt a predictor to a new device from its rows in a store")
    transfer.add_argument("--predictor", required=True, type=Path, metavar="PRED", help="predictor folder to start from")
    _add_store_options(transfer)
    transfer.add_argument("--target", required=True, metavar="TARGET",
                          help="a device (its default target: the inventory's first runtime and batch size), "
                               "or device:runtime:bN for another configuration")
    transfer.add_argument("--out", required=True, type=Path, metavar="PRED2",
                          help="predictor folder to write (replaced atomically)")
    _add_json_flag(transfer)
    _add_training_options(transfer)
    transfer.set_defaults(handler=cmd_transfer)

    predict = verbs.add_parser("predict", help="predict latencies into a Parquet or CSV file (arch, predicted_ms)")
    predict.add_argument("--predictor", required=True, type=Path, metavar="PRED", help="predictor folder")
    predict.add_argument("--target", metavar="DEVICE", help="target to predict for (default: the last transferred target)")
    which = predict.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every arch of the space (finite spaces)")
    which.add_argument("--archs", type=Path, metavar="FILE", help="one arch a line, or Parquet with an arch column")
    predict.add_argument("--out", required=True, type=Path, metavar="PREDS",
                         help="a .parquet file; a .csv file; or - for CSV on stdout")
    _add_json_flag(predict)
    predict.set_defaults(handler=cmd_predict)

    evaluate = verbs.add_parser("evaluate", help="few-shot transfer evaluation with Spearman/Kendall/+-5%%/+-10%%")
    _add_store_options(evaluate)
    evaluate.add_argument("--space", choices=spaces.NAMES, help="search space (or --task)")
    evaluate.add_argument("--sources", type=_names, metavar="A,B,C", help="source targets to pre-train on (or --task)")
    evaluate.add_argument("--targets", type=_names, metavar="X,Y", help="targets to transfer to and score (or --task)")
    evaluate.add_argument("--samples", type=_positive, default=20, help="measured archs per target the transfer sees")
    evaluate.add_argument("--seeds", type=_seeds, default=[0, 1, 2], help="repetitions, one seed each (comma-separated)")
    evaluate.add_argument("--method", choices=methods, help="method to evaluate (default: the project's best method)")
    evaluate.add_argument("--sampler", choices=sorted(SAMPLERS), default="random",
                          help="how target samples are picked (default random, as in the papers)")
    evaluate.add_argument("--source-samples", type=_positive, metavar="N",
                          help="N seeded archs per source (default: every arch; with --task, HELP's counts)")
    evaluate.add_argument("--json", type=Path, nargs="?", const=Path("-"), metavar="OUT",
                          help="write the full results as JSON (no value or '-' = stdout)")
    evaluate.add_argument("--plots", type=Path, metavar="DIR", help="write a predicted-vs-measured PNG per target")
    _add_task(evaluate)
    _add_training_options(evaluate)
    evaluate.set_defaults(handler=cmd_evaluate)
    from trainer import registry_cli  # late: it reuses this module's argument helpers

    registry_cli.register(verbs)  # registry, nightly, evaluate --predictor
    apply_help_conventions(parser, version=registry.package_version())
    return parser


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``trainer`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
