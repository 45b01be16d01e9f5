-- One row per case. Month attribution follows PRODUCT.md: time and on-time
-- indicators use the completion month, volume and channel the receipt month.
with source as (
    {{ current_submission_rows('service_transactions') }}
),

final as (
    select
        case_id,
        department_id,
        service_item,
        channel,
        received_at,
        completed_at,
        time_limit_days,
        due_at,
        coalesce(status, case when completed_at is null then 'open' else 'closed' end) as status,
        materials_required,
        materials_submitted,
        rating,
        -- keywords of the masked comment, joined by ',' (pipelines/ingest/keywords.py)
        comment_keywords,
        coalesce(length(trim(comment)) > 0, false) as has_comment,
        rectified,
        rectified_at,
        appealed,
        appeal_upheld,
        {{ month_of('received_at') }} as received_month,
        {{ month_of('completed_at') }} as completed_month,
        _file_hash as file_hash,
        _line as source_line
    from source
)

select * from final
