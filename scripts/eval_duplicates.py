#!/usr/bin/env python3
"""Score the groups that `lookalike duplicates` found against the known copies made by
scripts/make_duplicate_bench.py. Run by a person, not by CI.

    python3 scripts/make_duplicate_bench.py BENCH_DIR
    lookalike duplicates BENCH_DIR/images --json > groups.jsonl
    python3 scripts/eval_duplicates.py BENCH_DIR/truth.json groups.jsonl [--truth-key groups]

The score counts pairs of files. Every two files in one group that lookalike reports make a
predicted pair; every two files in one true group make a true pair. Which groups are true is
set by --truth-key:
    groups  (the default; for the "photo" strictness) truth.json's "groups": a photo and its 3
            edited copies;
    scenes  truth.json's "scenes": the shots of one burst (make_duplicate_bench.py --bursts N);
    both    (for the "scene" strictness, which should also group edited copies) the two
            together.
Precision is the share of predicted pairs that are true, recall the share of true pairs that
were predicted, F1 their harmonic mean. Files are matched by base name, so the folder the scan
ran on does not matter.

When truth.json says which edit made each copy ("edits"), it also prints the recall per edit:
the share of (original, copy) pairs found for copies made by that edit, whatever --truth-key.
With scenes or both and truth.json's "shots", it prints the recall of pairs of shots by how
much the two shots overlap. Wrong pairs are split into pairs of an original or copy of one
photo (only with scenes), of shots of one burst (only with groups), of pieces cut from the
same source photo (look-alike siblings; needs "sources") and unrelated pictures; where there
are siblings, the scores are printed again without them.

Needs: Python 3 only.
"""
import argparse
import json
import sys
from collections import Counter
from itertools import combinations


def base_name(path):
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def pairs_within(groups):
    """All unordered pairs of files that share a group."""
    return {frozenset(pair) for group in groups for pair in combinations(sorted(set(group)), 2)}


