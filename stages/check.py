"""Look for duplicates, leakage and label conflicts before any training."""

from imgclf import paths
from imgclf.atomic import write_csv, write_json, write_text
from imgclf.cache import ImageCache
from imgclf.check import find_problems, group_rows, report
from imgclf.config import load_params
from imgclf.errors import UserError, exit_on_user_error
from imgclf.samples import load_split_data


@exit_on_user_error
def main() -> None:
    params = load_params()
    data = load_split_data(paths.MANIFEST, paths.SPLIT)
    findings = find_problems(data, ImageCache(paths.CACHE), params.check)
    write_text(paths.CHECK_DIR / "report.md", report(findings, params.check.fail_on_leakage))
    write_csv(
        paths.CHECK_DIR / "duplicates.csv",
        ["group", "kind", "leak", "label_conflict", "path", "split", "label"],
        group_rows(findings),
    )
    write_json(paths.METRICS / "check.json", findings.metrics())
    leaking = findings.leaking
    print(
        f"check: {len(findings.exact)} exact and {len(findings.near)} near-duplicate groups, "
        f"{len(leaking)} leaking across splits; details in {paths.CHECK_DIR / 'report.md'}"
    )
    if leaking and params.check.fail_on_leakage:
        listed = "; ".join(
            " = ".join(f"{sample.path} ({split})" for sample, split in group.members)
            for group in leaking[:5]
        )
        more = f" and {len(leaking) - 5} more groups" if len(leaking) > 5 else ""
        raise UserError(
            f"leakage between splits (check.fail_on_leakage is true): {listed}{more}. "
            "Remove the copies from one side, or set check.fail_on_leakage: false"
        )


if __name__ == "__main__":
    main()
