-- The Monte Carlo design of each catalogue version: per draw, a weight factor for
-- every node below the root, and the normalisation and aggregation it uses.
select * from {{ source('reference', 'robustness_draws') }}
