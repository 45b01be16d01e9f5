-- Indicator values and denominators supplied as figures (a published index, a
-- yearbook); the period is the row's own (a yearbook's year, dated at its first
-- month) or else the period of the file that carried it.
with source as (
    {{ current_submission_rows('indicator_observations', slice_column='indicator_id') }}
)

select
    department_id,
    indicator_id,
    value,
    n_obs,
    coalesce({{ month_of('period') }}, _period) as period,
    _file_hash as file_hash,
    _line as source_line
from source
