"""Train the CNN from scratch (scratch.arch)."""

from imgclf.config import load_params
from imgclf.errors import exit_on_user_error
from imgclf.train import run_training_stage


@exit_on_user_error
def main() -> None:
    run_training_stage("scratch", load_params())


if __name__ == "__main__":
    main()
