select * from {{ source('reference', 'catalogue_versions') }}
