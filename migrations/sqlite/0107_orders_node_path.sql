-- Listing orders below the grid level (a range of node paths) and recounting
-- the queue counts read orders by path. Neither path nor creation time
-- changes when an order moves on, so an index on them costs nothing per
-- transition, unlike the (node_path, state) index it replaces, which every
-- state change rewrote (one of seven state-keyed indexes on orders).
drop index orders_scope_state;
create index orders_node_path on orders(node_path, created_at);
