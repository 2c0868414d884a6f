"""``python -m fuzz --seconds N [--seed S] [--target T] [--type NAME]``, ``--replay T --case N``."""

from __future__ import annotations

import argparse
import random
import sys

from .catalogue import CATALOGUE
from .runner import replay_command, report, run, run_case
from .targets import TARGETS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz",
                                     description="Fuzz jetwire's decoders, streams and 9P session.")
    parser.add_argument("--seconds", type=float, default=60, help="how long to run (default 60)")
    parser.add_argument("--cases", type=int, help="stop after this many cases per target instead")
    parser.add_argument("--seed", type=int, help="the run's seed (default: a random one, printed)")
    parser.add_argument("--target", action="append", choices=sorted(TARGETS), help="a target (repeatable; default all)")
    parser.add_argument("--type", action="append", dest="types", metavar="NAME",
                        help="a type of the catalogue (repeatable; default all): see --list")
    parser.add_argument("--skip-type", action="append", dest="skipped", metavar="NAME",
                        help="leave this type of the catalogue out (repeatable)")
    parser.add_argument("--replay", choices=sorted(TARGETS), metavar="TARGET", help="rerun one case of this target")
    parser.add_argument("--case", type=int, help="the case number to replay")
    parser.add_argument("--list", action="store_true", help="list the targets and the catalogue's types")
    parser.add_argument("--verbose", action="store_true", help="with --replay: the traceback")
    args = parser.parse_args(argv)
    if args.list:
        for name, target in sorted(TARGETS.items()):
            print(f"target {name}: {(target.__doc__ or '').strip().splitlines()[0]}")
        print("types:", ", ".join(CATALOGUE))
        return 0
    types = None
    named = (args.types or []) + (args.skipped or [])
    unknown = [t for t in named if t not in CATALOGUE]
    if unknown:
        parser.error(f"not in the catalogue: {', '.join(unknown)} (see --list)")
    if args.types or args.skipped:
        types = {t: CATALOGUE[t] for t in args.types or CATALOGUE if t not in (args.skipped or [])}
    seed = args.seed if args.seed is not None else random.SystemRandom().getrandbits(32)
    if args.replay:
        if args.case is None:
            parser.error("--replay needs --case")
        result = run_case(args.replay, args.case, seed, types)
        if result.finding is None:
            print(f"case {args.case} of {args.replay} (seed {seed}) holds: {result.summary}")
            return 0
        print(f"{result.finding}\n")
        if args.verbose:
            print(result.trace)
        print(f"replay: {replay_command(result, args.types, args.skipped)}")
        return 1
    print(f"seed {seed}", flush=True)
    groups = run(args.target or sorted(TARGETS), seed, seconds=None if args.cases else args.seconds,
                 cases=args.cases, types=types)
    report(groups, args.types, args.skipped)
    return 1 if groups else 0


if __name__ == "__main__":
    sys.exit(main())