def read_predicted_groups(jsonl_path):
    """One list of base names per line of `lookalike duplicates --json` output."""
    groups = []
    with open(jsonl_path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    groups.append([base_name(f["file"]) for f in json.loads(line)["files"]])
                except (ValueError, KeyError, TypeError) as err:
                    sys.exit(f"{jsonl_path}:{number}: not a duplicates group ({err})")
    return groups


def ratio(part, whole):
    return part / whole if whole else 0.0


def print_scores(true_pairs, predicted_pairs):
    correct = true_pairs & predicted_pairs
    precision = ratio(len(correct), len(predicted_pairs))
    recall = ratio(len(correct), len(true_pairs))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    print(f"true pairs {len(true_pairs)}, predicted pairs {len(predicted_pairs)}, "
          f"correct pairs {len(correct)}")
    shown_precision = f"{precision:.3f}" if predicted_pairs else "n/a (nothing reported)"
    print(f"precision {shown_precision}  recall {recall:.3f}  F1 {f1:.3f}")


def print_recall_per_edit(truth, predicted_pairs):
    found, total = Counter(), Counter()
    for original, *copies in truth["groups"]:
        for copy in copies:
            edit = truth["edits"].get(copy, "unknown")
            total[edit] += 1
            found[edit] += frozenset((original, copy)) in predicted_pairs
    print("recall per edit (original, copy pairs found):")
    for edit in sorted(total):
        print(f"  {edit:<10} {ratio(found[edit], total[edit]):.3f}  ({found[edit]}/{total[edit]})")
    if any("+" in edit for edit in total):
        # Copies made by two edits: each edit's recall over every copy it took part in.
        part_found, part_total = Counter(), Counter()
        for edit in total:
            for part in edit.split("+"):
                part_found[part] += found[edit]
                part_total[part] += total[edit]
        print("recall per edit, over the copies each took part in:")
        for part in sorted(part_total):
            print(f"  {part:<16} {ratio(part_found[part], part_total[part]):.3f}  "
                  f"({part_found[part]}/{part_total[part]})")


def box_overlap(a, b):
    """Intersection over union of two [left, top, right, bottom] boxes."""
    cross = (max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
             * max(0.0, min(a[3], b[3]) - max(a[1], b[1])))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - cross
    return ratio(cross, union)


def print_recall_per_overlap(truth, predicted_pairs):
    """Recall of pairs of shots of one burst, by how much the two shots overlap."""
    shots = truth["shots"]
    buckets = [(0.0, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.01)]
    found, total = Counter(), Counter()
    for pair in pairs_within(truth["scenes"]):
        a, b = sorted(pair)
        if a in shots and b in shots:
            iou = box_overlap(shots[a]["box"], shots[b]["box"])
            bucket = next(bucket for bucket in buckets if bucket[0] <= iou < bucket[1])
            total[bucket] += 1
            found[bucket] += pair in predicted_pairs
    print("recall per overlap of the two shots (pairs of shots of one burst found):")
    for low, high in buckets:
        if total[(low, high)]:
            print(f"  {low:.1f}-{min(high, 1.0):.1f}    {ratio(found[(low, high)], total[(low, high)]):.3f}"
                  f"  ({found[(low, high)]}/{total[(low, high)]})")


def print_wrong_pairs(truth, true_pairs, predicted_pairs):
    photo = {name: source.split("#")[0] for name, source in truth.get("sources", {}).items()}
    copies, shots = pairs_within(truth["groups"]), pairs_within(truth.get("scenes", []))
    wrong = predicted_pairs - true_pairs
    of_copies, of_shots = len(wrong & copies), len(wrong & shots)
    rest = wrong - copies - shots
    siblings = sum(1 for a, b in map(tuple, rest)
                   if photo.get(a, a) == photo.get(b, b) and photo.get(a) not in (None, "generated"))
    parts = ([f"{of_copies} between an original and its copies"] if of_copies else []) + (
        [f"{of_shots} between shots of one burst"] if of_shots else [])
    if photo:
        parts += [f"{siblings} between pieces of one source photo",
                  f"{len(rest) - siblings} between unrelated pictures"]
    print(f"wrong pairs {len(wrong)}" + (": " + ", ".join(parts) if parts else ""))
    return {pair for pair in rest if len({photo.get(name, name) for name in pair}) == 1
            and photo.get(next(iter(pair))) not in (None, "generated")}


def print_scores_among_unrelated(true_pairs, predicted_pairs, sibling_pairs):
    """The scores again with the wrong pairs between pieces of one source photo left out:
    such pieces share light, colour and subject, so they are not the unrelated pictures the
    benchmark is meant to hide the copies among."""
    print("leaving out pairs of pieces of one source photo:")
    print_scores(true_pairs, predicted_pairs - sibling_pairs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("truth", help="truth.json written by make_duplicate_bench.py")
    parser.add_argument("groups", help="output of `lookalike duplicates --json`")
    parser.add_argument("--truth-key", choices=["groups", "scenes", "both"], default="groups",
                        help="which groups of truth.json are the true ones (default groups)")
    args = parser.parse_args()
    with open(args.truth, encoding="utf-8") as f:
        truth = json.load(f)
    if args.truth_key != "groups" and "scenes" not in truth:
        sys.exit(f"{args.truth} has no \"scenes\": make the folder with make_duplicate_bench.py --bursts N")
    true_groups = {"groups": truth["groups"], "scenes": truth.get("scenes", []),
                   "both": truth["groups"] + truth.get("scenes", [])}[args.truth_key]
    predicted = read_predicted_groups(args.groups)
    true_pairs = pairs_within(true_groups)
    predicted_pairs = pairs_within(predicted)
    known = set(truth.get("sources", {})) or {name for group in true_groups for name in group}
    unknown = {name for group in predicted for name in group} - known
    if unknown:
        print(f"warning: {len(unknown)} reported files are not in {args.truth}, e.g. {sorted(unknown)[0]}")
    print(f"true groups: {args.truth_key}")
    print_scores(true_pairs, predicted_pairs)
    if truth.get("edits"):
        print_recall_per_edit(truth, predicted_pairs)
    if args.truth_key != "groups" and truth.get("shots"):
        print_recall_per_overlap(truth, predicted_pairs)
    siblings = print_wrong_pairs(truth, true_pairs, predicted_pairs)
    if siblings:
        print_scores_among_unrelated(true_pairs, predicted_pairs, siblings)


if __name__ == "__main__":
    main()
