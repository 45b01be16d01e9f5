with source as (
    {{ current_submission_rows('hotline_complaints', case_key='ticket_id') }}
),

scored as (
    -- P(negative) of the masked complaint text, by the shipped sentiment model
    select source.*, sentiment.negative_p as content_negative_p
    from source
    {{ join_comment_sentiment('source', 'hotline_complaints') }}
)

select
    ticket_id,
    department_id,
    received_at,
    closed_at,
    category,
    substantiated,
    content_negative_p,
    {{ month_of('received_at') }} as received_month,
    _file_hash as file_hash,
    _line as source_line
from scored
