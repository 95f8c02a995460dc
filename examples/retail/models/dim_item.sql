-- One row per item of the relational store, with its category from the DynamoDB
-- catalogue (matched on the item's name, the catalogue's key).
SELECT
    i.item_id,
    i.name,
    i.price,
    d.category
FROM item AS i
LEFT JOIN items_data AS d
    ON d.title = i.name
