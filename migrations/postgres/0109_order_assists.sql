-- The assisting units (协办) of each order, kept beside the order row (the
-- order's `facts` hold them too): an assisting unit's worklist reads them
-- by unit, and its people may open the orders they assist.
create table order_assists (
    unit_id bigint not null references units(id),
    order_id bigint not null references orders(id),
    primary key (unit_id, order_id)
);
create index order_assists_order on order_assists(order_id);
insert into order_assists (unit_id, order_id)
    select distinct a.unit::bigint, o.id from orders o,
        jsonb_array_elements_text(coalesce(o.facts::jsonb -> 'assisting_units', '[]'::jsonb)) as a(unit);
