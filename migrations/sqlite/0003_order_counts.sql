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
create index orders_path_created on orders(node_path, created_at);
