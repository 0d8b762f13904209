"""Decode every image under data.root once into the cache; report the files left out."""

from imgclf import paths
from imgclf.atomic import write_json
from imgclf.config import load_params
from imgclf.errors import exit_on_user_error
from imgclf.prepare import Outputs, prepare


@exit_on_user_error
def main() -> None:
    params = load_params()
    outputs = Outputs(paths.CACHE, paths.THUMBNAILS, paths.MANIFEST, paths.REJECTED)
    counts = prepare(params.data, params.prepare, outputs)
    write_json(paths.METRICS / "prepare.json", counts)


if __name__ == "__main__":
    main()
