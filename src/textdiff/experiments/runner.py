"""Running one run of a group: `dvc exp run --temp` in a workspace seeded with the run it starts from, its earlier
experiment set aside under <name>-previous until the rerun succeeds."""
from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import yaml

from ..errors import ParamError
from .groups import Group, exp_run_command, experiment_name, source_name


def git_out(*args: str, cwd=".") -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def newest_experiment_ref(name: str, cwd=".") -> tuple[str, str] | None:
    """(commit, ref) of the newest experiment of that name, from any baseline (None if never run)."""
    refs = git_out("for-each-ref", "--sort=-committerdate", "--format=%(objectname) %(refname)", "refs/exps/",
                cwd=cwd).split("\n")
    for line in refs:
        if line.endswith("/" + name):
            commit, ref = line.split()
            return commit, ref
    return None


def newest_experiment(name: str, cwd=".") -> str | None:
    """The newest experiment commit of that name, from any baseline (None if never run)."""
    found = newest_experiment_ref(name, cwd)
    return found[0] if found else None


# A run that other runs start from travels with the repository, since DVC's experiments stay in the clone that
# ran them: its experiment commit as a git bundle here (only what main lacks: its dvc.lock and the outputs git
# holds), its cached outputs in the study's DVC remote (artifacts/, which git tracks, bundles included).
KEPT_SOURCES = Path("artifacts") / "experiments"


def kept_source(name: str, cwd=".") -> Path:
    return Path(cwd) / KEPT_SOURCES / f"{name}.bundle"


def keep_source(name: str, stages, cwd=".") -> bool:
    """Keeps the newest experiment of `name` (a run of a group whose `stages` it ran) for other clones: its cached
    outputs pushed to the default DVC remote, its commit bundled. False where there is nothing new to keep."""
    found = newest_experiment_ref(name, cwd)
    path = kept_source(name, cwd)
    if found is None or (path.exists() and found[0] in git_out("bundle", "list-heads", str(path), cwd=cwd)):
        return False
    commit, ref = found
    with seeded_workspace(commit, stages, cwd) as taken:  # the lock names its outputs, so `dvc push` finds them
        pushed = run_dvc("push", *taken, cwd=cwd) if taken else None
    if pushed is not None and pushed.returncode:
        why = (pushed.stderr.strip() or "no message").splitlines()[-1]
        raise ParamError(f"dvc push of {name}'s outputs failed: {why}")
    path.parent.mkdir(parents=True, exist_ok=True)
    git_out("bundle", "create", str(path), ref, f"^{commit}^", cwd=cwd)
    return True


def bring_kept_source(name: str, cwd=".") -> bool:
    """Fetches the kept experiment of `name` (keep_source) into this clone's experiments; False where none is kept
    or its baseline commit is not in this clone's history."""
    path = kept_source(name, cwd)
    return path.exists() and subprocess.run(["git", "fetch", "--quiet", str(path), "+refs/exps/*:refs/exps/*"],
                                            cwd=cwd, capture_output=True).returncode == 0


def source_experiment(group: Group, run: str, cwd=".", required: bool = True) -> str | None:
    """The newest experiment commit of the run whose trained models `run` reuses (None: it starts from the
    workspace), brought from the repository's kept sources where this clone never ran it. A required source with
    no experiment here is a one-line error, raised before anything is queued."""
    name = source_name(group, run)
    commit = newest_experiment(name, cwd) if name else None
    if name and commit is None and bring_kept_source(name, cwd):
        commit = newest_experiment(name, cwd)
    if name and commit is None and required:
        raise ParamError(f"{group.name} / {run} starts from {group.start_from[run]}, which has no experiment here: "
                         "run it first")
    return commit


def git_file(commit: str, path: str, cwd=".") -> bytes | None:
    """A file as the commit holds it; None where git does not hold it (an output in DVC's cache)."""
    shown = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=cwd, capture_output=True)
    return shown.stdout if shown.returncode == 0 else None


def upstream_stages(lock: dict, stages) -> set[str]:
    """The stages of a dvc.lock that produced `stages`' inputs, transitively, and `stages` themselves."""
    produced_by = {out["path"]: name for name, stage in lock["stages"].items() for out in stage.get("outs", [])}
    found, todo = set(), list(stages)
    while todo:
        name = todo.pop()
        if name in found or name not in lock["stages"]:
            continue
        found.add(name)
        for dep in lock["stages"][name].get("deps", []):
            todo += [stage for out, stage in produced_by.items()
                     if dep["path"] == out or dep["path"].startswith(out.rstrip("/") + "/")]
    return found


