"""``trainer registry``, ``trainer nightly`` and ``trainer evaluate --predictor``: the registry's command line.

::

    trainer registry list [TARGET] --registry DIR [--space S] [--json]
    trainer registry show TARGET --registry DIR [--space S] [--json]
    trainer registry rollback TARGET [--to vN] --registry DIR [--space S] [--json]
    trainer nightly --store DIR --registry DIR [--json] [--min-source-archs 200] [--method M]
                    [--epochs N] [--source-samples N] [--ray]
    trainer evaluate --predictor DIR --store DIR [--target T] [--json]

``TARGET`` is a target name, or ``_pretrained`` for a space's base predictor;
``--space`` is needed only where the name exists in several spaces.

Exit codes of ``nightly``: 0 done; 1 a step failed (one line says which; the
watermark is unchanged, so the next run retries); 2 bad input; 3 another
nightly run holds the lock (the line names its pid, host and start time).

:func:`register` adds these verbs to ``trainer.cli``'s parser.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="trainer")
    >>> verbs = parser.add_subparsers(dest="verb")
    >>> _ = verbs.add_parser("evaluate").add_argument("--store")
    >>> register(verbs)
    >>> parser.parse_args(["registry", "rollback", "pixel2", "--to", "v3", "--registry", "r"]).to
    3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from farm.errors import UserError
from farm.user_files import check_writable_folder
from trainer import holdout, registry
from trainer.cli import _hyper_pair, _positive, write_text_atomic
from trainer.data import load_table
from trainer.lock import LockHeld
from trainer.models import METHODS
from trainer.nightly import NightlyFailed, run
from trainer.nightly_config import NightlyConfig
from trainer.versions import BASE, PredictorRegistry, Version, VersionError

LOCK_HELD_EXIT = 3
FAILED_EXIT = 1


def _version_number(text: str) -> int:
    digits = text[1:] if text.lower().startswith("v") else text
    if not digits.isdigit() or int(digits) < 1:
        raise argparse.ArgumentTypeError(f"expected a version like v3, got {text!r}")
    return int(digits)


def _emit(args: argparse.Namespace, data: Any, lines: list[str]) -> None:
    """JSON on stdout with ``--json`` (or into the file ``evaluate --json OUT`` names), else the lines."""
    text = json.dumps(data, indent=2, default=str) + "\n"
    if isinstance(args.json, Path) and str(args.json) != "-":
        write_text_atomic(text, args.json)
    elif args.json:
        sys.stdout.write(text)
        return
    sys.stdout.write("".join(f"{line}\n" for line in lines))


# ------------------------------------------------------------------ registry verbs
def _space_of(reg: PredictorRegistry, target: str, space: str | None) -> str:
    if space is not None:
        return space
    spaces = sorted({s for s, t in reg.entries() if t == target})
    if len(spaces) == 1:
        return spaces[0]
    if spaces:
        raise VersionError(f"{reg.root}: {target!r} is registered in {', '.join(spaces)}; pass --space")
    known = ", ".join(f"{s}/{t}" for s, t in reg.entries()) or "none"
    raise VersionError(f"{reg.root}: no registered predictor for {target!r}; registered: {known}")


def _held_out_text(version: Version) -> str:
    score = version.metrics.get("held_out") or {}
    if score.get("spearman") is None:
        return "held-out: " + str(score.get("reason", "not scored"))
    low, high = score.get("spearman_ci95") or (None, None)
    interval = f" [{low:.3f}, {high:.3f}]" if low is not None else ""
    return f"held-out Spearman {score['spearman']:.4f}{interval} n={score.get('n')}"


def cmd_list(args: argparse.Namespace) -> int:
    """Every (space, target) with its current version, or one target's versions."""
    reg = PredictorRegistry(args.registry)
    if args.target is None:
        rows = []
        for space, target in reg.entries():
            current = reg.current(space, target)
            rows.append({"space": space, "target": target, "versions": len(reg.versions(space, target)),
                         "current": current.to_dict() if current else None})
        lines = [f"{r['space']}/{r['target']}: {r['versions']} version(s), current "
                 + (f"v{r['current']['version']} ({r['current']['summary']['method']})" if r["current"] else "none")
                 for r in rows]
        _emit(args, {"registry": str(reg.root), "entries": rows}, lines or [f"{reg.root}: no registered predictors"])
        return 0
    space = _space_of(reg, args.target, args.space)
    current = reg.current(space, args.target)
    versions = reg.versions(space, args.target)
    lines = [f"{'*' if current and v.number == current.number else ' '} {v.name} {v.created_at} "
             f"{v.summary['method']} {_held_out_text(v)} {v.note}".rstrip() for v in versions]
    _emit(args, {"space": space, "target": args.target, "current": current.number if current else None,
                 "versions": [v.to_dict() for v in versions]}, lines)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """The current version of a target: manifest summary, held-out metrics, recent history."""
    reg = PredictorRegistry(args.registry)
    space = _space_of(reg, args.target, args.space)
    current = reg.current(space, args.target)
    history = reg.history(space, args.target)[-10:]
    data = {"space": space, "target": args.target, "current": current.to_dict() if current else None, "history": history}
    lines = [f"{space}/{args.target}: " + (f"current {current.name} at {current.path}" if current else "nothing current")]
    if current:
        lines += [f"  method {current.summary['method']}, sources {','.join(current.summary['sources']) or '-'}, "
                  f"{_held_out_text(current)}", f"  note: {current.note}"]
    lines += [f"  {e.get('at')} {e.get('action')} v{e.get('version')}: {e.get('reason', e.get('note', ''))}" for e in history]
    _emit(args, data, lines)
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    """Make an earlier version current (``--to vN``, else the newest older one that was current)."""
    reg = PredictorRegistry(args.registry)
    space = _space_of(reg, args.target, args.space)
    before = reg.current(space, args.target)
    version = reg.rollback(space, args.target, args.to)
    _emit(args, {"space": space, "target": args.target, "previous": before.number if before else None,
                 "current": version.to_dict()},
          [f"{space}/{args.target}: current is now {version.name} (was {before.name if before else 'none'})"])
    return 0


