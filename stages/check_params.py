"""Stage check_params: every key of params.yaml checked, before any other stage runs.

DVC removes a stage's outputs before it runs the stage's command, so a bad value found by a later stage
(`dvc exp run -S scale=nope`) would cost the outputs of the stage that found it. This stage depends on all of
params.yaml and every stage runs after it (prepare depends on its output), so a typo or a bad value stops
the pipeline here, in one line, with nothing else removed. Its output never changes, so it reruns nothing."""
from textdiff.cli import run_stage
from textdiff.io import write_text
from textdiff.study import load_params

OUTPUT = "data/params_checked.txt"


def main():
    load_params()
    write_text(OUTPUT, "params.yaml: every key checked\n")


if __name__ == "__main__":
    run_stage(main)
