-- fails at run time: the column does not exist
select customer_id, no_such_column from {{ ref('stg_orders') }}
