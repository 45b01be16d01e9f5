{% macro join_comment_sentiment(rows, source_name) %}
    -- P(negative) of the row's masked comment (pipelines/analytics/comments.py), NULL
    -- where it has none; one score per landed line.
    left join {{ source('lake', 'comment_sentiment') }} as sentiment
        on sentiment._source = '{{ source_name }}'
        and sentiment._file_hash = {{ rows }}._file_hash
        and sentiment._period = {{ rows }}._period
        and sentiment._line = {{ rows }}._line
{% endmacro %}