# ------------------------------------------------------------------ nightly
def cmd_nightly(args: argparse.Namespace) -> int:
    """One nightly run; exit 0 / 1 (failed step) / 2 (bad input) / 3 (another run holds the lock)."""
    hyper = dict(args.hyper or [])
    if args.epochs is not None:
        hyper["epochs"] = args.epochs
    check_writable_folder("--registry", args.registry)
    config = NightlyConfig.build(args.store, args.registry, method=args.method, min_source_archs=args.min_source_archs,
                                 source_samples=args.source_samples, seed=args.seed, hyper=hyper, use_ray=args.ray,
                                 statuses=("ok", "unstable") if args.include_unstable else ("ok",))
    try:
        result = run(config)
    except LockHeld as held:
        print(f"trainer: error: another nightly run holds {held.path}: {held.holder.describe()}; "
              "it will release the lock when it ends", file=sys.stderr)
        return LOCK_HELD_EXIT
    except NightlyFailed as failed:
        if args.json:
            sys.stdout.write(json.dumps(failed.summary, indent=2, default=str) + "\n")
        print(f"trainer: error: nightly failed: {failed}; current predictors are unchanged past the last "
              f"promotion (details: {failed.summary.get('runs_log')})", file=sys.stderr)
        return FAILED_EXIT
    _emit(args, result.summary, result.lines())
    return 0


# ------------------------------------------------------------------ evaluate --predictor
def cmd_evaluate_predictor(args: argparse.Namespace) -> int:
    """Score a saved predictor on the held-out slice of each of its targets (or ``--target``)."""
    predictor, manifest = registry.load(args.predictor)
    table = load_table(args.store, manifest["space"], statuses=("ok", "unstable") if args.include_unstable else ("ok",))
    known = predictor.targets()
    if args.target is not None:
        target = table.resolve(args.target)
        if target not in known:
            raise UserError(f"--target {target!r}: unknown to the predictor {args.predictor}; it predicts for "
                            f"{', '.join(known) or 'nothing'}")
        targets = [target]
    else:
        targets = [t for t in (manifest["targets"] or known) if t in table.keys]
        if not targets:
            raise UserError(f"{args.predictor}: none of its targets ({', '.join(known) or 'none'}) has rows in "
                            f"{' + '.join(map(str, args.store))}; pass --target")
    scores = {t: holdout.score(predictor, t, holdout.split(table.series(t), table.space)[1]) for t in targets}
    unmarked = holdout.unmarked_reason(manifest)
    data = {"predictor": str(args.predictor), "method": manifest["method"], "space": manifest["space"],
            "holdout": {"scheme": holdout.SCHEME, "version": holdout.VERSION,
                        "excluded_in_training": unmarked is None, "note": unmarked}, "targets": scores}
    lines = [f"{args.predictor}: {manifest['method']} on the held-out slice of {manifest['space']} "
             f"({holdout.SCHEME})"]
    if unmarked is not None:
        lines.append(f"warning: {unmarked}: it may have trained on these rows, so the scores can be optimistic")
    for target, score in scores.items():
        if score["spearman"] is None:
            lines.append(f"{target:<24} {score['reason']}")
        else:
            low, high = score["spearman_ci95"]
            lines.append(f"{target:<24} Spearman {score['spearman']:.4f} [{low:.3f}, {high:.3f}]  Kendall "
                         f"{score['kendall']:.4f}  +-10% {score['within_10']:.3f}  n={score['n']}")
    _emit(args, data, lines)
    return 0


