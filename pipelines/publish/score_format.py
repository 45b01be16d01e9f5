"""How the bulletin shows a score: at the catalogue version's rank_decimals (at least
2), rounded in its round_mode (pipelines/rounding.py: half_up, half_even, r), so the
figure printed is the figure ranks and grades were taken on; charts' score axes span
its scale (docs/methodology.md §8a). The default mode, engine, keeps what `.2f`
printed before (Python's rounding of the double's exact value), so that nothing
already published changes: it and DuckDB's round differ only on a double exactly
halfway (55.625), as they did before.

Scores and score differences (分) follow it; an indicator's raw value in its own unit
(%, 元, days) and statistical figures (expected counts) do not."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.rounding import round_score

MIN_DECIMALS = 2
TIES_TEXT = {
    "min": "取最小名次",
    "dense": "取相同名次，其后名次连续",
    "average": "取最小名次（按平均名次见 rank_exact）",
}


@dataclass(frozen=True)
class ScoreFormat:
    rank_decimals: int = MIN_DECIMALS  # the version's: ranks and grades are taken on these
    mode: str = "engine"
    lo: float = 0.0
    hi: float = 100.0
    ties: str = "min"  # the version's tie rule for ranks

    @classmethod
    def of(
        cls,
        rank_decimals: int | None = None,
        round_mode: str | None = None,
        scale_lo: float | None = None,
        scale_hi: float | None = None,
        rank_ties: str | None = None,
    ) -> ScoreFormat:
        """From a version's settings as the marts hold them; a NULL (an older warehouse) is the default."""
        return cls(
            rank_decimals=MIN_DECIMALS if rank_decimals is None else int(rank_decimals),
            mode=round_mode or "engine",
            lo=0.0 if scale_lo is None else float(scale_lo),
            hi=100.0 if scale_hi is None else float(scale_hi),
            ties=rank_ties or "min",
        )

    @property
    def decimals(self) -> int:
        """Decimals shown: the version's rank_decimals, at least 2."""
        return max(MIN_DECIMALS, self.rank_decimals)

    def _round(self, value: float, digits: int) -> float:
        if self.mode == "engine":
            # As the bulletin printed before (Python rounds the double's exact value, so
            # 55.625 shows 55.62 where DuckDB's round gives 55.63): the default changes nothing.
            return round(value, digits)
        rounded = round_score(value, digits, self.mode)
        assert rounded is not None
        return rounded

    def rounded(self, value: float) -> float:
        """The score as shown, a number: rounded to `decimals` in `mode`."""
        return self._round(value, self.decimals)

    def ranked(self, value: float) -> float:
        """The score as ranks and grades take it: rounded to `rank_decimals` (even below 2) in `mode`."""
        return self._round(value, self.rank_decimals)

    def score(self, value: float | None) -> str:
        """A score: '83.41', or '0.83412' on a 0–1 index ranked on 5 decimals."""
        return "—" if value is None else f"{self.rounded(value):.{self.decimals}f}"

    def signed(self, value: float | None) -> str:
        """A difference of scores (分), or points added or taken off: '+1.25'."""
        return "—" if value is None else f"{self.rounded(value):+.{self.decimals}f}"

    def magnitude(self, value: float) -> str:
        """A difference without its sign, for a sentence that says up or down."""
        return self.score(abs(value))

    def is_nil(self, value: float) -> bool:
        """The difference shows as 0."""
        return self.rounded(value) == 0

    @property
    def domain(self) -> list[float | int]:
        """The score axis: the version's scale (whole numbers as integers, as [0, 100] was written)."""
        return [int(v) if float(v).is_integer() else v for v in (self.lo, self.hi)]

    @property
    def scale_text(self) -> str:
        """The scale in words: '0–100', '0–1'."""
        return "–".join(f"{v:g}" for v in (self.lo, self.hi))

    @property
    def ties_text(self) -> str:
        """The tie rule in words, after 并列 (methodology §8a)."""
        return TIES_TEXT.get(self.ties, TIES_TEXT["min"])

    @property
    def rank_decimals_text(self) -> str:
        """The decimals ranks are taken on, after 保留: '两位', ' 5 位' (spaced, as a numeral is in the text)."""
        return "两位" if self.rank_decimals == 2 else f" {self.rank_decimals} 位"


DEFAULT = ScoreFormat()
