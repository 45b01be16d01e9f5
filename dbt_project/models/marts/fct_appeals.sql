-- 申诉复核: every appeal filed with `govperf appeal file`, as decided, with what the
-- decision did. An upheld appeal about a case takes its bad review out
-- (int_transactions__timed); an upheld appeal about a figure waits for the
-- department's corrected resubmission: a current file of the department for a month
-- of the appeal's period, from a source the indicator is computed from
-- (dim_evidence_rule; any source for an indicator without rules), delivered after the
-- appeal was filed (a corrected file may come with the appeal). Rebuilt whole on every
-- run: appeals are few, and any can change.
with appeals as (
    select * from {{ ref('stg_reference__appeals') }}
),

indicator_sources as (
    select distinct indicator_id, source from {{ ref('dim_evidence_rule') }}
),

-- the sources a figure appeal's resubmission may come from ('*': any)
appeal_sources as (
    select appeals.appeal_id, coalesce(indicator_sources.source, '*') as source
    from appeals
    left join indicator_sources on indicator_sources.indicator_id = appeals.indicator_id
    where appeals.status = 'upheld' and appeals.indicator_id is not null
),

submissions as (
    select * from {{ ref('stg_ingest__submissions') }} where status = 'current'
),

resubmissions as (
    select
        appeals.appeal_id,
        submissions.submitted_at,
        submissions.file_name,
        row_number() over (
            partition by appeals.appeal_id order by submissions.submitted_at, submissions.file_name
        ) as nth
    from appeals
    inner join appeal_sources on appeal_sources.appeal_id = appeals.appeal_id
    inner join submissions
        on submissions.department_id = appeals.department_id
        and submissions.month >= appeals.period
        and submissions.month < {{ period_after('appeals.period', 'appeals.period_type') }}
        and submissions.submitted_at > appeals.filed_at
        and (appeal_sources.source = '*' or submissions.source = appeal_sources.source)
),

names as (
    select indicator_id, indicator_name,
           row_number() over (partition by indicator_id order by effective_from desc) as newest
    from {{ ref('dim_indicator') }}
)

select
    cast(appeals.appeal_id as string) as appeal_id,
    cast(appeals.period_type as string) as period_type,
    cast(appeals.period as date) as period,
    cast(appeals.period_key as string) as period_key,
    cast(appeals.department_id as string) as department_id,
    cast(departments.department_name as string) as department_name,
    cast(appeals.indicator_id as string) as indicator_id,
    cast(names.indicator_name as string) as indicator_name,
    cast(appeals.case_id as string) as case_id,
    cast(case when appeals.case_id is not null then 'case' else 'figure' end as string) as subject,
    cast(appeals.reason as string) as reason,
    cast(appeals.evidence as string) as evidence,
    cast(appeals.filed_by as string) as filed_by,
    cast(appeals.filed_at as timestamp) as filed_at,
    cast(appeals.status as string) as status,
    cast(appeals.decided_by as string) as decided_by,
    cast(appeals.decided_at as timestamp) as decided_at,
    cast(appeals.decision_note as string) as decision_note,
    cast(resubmissions.submitted_at as timestamp) as resubmitted_at,
    cast(resubmissions.file_name as string) as resubmitted_file,
    cast(case
        when appeals.status = 'pending' then '待复核'
        when appeals.status = 'rejected' then '维持原结果'
        when appeals.case_id is not null then '该件差评不计入评价类指标，已重新计分'
        when resubmissions.submitted_at is null then '待部门更正重报'
        else '已更正重报，已重新计分'
    end as string) as effect
from appeals
left join resubmissions on resubmissions.appeal_id = appeals.appeal_id and resubmissions.nth = 1
left join {{ ref('dim_department') }} as departments on departments.department_id = appeals.department_id
left join names on names.indicator_id = appeals.indicator_id and names.newest = 1
