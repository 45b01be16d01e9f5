select * from {{ source('reference', 'catalogue_annual_weights') }}
