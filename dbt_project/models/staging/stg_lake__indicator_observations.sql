-- Indicator values and denominators supplied as figures (a published index, a
-- yearbook); the period is the period of the file that carried them.
with source as (
    {{ current_submission_rows('indicator_observations') }}
)

select
    department_id,
    indicator_id,
    value,
    n_obs,
    _period as period,
    _file_hash as file_hash,
    _line as source_line
from source
