"""Check the parameters and the data folder before any stage runs (and before DVC deletes
any output); write what was found."""

from imgclf import paths
from imgclf.atomic import write_json
from imgclf.config import load_params
from imgclf.errors import exit_on_user_error
from imgclf.validate import validate


@exit_on_user_error
def main() -> None:
    found = validate(load_params())
    write_json(paths.VALIDATED, found)
    counts = ", ".join(f"{n} {source}" for source, n in found["image_files"].items())
    print(
        f"validate: params.yaml is valid; {found['data_root']} holds {counts} image files in "
        f"{len(found['classes'])} classes"
        + (
            f"; the submission is scored against {found['labels_file']}"
            if found["labels_file"]
            else ""
        )
    )


if __name__ == "__main__":
    main()
