"""What `govperf run` has to redo, and why: the stamps the inputs give now against
the ones each step recorded when it last did its work (pipelines/stamps.py).

    ingest/<source>  a month whose files, delivery times, landing rules, quality
                     suite, deadline, code or an earlier month changed
    dbt              a month whose landed data, reference YAML, dbt project, code,
                     vars or an earlier month changed (so always a run of months
                     through the last: the dependency closure)
    bulletins        an edition whose scores were rebuilt, or whose settings,
                     templates, code or chart libraries changed

The run then covers the months from the earliest stale one to the latest, with
only the steps that have work (a bulletin-only run when only the layout changed).
Nothing stale: no run at all, and each step says why it has nothing to do.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from pipelines.checks.suites import load_suites
from pipelines.ingest import stamps as ingest_stamps
from pipelines.ingest.land import lake_paths
from pipelines.ingest.mapping import load_mappings
from pipelines.publish import stamps as edition_stamps
from pipelines.publish.config import PERIOD_FOLDERS, Edition, editions_of
from pipelines.reference import first_scorable_month, load_departments
from pipelines.settings import QUALITY_DIR, Settings
from pipelines.stamps import StampStore, changed_parts
from pipelines.transform import stamps as dbt_stamps

REASONS = {
    "new": "not done yet",
    "after": "an earlier month changed, and this one reads it",
    "landing_rules": "the mapping, department registry, masking key or keyword settings changed",
    "suite": "its quality suite changed",
    "deadline_passed": "its submission deadline has passed since",
    "code": "the code changed",
    "libraries": "a library version changed",
    "reference": "the catalogue, departments or holidays changed",
    "project": "the dbt project changed",
    "vars": "the build settings changed",
    "ingest": "its landed data changed",
    "later_files": "a later period's file carries rows dated in it",
    "appeals": "an appeal about it was filed or decided (govperf appeal)",
    "scores": "its scores were rebuilt",
    "bulletin_settings": "bulletin.yaml changed",
    "layout": "the templates or stylesheet changed",
    "missing": "its output is missing",
}
QUIET = {
    "ingest": "same files, delivery times, landing rules, checks and code as when landed",
    "dbt": "its inputs are those of the last successful build",
    "bulletins": "drawn from the same scores, settings, templates and code",
}


@dataclass
class StepPlan:
    step: str  # ingest/<source>, dbt, bulletins
    stale: dict[str, list[str]] = field(default_factory=dict)  # month or edition -> why
    fresh: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if not self.stale:
            kind = self.step.split("/")[0]
            return f"{self.step}: nothing to do for {len(self.fresh)} {_unit(self.step)}: {QUIET[kind]}"
        groups: dict[tuple[str, ...], list[str]] = {}
        for key in sorted(self.stale):
            groups.setdefault(tuple(self.stale[key]), []).append(key)
        told = [f"{_span(keys)} because {'; '.join(reasons)}" for reasons, keys in groups.items()]
        more = f"; and {len(told) - 4} other reasons" if len(told) > 4 else ""
        return f"{self.step}: redo {_span(sorted(self.stale))}: " + "; ".join(told[:4]) + more


@dataclass
class Plan:
    first: dt.date
    last: dt.date
    steps: list[StepPlan]

    @property
    def needed(self) -> bool:
        return any(step.stale for step in self.steps)

    def window(self) -> tuple[str, str] | None:
        """The months (YYYY-MM) the run must cover: from the earliest stale month to the latest."""
        months = []
        for step in self.steps:
            for key in step.stale:
                months.append(f"{Edition.parse(key).last_month:%Y-%m}")
        return (min(months), max(months)) if months else None

    def job(self) -> str | None:
        """full when anything must be landed; scoring when only scores; bulletins when only drawings."""
        stale = {step.step.split("/")[0] for step in self.steps if step.stale}
        if "ingest" in stale:
            return "full"
        if "dbt" in stale:
            return "scoring"
        return "bulletins" if stale else None

    def up_to_date_sources(self) -> list[str]:
        """The sources whose ingest has nothing to do: a full run leaves them out."""
        return [step.step.split("/", 1)[1] for step in self.steps if step.step.startswith("ingest/") and not step.stale]

    def describe(self) -> list[str]:
        return [step.describe() for step in self.steps]


def make_plan(s: Settings, first: dt.date, last: dt.date, today: dt.date | None = None) -> Plan:
    today = today or dt.date.today()
    reference = s.reference_dir
    first_scorable = first_scorable_month(reference)
    months = ingest_stamps.months_through(first_scorable, last)
    asked = {m.isoformat() for m in months if m >= first}
    store = StampStore(s.home)
    registry = load_departments(reference)
    suites = load_suites(QUALITY_DIR)
    steps, current_ingest = [], {}
    for source, mapping in load_mappings(s.mappings_dir).items():
        step = ingest_stamps.step_name(source)
        current = ingest_stamps.month_stamps(
            mapping, registry, suites.get(source), s.inbox, first_scorable, last, today, home=s.home
        )
        current_ingest[source] = current
        recorded = store.read(step)
        plan = StepPlan(f"ingest/{source}")
        for month in sorted(asked):
            why = _why(recorded.get(month), current[month])
            if not why and any(
                not lake_paths(s.lake, source, dt.date.fromisoformat(month), sha)["file_load"].exists()
                for sha, _mtime in current[month]["files"].values()
            ):
                why = [REASONS["missing"]]
            if why and "files" in changed_parts(recorded.get(month), current[month]):
                why = [_files_changed((recorded.get(month) or {}).get("files", {}), current[month]["files"])] + [
                    w for w in why if w != "files"
                ]
            _place(plan, month, why)
        steps.append(plan)

    # Months before the range are not landed by this run: dbt reads them as they were recorded.
    read_by_dbt = {
        source: {
            m: (stamp if m in asked else store.read(ingest_stamps.step_name(source)).get(m))
            for m, stamp in by_month.items()
        }
        for source, by_month in current_ingest.items()
    }
    read_by_dbt = {
        source: {m: v for m, v in by_month.items() if v is not None} for source, by_month in read_by_dbt.items()
    }
    scores = dbt_stamps.month_stamps(
        read_by_dbt, reference, [m.isoformat() for m in months], s.lake, dbt_stamps.appeals_in_state(s.home)
    )
    recorded = store.read(dbt_stamps.STEP)
    plan = StepPlan("dbt")
    for month in sorted(asked):
        why = _why(recorded.get(month), scores[month])
        if REASONS["ingest"] in why:
            sources = sorted(
                source
                for source, landed in scores[month]["ingest"].items()
                if (recorded.get(month) or {}).get("ingest", {}).get(source) != landed
            )
            why[why.index(REASONS["ingest"])] = f"the landed data of {', '.join(sources)} changed"
        if not why and not s.duckdb_path.is_file():
            why = [REASONS["missing"]]
        _place(plan, month, why)
    steps.append(plan)

    editions = editions_of([dt.date.fromisoformat(m) for m in sorted(asked)])
    current = edition_stamps.edition_stamps(editions, scores, reference)
    recorded = store.read(edition_stamps.STEP)
    plan = StepPlan("bulletins")
    for edition in editions:
        why = _why(recorded.get(edition.key), current[edition.key])
        if not why and not (s.bulletins / PERIOD_FOLDERS[edition.period_type] / edition.key).exists():
            why = [REASONS["missing"]]
        _place(plan, edition.key, why)
    steps.append(plan)
    return Plan(first, last, steps)


def _why(recorded: dict | None, current: dict) -> list[str]:
    return [REASONS.get(part, part) for part in changed_parts(recorded, current)]


def _place(plan: StepPlan, key: str, why: list[str]) -> None:
    key = key[:7] if len(key) == 10 else key  # months as YYYY-MM
    if why:
        plan.stale[key] = why
    else:
        plan.fresh.append(key)


def _files_changed(before: dict[str, list], now: dict[str, list]) -> str:
    added = sorted(set(now) - set(before))
    removed = sorted(set(before) - set(now))
    changed = sorted(n for n in set(now) & set(before) if now[n] != before[n])
    parts = [
        f"{what}: {', '.join(names[:3])}{' …' if len(names) > 3 else ''}"
        for what, names in (("files added", added), ("withdrawn", removed), ("changed", changed))
        if names
    ]
    return "; ".join(parts) or "its files changed"


def _unit(step: str) -> str:
    return "editions" if step == "bulletins" else "months"


def _span(keys: list[str]) -> str:
    return keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]} ({len(keys)})"


def months_in_inbox(s: Settings) -> list[str]:
    """The months (YYYY-MM) the inbox has files for, and the months of the rows landed
    from them: what `govperf run` covers without a range."""
    from pipelines.ingest.land import file_logs

    months = set()
    for mapping in load_mappings(s.mappings_dir).values():
        for path in s.inbox.glob(mapping.file_pattern):
            period = mapping.period_of(path.name)
            if period is not None:
                months.add(f"{period:%Y-%m}")
    # and the months of the rows landed (a multi-month export filed under its last
    # month), from the first month the catalogue scores
    first_scorable = f"{first_scorable_month(s.reference_dir):%Y-%m}"
    for row in file_logs(s.lake) if months else []:
        if row.get("first_row_month") is not None:
            months.add(max(f"{row['first_row_month']:%Y-%m}", first_scorable))
    return sorted(months)
