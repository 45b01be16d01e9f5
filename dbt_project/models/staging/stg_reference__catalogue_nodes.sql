-- Every node of every catalogue version: aggregates (goal, dimension, ...) and indicators.
select * from {{ source('reference', 'catalogue_nodes') }}
