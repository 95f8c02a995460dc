-- One row per customer of the relational store, with the email and city that the
-- DynamoDB customer records hold for the same name (NULL where there is none).
SELECT
    c.customer_id,
    c.first_name,
    c.last_name,
    c.first_name || ' ' || c.last_name AS full_name,
    c.phone_number,
    c.curp,
    c.rfc,
    c.address,
    d.email,
    d.city
FROM customer AS c
LEFT JOIN customers_data AS d
    ON d.first_name = c.first_name AND d.last_name = c.last_name