def _evaluate_dispatch(original: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        if getattr(args, "predictor", None) is not None:
            return cmd_evaluate_predictor(args)
        return original(args)

    return handler


# ------------------------------------------------------------------ parser
def register(verbs: argparse._SubParsersAction) -> None:
    """Add ``registry`` and ``nightly`` to ``trainer``'s verbs, and ``--predictor``/``--target`` to ``evaluate``."""
    reg = verbs.add_parser("registry", help="list, show or roll back registered predictor versions")
    actions = reg.add_subparsers(dest="registry_action", required=True, metavar="ACTION")
    for name, handler, help_text in (("list", cmd_list, "registered targets, or one target's versions"),
                                     ("show", cmd_show, "a target's current version and recent history"),
                                     ("rollback", cmd_rollback, "make an earlier version current")):
        sub = actions.add_parser(name, help=help_text)
        sub.add_argument("target", nargs="?" if name == "list" else None, metavar="TARGET",
                         help=f"a target name ({BASE} for a space's base predictor)")
        sub.add_argument("--registry", required=True, type=Path, metavar="DIR", help="predictor registry folder")
        sub.add_argument("--space", help="needed only where TARGET is registered in several spaces")
        sub.add_argument("--json", action="store_true", help="print JSON")
        if name == "rollback":
            sub.add_argument("--to", type=_version_number, metavar="vN",
                             help="default: the newest older version that was ever current")
        sub.set_defaults(handler=handler)

    nightly = verbs.add_parser("nightly", help="re-train on new measurements; promote only better predictors")
    nightly.add_argument("--store", required=True, type=Path, metavar="DIR", help="farm store folder to learn from")
    nightly.add_argument("--registry", required=True, type=Path, metavar="DIR",
                         help="predictor registry folder (registry.yaml inside, if any, sets roles)")
    nightly.add_argument("--json", action="store_true", help="print the run's summary as JSON")
    nightly.add_argument("--min-source-archs", type=_positive, metavar="N",
                         help="a target with at least N measured archs is a source (default 200, or registry.yaml)")
    nightly.add_argument("--method", choices=sorted(METHODS), help="method of new base predictors "
                         "(default: registry.yaml, else the current base's, else the project's best)")
    nightly.add_argument("--epochs", type=_positive, help="training epochs (neural methods)")
    nightly.add_argument("--hyper", type=_hyper_pair, action="append", metavar="KEY=VALUE", help="a method hyper-parameter")
    nightly.add_argument("--source-samples", type=_positive, metavar="N", help="archs per source (default: all)")
    nightly.add_argument("--seed", type=int, default=0, help="seed of sampling and training")
    nightly.add_argument("--include-unstable", action="store_true", help="also learn from rows flagged unstable")
    nightly.add_argument("--ray", action="store_true", help="transfer targets as Ray tasks ($RAY_ADDRESS or a local Ray)")
    nightly.set_defaults(handler=cmd_nightly)

    evaluate = verbs.choices["evaluate"]
    evaluate.add_argument("--predictor", type=Path, metavar="DIR",
                          help="score this saved predictor on the held-out slice instead of a few-shot evaluation")
    evaluate.add_argument("--target", metavar="T", help="with --predictor: one target (default: its targets)")
    evaluate.set_defaults(handler=_evaluate_dispatch(evaluate.get_default("handler")))


__all__ = ["FAILED_EXIT", "LOCK_HELD_EXIT", "cmd_evaluate_predictor", "cmd_list", "cmd_nightly", "cmd_rollback",
           "cmd_show", "register"]
