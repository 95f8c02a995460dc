-- Orders from both stores in one shape, with the store each came from. DynamoDB's
-- purchases name their customer and item; they are matched to the dimensions by name
-- (NULL ids where no relational record has that name) and have no order date.
SELECT
    'postgres' AS source,
    CAST(f.order_id AS VARCHAR) AS source_key,
    f.customer_id,
    f.item_id,
    f.customer_name,
    f.item_name,
    f.order_date,
    1 AS quantity,
    f.price,
    f.price AS amount
FROM fact_orders AS f
UNION ALL
SELECT
    'dynamodb' AS source,
    b.item || ' / ' || b.customer AS source_key,
    c.customer_id,
    i.item_id,
    b.customer AS customer_name,
    b.item AS item_name,
    CAST(NULL AS DATE) AS order_date,
    b.quantity,
    b.price,
    b.price * b.quantity AS amount
FROM items_bought_data AS b
LEFT JOIN (
    SELECT full_name, min(customer_id) AS customer_id FROM dim_customer GROUP BY full_name
) AS c ON c.full_name = b.customer
LEFT JOIN (SELECT name, min(item_id) AS item_id FROM dim_item GROUP BY name) AS i
    ON i.name = b.item