@contextmanager
def seeded_workspace(source: str | None, stages, cwd="."):
    """The workspace as if the source experiment's runs of the stages that `stages` rest on had been made here:
    the dvc.lock entries of those it ran differently, and their outputs that git holds, taken from its commit and
    put back on leaving. A run queued or started inside finds those stages up to date, and DVC checks their
    outputs out of its cache instead of rerunning them. DVC's run cache would do this by itself, but it skips
    every stage with a `cache: false` output (treeverse/dvc#8738), as each training stage here has. A stage whose
    code has changed since still reruns: DVC compares the entry's dependencies with the files. Yields each stage
    taken, by name, with the code files it ran on that differ from this workspace's (which will make it rerun)."""
    if source is None:
        yield {}
        return
    root = Path(cwd)
    saved = {root / "dvc.lock": (root / "dvc.lock").read_bytes()}  # path -> its bytes before (None: absent)
    here = yaml.safe_load(saved[root / "dvc.lock"])
    there = yaml.safe_load(git_file(source, "dvc.lock", cwd))
    taken = sorted(name for name in upstream_stages(there, stages)
                   if there["stages"][name] != here["stages"].get(name))
    current = {dep["path"]: dep.get("md5") for stage in here["stages"].values() for dep in stage.get("deps", [])}
    changed = {name: [dep["path"] for dep in there["stages"][name].get("deps", [])
                      if dep["path"].startswith(("src/", "stages/"))
                      and current.get(dep["path"], dep.get("md5")) != dep.get("md5")]
               for name in taken}
    try:
        for name in taken:
            for out in there["stages"][name].get("outs", []):
                content = git_file(source, out["path"], cwd)
                if content is not None:
                    path = root / out["path"]
                    saved.setdefault(path, path.read_bytes() if path.exists() else None)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(content)
            here["stages"][name] = there["stages"][name]
        (root / "dvc.lock").write_text(yaml.safe_dump(here, sort_keys=False))
        if taken:  # a source kept by another clone: its cached outputs are in the remote, not yet in this cache
            run_dvc("fetch", *taken, cwd=cwd)  # where it fails, DVC reruns the stages instead
        yield changed
    finally:
        for path, content in saved.items():
            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(content)


PREVIOUS = "-previous"  # a run's earlier experiment is kept under <name>-previous until its rerun succeeds


STANDALONE = Path(".dvc") / "tmp" / "exps" / "standalone"  # where DVC copies the repository for a --temp run


def experiment_env(threads: int | None = None) -> dict:
    """The environment of a run's stages. The experiment runs in a temporary copy of the repository; a relative
    PYTHONPATH makes its stages import that copy's library rather than an editable install of this workspace,
    which may change meanwhile. threads: torch's threads per run (OMP_NUM_THREADS), so that parallel runs
    share the cores instead of oversubscribing them."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, ("src", os.environ.get("PYTHONPATH"))))}
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def run_dvc(*args: str, cwd=".") -> subprocess.CompletedProcess:
    return subprocess.run(["dvc", *args], cwd=cwd, capture_output=True, text=True)


def set_aside(names: list[str], cwd=".") -> list[str]:
    """Renames each name's earlier experiment to <name>-previous (an experiment name is unique per baseline):
    it is removed only once its rerun succeeds (settle). Returns the names set aside."""
    aside = []
    for name in names:
        if newest_experiment(name + PREVIOUS, cwd):  # left by a rerun interrupted in the queue, which went on:
            if newest_experiment(name, cwd):  # it finished, so the older one goes
                run_dvc("exp", "remove", name + PREVIOUS, cwd=cwd)
            else:  # it never made its experiment: the older one is still the run's
                run_dvc("exp", "rename", name + PREVIOUS, name, cwd=cwd)
        if newest_experiment(name, cwd) and run_dvc("exp", "rename", name, name + PREVIOUS, cwd=cwd).returncode == 0:
            aside.append(name)
    return aside


def settle(aside: list[str], succeeded: set[str], cwd=".") -> None:
    """After the reruns: the earlier experiment of each name that succeeded is removed; the others get their
    earlier experiment back under its own name (so what eval/experiments/ names is still held by a ref)."""
    for name in aside:
        if name in succeeded:
            run_dvc("exp", "remove", name + PREVIOUS, cwd=cwd)
        else:
            if newest_experiment(name, cwd):
                run_dvc("exp", "remove", name, cwd=cwd)
            run_dvc("exp", "rename", name + PREVIOUS, name, cwd=cwd)


def standalone_copies(cwd=".") -> set[Path]:
    folder = Path(cwd) / STANDALONE
    return set(folder.iterdir()) if folder.is_dir() else set()


def run_experiment(group: Group, run: str, cwd=".") -> bool:
    """Runs one run of the group (`dvc exp run --temp`); False (and its failure printed) if it failed. Its earlier
    experiment is removed only if it succeeds; Ctrl-C leaves the earlier one and no temporary copy behind."""
    name = experiment_name(group, run)
    source = source_experiment(group, run, cwd)
    aside, before = set_aside([name], cwd), standalone_copies(cwd)
    succeeded = False
    try:
        with seeded_workspace(source, group.stages, cwd):
            succeeded = subprocess.run(exp_run_command(group, run), cwd=cwd, env=experiment_env()).returncode == 0
    finally:
        for leftover in standalone_copies(cwd) - before:  # an interrupted --temp run leaves its copy
            shutil.rmtree(leftover, ignore_errors=True)
        settle(aside, {name} if succeeded else set(), cwd)
    return succeeded
