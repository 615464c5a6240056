"""The operations sub-commands of ``phi4``: ``lineage`` and ``estimate`` (registered by ``cli.main``)."""

from __future__ import annotations

import argparse
import json
import sys

from ..config.settings import Paths


def _lineage(args: argparse.Namespace) -> int:
    from ..ops import lineage

    paths = Paths.from_env()
    if not args.row_id and not args.create_view:
        print("phi4 lineage: give a ROW_ID, or --create-view", file=sys.stderr)
        return 2
    if args.create_view:
        from ..defs import table_columns

        links = lineage.create_lineage_view(paths.warehouse, table_columns())
        print(f"{lineage.SCHEMA}.{lineage.VIEW}: {links} links over the tables of {paths.warehouse}",
              file=sys.stderr if args.json else sys.stdout)
    if not args.row_id:
        return 0
    try:
        found = lineage.trace(args.row_id, paths.warehouse, paths.teacher_cache, paths.pts_memo, table=args.table)
    except lineage.UnknownId as e:
        print(f"phi4 lineage: {e}", file=sys.stderr)
        return 1
    except TimeoutError as e:  # a writer held the file the whole time
        print(f"phi4 lineage: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(found.to_json(), indent=2, ensure_ascii=False, default=str))
    else:
        print(lineage.render_text(found))
    return 0


def add_lineage_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "lineage", help="trace a row (DPO pair, SFT row, ...) back to its seed, samples and teacher calls",
        description="Print the lineage of one row of the warehouse: the rows it came from, their teacher calls "
                    "(prompt and response) and PTS estimates, down to the seed question, with asset names and "
                    "partitions. Reads the warehouse, the teacher cache and the PTS memo read-only.",
        epilog="--json prints one object: {id, roots, nodes: [{key, table, asset, store, partition, id, summary, "
               "missing, row}], edges: [{child, parent, via}], seeds, teacher_calls, pts_estimates} "
               "(see phi4_assets/lineage/edges.py). Exit status 1: no row has that id.")
    parser.add_argument("row_id", nargs="?", help="the id of the row (any table with an id column)")
    parser.add_argument("--json", action="store_true", help="print a JSON node list + edge list")
    parser.add_argument("--table", default=None, help="look the id up in this table only")
    parser.add_argument("--create-view", action="store_true",
                        help="(re)create the view phi4.lineage_edges over the tables that exist now")
    parser.set_defaults(run=_lineage)
    return parser


def _estimate(args: argparse.Namespace) -> int:
    from ..ops import estimate

    select = [s.strip() for s in args.select.split(",") if s.strip()]
    partitions = [p.strip() for p in args.partitions.split(",") if p.strip()] if args.partitions else None
    try:
        result = estimate.estimate(select, partitions)
    except TimeoutError as e:  # a writer held the warehouse or the cache the whole time
        print(f"phi4 estimate: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_json(), indent=2, default=str))
    else:
        print(estimate.render_text(result))
    return 0


def add_estimate_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "estimate", help="teacher calls and tokens a materialization would make, before running it",
        description="For each teacher-calling asset selected (answer_checks, reference_answers, bogus_questions, "
                    "refusals, sft_dataset, judge_candidates, judge_ratings) and each seed shard: the requests it "
                    "would send, how many the teacher cache already answers, and the tokens of the rest. Says "
                    "which numbers are exact, upper bounds, measured or unknown. Uses the active profile "
                    "(PHI4_PROFILE, PHI4_CONFIG).")
    parser.add_argument("--select", required=True, help="asset names and/or group:NAME, comma-separated")
    parser.add_argument("--partitions", default=None, help="seed shards (e.g. 000,001) for the sharded assets "
                                                           "(default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.set_defaults(run=_estimate)
    return parser
