-- P(negative) of each landed free-text comment (service transactions' and survey
-- responses' comment, hotline complaints' content), scored after masking by the
-- shipped sentiment model (pipelines/analytics/comments.py), with the text's
-- fingerprint for the copied-comment screen (text_chars, text_key: the text
-- without spacing, punctuation and case). One row per source, landed file and line
-- with a text; a model joins it to its staged rows on (source, file_hash,
-- source_line). Kept apart from the sources' staging views, which every indicator
-- reads: only the models that use a score pay for the join. The same bytes landed
-- under two periods give the same scores: counted once.
select distinct
    _source as source,
    _file_hash as file_hash,
    _line as source_line,
    negative_p,
    text_chars,
    text_key
from {{ source('lake', 'comment_sentiment') }}
