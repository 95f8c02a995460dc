-- Relational orders, one row each, joined to their customer and item.
SELECT
    o.order_id,
    o.order_date,
    o.customer_id,
    o.item_id,
    c.full_name AS customer_name,
    i.name AS item_name,
    i.category,
    o.price,
    o.comments
FROM orders AS o
JOIN dim_customer AS c ON c.customer_id = o.customer_id
JOIN dim_item AS i ON i.item_id = o.item_id
