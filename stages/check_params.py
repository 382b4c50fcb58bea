"""Stage check_params: every key of params.yaml checked, before any other stage runs.

DVC removes a stage's outputs before it runs the stage's command, so a bad value found by a later stage
(`dvc exp run -S scale=nope`) would cost the outputs of the stage that found it. This stage depends on all of
params.yaml and every stage runs after it (prepare depends on its output), so a typo or a bad value stops
the pipeline here, in one line, with nothing else removed. Its output never changes, so it reruns nothing."""
from textdiff.cli import run_stage
from textdiff.errors import ParamError
from textdiff.io import write_text
from textdiff.study import load_params

OUTPUT = "data/params_checked.txt"


def main():
    try:
        load_params()
    except ParamError as error:  # `dvc exp run -S` leaves the value it set in params.yaml: say how to undo it
        raise ParamError(f"{error} (nothing was run or removed; a value set by `dvc exp run -S` stays in "
                         "params.yaml until `git checkout params.yaml`)") from None
    write_text(OUTPUT, "params.yaml: every key checked\n")


if __name__ == "__main__":
    run_stage(main)
