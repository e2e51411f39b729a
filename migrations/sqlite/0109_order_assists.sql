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
    select distinct cast(j.value as integer), o.id from orders o, json_each(o.facts, '$.assisting_units') j;
