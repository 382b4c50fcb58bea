"""The study's verdicts at a glance: one row per question it answers, each added by the section that decides it,
from the data of the same rule that section renders (never typed), and rendered first in report.md and in README.

A section calls add(verdicts, question, answer, figures); the table lists the rows in QUESTIONS' order, each
linked to its section of report.md."""
from __future__ import annotations

import re

#: question id -> (the question, the heading of the report section that answers it), in the table's order.
QUESTIONS = {
    "default_gap": ("How far behind AR is masked diffusion at the default budget?", "Results"),
    "fair_start": ("Do the diffusion models get past the unigram plateau at the default budget?",
                   "Does diffusion get a fair start?"),
    "recipe": ("Is an ingredient of the diffusion literature's recipe adopted? (the rule: it passes for every "
               "diffusion model, and a shared setting makes no model worse)", "Does diffusion get a fair start?"),
    "writes_best": ("Which model writes best at equal sampling time?", "Sample quality"),
    "length": ("Does the gap narrow with longer training? (the seed's open question)",
               "Does the gap narrow with longer training?"),
    "samplers_default": ("Does better sampling close the gap, at the default length?",
                         "Does better sampling close the gap?"),
    "samplers_longest": ("Does better sampling close the gap, at 16x the steps?",
                         "Does better sampling close the gap?"),
    "reuse": ("Does diffusion win when data repeats?", "Does diffusion win when data repeats?"),
    "learning_rate": ("Does the ranking hold at each model's best learning rate?", "Learning-rate sensitivity"),
    "noise": ("Would different noise injection help SDD? (the seed's open question)",
              "Would different noise injection help?"),
    "seed_representations": ("Seed: \"SDD learns useful representations\"", "The seed's conclusions, re-tested"),
    "seed_generation_problem": ("Seed: \"SDD has a generation problem\"", "The seed's conclusions, re-tested"),
    "seed_sampling_bottleneck": ("Seed: \"the bottleneck is sampling, not learning\" (and its open question: can "
                                 "better sampling fix SDD?)", "The seed's conclusions, re-tested"),
    "seed_curriculum": ("Seed: \"fixed k=8 works as well as the curriculum\"", "The seed's conclusions, re-tested"),
    "seed_fixed_k": ("Seed: \"different k values: fixed k=8 works\"", "The seed's conclusions, re-tested"),
}


def add(verdicts: list | None, question: str, answer: str, figures: str) -> None:
    """Records a section's verdict (nothing where the caller keeps no table)."""
    if verdicts is not None:
        verdicts.append({"question": question, "answer": answer, "figures": figures})


def anchor(heading: str) -> str:
    """The link target a Markdown renderer (GitHub's) gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def verdict_table(verdicts: list[dict], report_path: str = "") -> str:
    """A row per question, in QUESTIONS' order; report_path prefixes each link (README links into reports/report.md).
    A question no section answered (its runs are not collected for this study) says so and links the page that
    lists each group, its command and why an earlier collection is not this study's."""
    answered = {row["question"]: row for row in verdicts}
    groups_page = report_path.rpartition("/")[0] + "/experiments.md" if "/" in report_path else "experiments.md"
    lines = ["| question | verdict | what decides it | section |", "|---|---|---|---|"]
    for key, (question, heading) in QUESTIONS.items():
        row = answered.get(key)
        if row is None:
            lines.append(f"| {question} | **not run for this study yet** | the runs that decide it are not collected "
                         f"for this study | [experiments]({groups_page}) |")
            continue
        lines.append(f"| {question} | **{row['answer']}** | {row['figures']} | "
                     f"[{heading}]({report_path}#{anchor(heading)}) |")
    return "\n".join(lines) + "\n"
