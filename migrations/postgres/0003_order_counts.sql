-- Queue counts per node of the tree, kept with every transition, so a
-- district's 工作台 does not count millions of rows on each visit. A
-- node's row counts the orders anywhere in its subtree; `overdue` counts
-- overdue orders still awaiting signing or handling.
create table order_counts (
    node_id bigint not null,
    state text not null,
    n bigint not null,
    primary key (node_id, state)
);

-- The order's ancestors at depths 1–3 of the tree (subdistrict, community,
-- grid under a district root). A queue for a user bound at depth d is an
-- equality on area<d>, so one index walk in created_at order serves a page
-- however many millions of orders the district holds.
alter table orders add column area1 bigint;
alter table orders add column area2 bigint;
alter table orders add column area3 bigint;
create index orders_created on orders(created_at);
create index orders_a1_state on orders(area1, state, created_at);
create index orders_a2_state on orders(area2, state, created_at);
create index orders_a3_state on orders(area3, state, created_at);
create index orders_a1_created on orders(area1, created_at);
create index orders_a2_created on orders(area2, created_at);
create index orders_a3_created on orders(area3, created_at);
