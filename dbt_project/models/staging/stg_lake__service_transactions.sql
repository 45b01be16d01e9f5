-- One row per case. Month attribution follows PRODUCT.md: time and on-time
-- indicators use the completion month, volume and channel the receipt month.
-- completed_at is the close time of a case that is closed by its mapping's
-- `closed_when` (docs/ingest.md): by default any case with a close time; with
-- `closed_when: status`, only one whose status says closed. The time the extract
-- gave is kept as reported_completed_at.
with source as (
    {{ current_submission_rows('service_transactions', case_key='case_id') }}
),

flagged as (
    -- rows landed before the closed flag existed were closed by their close time
    select *, coalesce(is_closed, completed_at is not null) as closed_by_rule from source
),

final as (
    select
        case_id,
        department_id,
        service_item,
        channel,
        received_at,
        case when closed_by_rule then completed_at end as completed_at,
        completed_at as reported_completed_at,
        time_limit_days,
        due_at,
        coalesce(status, case when closed_by_rule then 'closed' else 'open' end) as status,
        materials_required,
        materials_submitted,
        rating,
        rated_at,
        -- keywords of the masked comment, joined by ',' (pipelines/ingest/keywords.py)
        comment_keywords,
        coalesce(length(trim(comment)) > 0, false) as has_comment,
        rectified,
        rectified_at,
        appealed,
        appeal_upheld,
        {{ month_of('received_at') }} as received_month,
        case when closed_by_rule then {{ month_of('completed_at') }} end as completed_month,
        _file_hash as file_hash,
        _line as source_line
    from flagged
)

select * from final
