"""check: class balance, duplicates within and across splits, one picture under two labels.

Exact duplicates share a SHA-256 of the file; near duplicates are found as imgclf.duplicates
says.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from imgclf.config import CheckParams
from imgclf.duplicates import NearDuplicates, joined
from imgclf.samples import SPLITS, Sample, SplitData
from imgclf.wording import counted

USED_SPLITS = (*SPLITS, "predict")


@dataclass(frozen=True)
class Group:
    kind: str  # "exact" or "near"
    members: tuple[tuple[Sample, str], ...]  # (sample, split)

    @property
    def splits(self) -> set[str]:
        return {split for _, split in self.members}

    @property
    def labels(self) -> set[str]:
        return {sample.label for sample, _ in self.members if sample.label}

    @property
    def leaks(self) -> bool:
        """The same picture in two of train, val and test (val and test too: a checkpoint
        chosen on val would then be partly chosen on test)."""
        labelled = self.splits - {"predict"}
        return len(labelled) > 1

    @property
    def conflicts(self) -> bool:
        return len(self.labels) > 1


@dataclass
class Findings:
    class_counts: dict[str, Counter] = field(default_factory=dict)
    exact: list[Group] = field(default_factory=list)
    near: list[Group] = field(default_factory=list)

    @property
    def leaking(self) -> list[Group]:
        return [group for group in self.exact + self.near if group.leaks]

    def metrics(self) -> dict:
        totals = {split: sum(counts.values()) for split, counts in self.class_counts.items()}
        train = self.class_counts.get("train", Counter())
        return {
            "images": totals,
            "imbalance": round(max(train.values()) / min(train.values()), 3) if train else None,
            "exact_duplicate_groups": len(self.exact),
            "exact_within_split": sum(len(g.splits) == 1 for g in self.exact),
            "exact_across_splits": sum(g.leaks for g in self.exact),
            "label_conflicts": sum(g.conflicts for g in self.exact),
            "near_duplicate_groups": len(self.near),
            "near_across_splits": sum(g.leaks for g in self.near),
            "near_label_conflicts": sum(g.conflicts for g in self.near),
            "leakage_groups": len(self.leaking),
        }


def find_problems(data: SplitData, thumbnails: np.ndarray, options: CheckParams) -> Findings:
    """`thumbnails`: prepare's (n, 16, 16) uint8 array, a row per sample index."""
    used = [(s, data.split_of[s.index]) for s in data.samples if s.index in data.split_of]
    findings = Findings()
    for split in USED_SPLITS:
        counts = Counter(s.label for s, sp in used if sp == split and s.label)
        if counts:
            findings.class_counts[split] = Counter(dict(sorted(counts.items())))
    by_content: dict[str, list[tuple[Sample, str]]] = defaultdict(list)
    for member in used:
        by_content[member[0].sha256].append(member)
    findings.exact = [
        Group("exact", tuple(members)) for members in by_content.values() if len(members) > 1
    ]
    findings.near = _near_duplicates(used, thumbnails, options)
    return findings


def _near_duplicates(
    used: list[tuple[Sample, str]], thumbnails: np.ndarray, options: CheckParams
) -> list[Group]:
    """Near copies in two of train, val and test, or under two labels: each set joined through
    such pairs is a group. Copies with the same file are exact, not paired here."""
    labelled = [(s, split) for s, split in used if split != "predict"]
    split_of = {s.index: split for s, split in labelled}
    pairs = [
        (a.index, b.index)
        for a, b in NearDuplicates([s for s, _ in labelled], thumbnails, options).pairs()
        if split_of[a.index] != split_of[b.index] or a.label != b.label
    ]
    group_of = joined(list(split_of), pairs)
    members: dict[int, list[tuple[Sample, str]]] = defaultdict(list)
    for member in labelled:
        members[group_of[member[0].index]].append(member)
    return [Group("near", tuple(group)) for group in members.values() if len(group) > 1]


def report(findings: Findings, leakage_stops: bool) -> str:
    """The check report as Markdown."""
    lines = ["# Data check", "", "## Images per class and split", ""]
    splits = list(findings.class_counts)
    classes = sorted({c for counts in findings.class_counts.values() for c in counts})
    lines += ["| class | " + " | ".join(splits) + " |", "|---" * (len(splits) + 1) + "|"]
    for name in classes:
        cells = [str(findings.class_counts[split].get(name, 0)) for split in splits]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    metrics = findings.metrics()
    lines += [
        "",
        "## Duplicates",
        "",
        f"- exact duplicate groups: {metrics['exact_duplicate_groups']}"
        f" ({metrics['exact_across_splits']} across splits,"
        f" {metrics['label_conflicts']} under two labels)",
        f"- near-duplicate groups: {metrics['near_duplicate_groups']}"
        f" ({metrics['near_across_splits']} across splits,"
        f" {metrics['near_label_conflicts']} under two labels)",
        "- leakage (a picture in two of train, val and test): "
        + counted(metrics["leakage_groups"], "group")
        + (" - the pipeline stops (check.fail_on_leakage)" if leakage_stops else ""),
        "",
    ]
    for number, group in enumerate(findings.exact + findings.near, start=1):
        tags = [group.kind]
        if group.leaks:
            tags.append("LEAK")
        if group.conflicts:
            tags.append("LABEL CONFLICT")
        lines.append(f"### Group {number} ({', '.join(tags)})")
        lines += [f"- `{s.path}` ({split}, label {s.label or '-'})" for s, split in group.members]
        lines.append("")
    return "\n".join(lines)


def group_rows(findings: Findings) -> list[tuple]:
    """One CSV row per file in a group: group, kind, leak, conflict, path, split, label."""
    rows = []
    for number, group in enumerate(findings.exact + findings.near, start=1):
        for sample, split in group.members:
            rows.append(
                (number, group.kind, group.leaks, group.conflicts, sample.path, split, sample.label)
            )
    return rows
