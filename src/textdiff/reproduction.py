"""Did a rerun of the study reproduce the committed one?

After `make study` retrains the models (on another CPU, say, or a GPU), each model gets one verdict for its
weights and one per headline figure (reports/metrics.json, the figures `dvc exp show` lists):
- weights: `bitwise` where the rerun wrote the committed md5, else `other weights`;
- a figure: `same` where it equals the committed one; `within` the seed spread where the change is no larger
  than the figure's spread over the committed study's training seeds (max - min, analysis.against_spread, the
  yardstick every verdict of the report uses), so that another seed could have given it; `beyond` otherwise.
The old and new figures come from `dvc metrics diff`; the spread from the committed reports/seed_spread.json.
"""
from __future__ import annotations

from .analysis import PERPLEXITY_KEY, against_spread

#: reports/metrics.json's keys -> the figure of analysis.seed_figures whose spread judges them.
SPREAD_FIGURE = {**dict.fromkeys(PERPLEXITY_KEY.values(), "perplexity"), "acc": "accuracy",
                 "judge_ppl": "judge_perplexity", "dist_real": "distance"}
WEIGHTS = "models/{}/model.safetensors"


def output_md5(lock: dict, path: str) -> str | None:
    """The md5 dvc.lock records for an output (None where no stage writes it)."""
    for stage in lock.get("stages", {}).values():
        for out in stage.get("outs", []):
            if out["path"] == path:
                return out.get("md5")
    return None


def figure_verdict(committed: float, rerun: float, spread: dict | None) -> dict:
    judged = against_spread(rerun - committed, [spread] if spread else [])
    verdict = ("same" if rerun == committed else
               {None: "no seed spread", True: "within", False: "beyond"}[judged["within"]])
    return {"committed": committed, "rerun": rerun, "difference": judged["difference"], "spread": judged["spread"],
            "verdict": verdict}


def reproduction(committed_lock: dict, rerun_lock: dict, diff: dict[str, dict], spread: dict[str, dict]) -> dict:
    """Per model (and the judge, weights only): {"weights": "bitwise" | "other weights", "figures": {key:
    figure_verdict}}. diff: `dvc metrics diff --all --json`'s entries for reports/metrics.json ("<model>.<key>" ->
    {"old", "new"}); spread: the committed reports/seed_spread.json (model -> figure -> {min, max, seeds})."""
    figures: dict[str, dict] = {}
    for name, values in diff.items():
        model, key = name.split(".", 1)
        if values.get("old") is None or values.get("new") is None:
            continue  # a model or figure only one of the two studies has
        figures.setdefault(model, {})[key] = figure_verdict(
            values["old"], values["new"], spread.get(model, {}).get(SPREAD_FIGURE.get(key, key)))
    # dvc metrics diff lists figures in no fixed order: models as the report lists them, figures as metrics.json
    models = [*(m for m in spread if m in figures), *sorted(set(figures) - set(spread))]
    result = {}
    for model in [*models, "judge"]:
        path = WEIGHTS.format(model)
        committed_md5 = output_md5(committed_lock, path)
        bitwise = committed_md5 is not None and committed_md5 == output_md5(rerun_lock, path)
        own = figures.get(model, {})
        result[model] = {"weights": "bitwise" if bitwise else "other weights",
                         "figures": {key: own[key] for key in [*SPREAD_FIGURE, *sorted(set(own) - set(SPREAD_FIGURE))]
                                     if key in own}}
    return result


def moved(result: dict) -> list[tuple[str, str, str]]:
    """(model, figure, verdict) of every figure that is not the committed one."""
    return [(model, key, f["verdict"]) for model, r in result.items() for key, f in r["figures"].items()
            if f["verdict"] != "same"]


def render(result: dict, against: str) -> str:
    lines = [f"Reproduction of the study committed at {against}: weights by md5, each headline figure against its "
             "spread over the training seeds (max - min).", "",
             "| model | weights | figure | committed | this run | change | seed spread | verdict |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for model, r in result.items():
        if not r["figures"]:
            lines.append(f"| {model} | {r['weights']} | | | | | | |")
        for key, f in r["figures"].items():
            spread = "" if f["spread"] is None else f"{f['spread']:.4g}"
            lines.append(f"| {model} | {r['weights']} | {key} | {f['committed']:.5g} | {f['rerun']:.5g} | "
                         f"{f['difference']:+.4g} | {spread} | {f['verdict']} |")
    changed = moved(result)
    beyond = [f"{model}.{key}" for model, key, verdict in changed if verdict == "beyond"]
    lines += ["", ("Every figure is the committed one." if not changed else
                   f"{len(changed)} figure(s) moved; " + (f"beyond the seed spread: {', '.join(beyond)}."
                                                          if beyond else "each within the seed spread."))]
    return "\n".join(lines) + "\n"
